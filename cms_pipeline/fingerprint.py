"""Content fingerprints of code and config: a rebuild is due when one changes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def files_fingerprint(roots: list[Path]) -> str:
    """SHA-256 over every file under `roots` (folders or files), each file's path relative
    to its root's parent and its bytes, in a stable order."""
    digest = hashlib.sha256()
    for root in roots:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in (f for f in files if f.is_file()):
            digest.update(f.relative_to(root.parent).as_posix().encode() + b"\0")
            digest.update(f.read_bytes())
    return digest.hexdigest()
