"""Claim files: one process at a time works on a given delivery (content hash).

A claim is a file created with exclusive-create semantics in `LAKE/_meta/claims/`.
Another process that finds it waits; a claim left by a dead process on this host, or
older than `stale_after` seconds, is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cms_pipeline.storage import filesystem, is_local, join


class ClaimTimeout(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_create(uri: str, body: bytes) -> bool:
    fs, path = filesystem(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if is_local(uri):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return True
    try:  # object stores with conditional puts (S3 If-None-Match) support mode "xb"
        with fs.open(path, "xb") as f:
            f.write(body)
        return True
    except FileExistsError:
        return False


def _is_stale(uri: str, stale_after: float) -> bool:
    fs, path = filesystem(uri)
    try:
        info = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return True
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return True
    return time.time() - float(info.get("time", 0)) > stale_after


@contextmanager
def claim(
    claims_dir: str, key: str, wait: float = 600.0, stale_after: float = 6 * 3600
) -> Iterator[None]:
    uri = join(claims_dir, f"{key}.claim")
    body = json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    ).encode()
    deadline = time.monotonic() + wait
    while not _try_create(uri, body):
        if _is_stale(uri, stale_after):
            fs, path = filesystem(uri)
            fs.rm_file(path)
            continue
        if time.monotonic() > deadline:
            raise ClaimTimeout(f"{key} is being ingested by another process (claim {uri})")
        time.sleep(0.25)
    try:
        yield
    finally:
        fs, path = filesystem(uri)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass
