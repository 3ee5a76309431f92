"""Atomic writes of local state files (run records, publish history, manifests, reports).

    write_json_atomic(path, {"build_id": ...})   # readers see the old file or the new one

The text goes to a temporary file in the same folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then `os.replace`s the target, and the folder is
fsync'ed so the rename itself survives a power cut. A process killed at any point leaves
the old file whole (or no file); a failed write removes its temporary file. A temporary
file left by a kill (`.<name>.<random>.tmp`) is never read as the state.

Local files only: object-storage records go through cms_pipeline.storage (a PUT is
atomic there, and conditional puts replace a rename).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path


def fsync_dir(path: str | Path) -> None:
    """Make a rename or create in folder `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data`, all or nothing; creates its folder. Returns the path."""
    return write_chunks_atomic(path, [data])


def write_chunks_atomic(path: str | Path, chunks: Iterable[bytes]) -> Path:
    """Replace `path` with the concatenated `chunks`, all or nothing, written as they come
    (a document larger than memory); creates its folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # O_EXCL: never write through a file another writer made; 0o666 & umask, like open()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, value, **dumps) -> Path:
    """`json.dumps(value, **dumps)` written atomically (serialised before the file is
    touched, so a value that cannot be serialised leaves the old file as it was)."""
    return write_text_atomic(path, json.dumps(value, **dumps))
