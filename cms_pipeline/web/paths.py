"""Which paths the dashboard serves: a request's path cleaned before use, so nothing
outside the export folders and `static/` is served (no `..`, no absolute paths, no
symbolic links leading out)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote


def clean_relative(path: str) -> str | None:
    """`path` (URL-encoded, relative to a served folder) as clean POSIX parts, or None when
    it could leave the folder: `..`, an absolute or drive path, backslashes, NUL. Pure."""
    text = unquote(path)
    if "\x00" in text or "\\" in text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def inside(root: Path, relative: str) -> Path | None:
    """The local file `root/relative`, or None when it resolves outside `root` (a symbolic
    link leading out) or is not a file."""
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target
