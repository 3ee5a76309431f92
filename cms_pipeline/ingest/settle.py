"""Is a landing file complete, or still being copied in?

A copy in progress keeps changing the file's size and modification time. A file changed
less than `settle_seconds` ago is waited for until it has been still that long; a file
that changed meanwhile (or since discovery, or while it was hashed or read) is
"unsettled": skipped this run and read again on the next. Objects in object stores appear
whole when their upload ends, so their size and stored version (ETag, generation) are
compared, without waiting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.storage import filesystem, is_local

# What an fsspec driver's info names the stored version of an object (S3's ETag; Azure's
# etag; GCS's generation): a rewrite of the same size changes it.
VERSION_KEYS = ("ETag", "etag", "generation")


@dataclass(frozen=True)
class FileState:
    size: int
    mtime: float | None  # seconds since the epoch (local files only)
    version: str | None = None  # the object store's version marker (objects only)


def state_of(uri: str) -> FileState:
    fs, path = filesystem(uri)
    return state_from_info(fs.info(path), is_local(uri))


def state_from_info(info: dict, local: bool) -> FileState:
    """From an fsspec info dict (`fs.info`, `fs.find(detail=True)`)."""
    if local:
        mtime = info.get("mtime")
        return FileState(int(info["size"]), float(mtime) if mtime is not None else None)
    version = next((str(info[key]) for key in VERSION_KEYS if info.get(key)), None)
    return FileState(int(info["size"]), None, version)


def settled_state(
    uri: str, name: str, settle_seconds: float, seen: FileState | None = None
) -> FileState:
    """The file's state once it has been still for `settle_seconds` (waiting at most that
    long); IngestError(kind="unsettled") when it changed since `seen` or while waited for."""
    state = state_of(uri)
    if seen is not None:
        check_unchanged(uri, name, seen, state, "since it was found")
    if state.mtime is not None:
        still = time.time() - state.mtime
        if still < settle_seconds:
            time.sleep(settle_seconds - still)
            check_unchanged(uri, name, state, state_of(uri), f"within {settle_seconds:g} s")
    return state


def check_unchanged(
    uri: str, name: str, before: FileState, after: FileState | None = None, when: str = ""
) -> None:
    after = after or state_of(uri)
    if after != before:
        raise IngestError(
            name,
            f"the file changed {when or 'while it was read'} "
            f"({before.size:,} -> {after.size:,} bytes): it is probably still being copied "
            "into the landing area",
            "Nothing was stored; it is read again on the next run. Writers that land files "
            "under a temporary name (.part or a leading dot) and rename them when complete "
            "avoid this.",
            kind="unsettled",
        )


def gone(name: str) -> IngestError:
    return IngestError(
        name,
        "the file left the landing area while the run read it (moved or deleted)",
        "Nothing was stored; it is read again if it comes back.",
        kind="unsettled",
    )
