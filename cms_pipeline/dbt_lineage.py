"""Which bronze tables feed a dbt model, read from dbt's own manifest (pure, no JVM).

The gates name a table "not delivered" when no kind of file that feeds it has arrived,
and an ML use case is skipped when a kind its features need is missing: both ask this
module, so the answer follows the SQL instead of a list kept by hand.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SOURCE_PREFIX = "source."


def upstream_sources(manifest: dict, model: str) -> set[str]:
    """Bronze table names upstream of the model named `model` (empty when unknown)."""
    parents: dict[str, list[str]] = manifest.get("parent_map") or {}
    start = [n for n in parents if n.startswith("model.") and n.rsplit(".", 1)[-1] == model]
    seen: set[str] = set()
    sources: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.startswith(SOURCE_PREFIX):
            sources.add(node.rsplit(".", 1)[-1])
            continue
        stack.extend(parents.get(node, []))
    return sources


@cache
def _load(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text())


def read_manifest(path: Path) -> dict:
    """The manifest at `path` (cached per modification time); {} when dbt never ran."""
    if not path.exists():
        return {}
    return _load(str(path), path.stat().st_mtime)


def missing_inputs(manifest: dict, model: str, delivered: set[str]) -> set[str]:
    """Bronze tables feeding `model` that no delivery has reached."""
    return upstream_sources(manifest, model) - delivered


def fed_by_nothing(manifest: dict, model: str, delivered: set[str]) -> bool:
    """True when bronze feeds `model` and none of the tables that do has a delivery."""
    sources = upstream_sources(manifest, model)
    return bool(sources) and not (sources & delivered)
