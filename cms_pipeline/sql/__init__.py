"""Spark SQL statements the library runs itself (catalog upkeep), kept as .sql files.

Only identifiers and literals the library controls are substituted; user data never is.
"""

from __future__ import annotations

from pathlib import Path

_DIR = Path(__file__).parent


def statement(name: str, **values: str) -> str:
    text = (_DIR / f"{name}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.format(**values).strip()
