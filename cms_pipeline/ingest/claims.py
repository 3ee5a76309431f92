"""Claim files: one process at a time works on a given delivery (content hash).

A claim is a `Lease` (cms_pipeline/lease.py) at `LAKE/_meta/claims/<sha256>.claim`:
created whole or not at all (a hard link of a complete temporary file locally, a PUT
with `If-None-Match: *` on S3), naming its holder by host, pid and process start time,
and renewed by a heartbeat while the file loads. Another process that finds it waits.
It is taken over (atomically: delete-if-unchanged, then exclusive create) only when its
holder is dead: on the same host its pid has ended or now belongs to a process started
at another time; from another host, no heartbeat for `stale_after` seconds. A record
that cannot be read counts as dead only once it has not been written for `stale_after`
seconds, so a claim being written is never mistaken for an abandoned one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cms_pipeline.lease import DEFAULT_TTL, Lease, LeaseBusy, describe
from cms_pipeline.storage import join


class ClaimTimeout(RuntimeError):
    pass


@contextmanager
def claim(
    claims_dir: str, key: str, wait: float = 600.0, stale_after: float = DEFAULT_TTL
) -> Iterator[None]:
    uri = join(claims_dir, f"{key}.claim")
    lease = Lease(
        uri, f"ingest {key[:16]}", ttl=stale_after, wait=wait, notify=None, poll=0.25, what="claim"
    )
    try:
        lease.acquire()
    except LeaseBusy as exc:
        raise ClaimTimeout(
            f"{key} is being ingested by {describe(exc.info)} (claim {uri}); "
            f"waited {exc.waited:.0f} s. Run again when it has finished."
        ) from exc
    try:
        yield
    finally:
        lease.release()
