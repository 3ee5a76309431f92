"""One writer per lake: a lease record at `LAKE/_meta/lease/holder.json`.

Every command that writes to the lake holds the lease for its whole run (`writes_lake`
on a command or a flow, or `with lake_lease(settings, "who")`); readers never take it.

The record says who holds it: the command, host, pid, the process's start time (a pid
alone is reused), a random token, when it was taken, the last heartbeat and when it
expires. A thread renews it every ttl/4 (`lease.ttl_seconds`); it is deleted on exit.

Taking it (`Lease.acquire`) loops over three atomic storage operations
(cms_pipeline/storage.py): create-if-absent, delete-if-unchanged, replace-if-unchanged.

1. Create the record if there is none: `os.link` of a complete temporary file locally
   (fails if the name exists), a PUT with `If-None-Match: *` on S3. Of two creators
   exactly one wins, and the record is never seen half-written.
2. Otherwise read it (with its version: the S3 ETag, a content hash locally) and judge
   whether its holder is dead:
   - on the holder's own host the process table is the truth: dead when its pid is gone
     (or a zombie) or belongs to a process started at another time (pid reuse); a live
     holder keeps its lease even when its heartbeat is late (stopped in a debugger);
   - from another host only the heartbeat can tell: dead when `expires` has passed
     (hosts' clocks must agree to well within the ttl);
   - a record that cannot be parsed (written by something else, or damaged) counts as
     dead only when it has not been written for a whole ttl, so a record being written
     is never mistaken for an abandoned one.
3. A dead holder's record is deleted only if it is still the version judged dead
   (`If-Match: <ETag>` on S3; locally compare-and-unlink under an flock of the folder),
   then step 1 is tried again. Two waiters that both judged the same record dead cannot
   both take over: one deletes it; the other's delete then fails (the record is gone
   or is the winner's new one, another version), and both race on the exclusive create,
   which one wins. No rename is involved anywhere, so no store needs an atomic rename.
4. A live holder is waited for up to `lease.wait_seconds`, saying who holds it; then
   `LeaseBusy` is raised (the CLI exits with LEASE_BUSY_EXIT).

Renewal replaces the record only if it is still the version this process wrote, so a
holder whose lease was taken over (it was judged dead: a network partition longer than
the ttl) finds out instead of overwriting the new holder's record; it then warns
(`Lease.lost`). Release deletes the record only if it is still its own.

The lease is re-entrant within one process (`cms-pipeline run` calls the pipeline flow,
which calls ingest and transform): nested `lake_lease` calls for the same lake share the
first one's record. Per-file ingest claims (cms_pipeline/ingest/claims.py) are the same
`Lease` at another path, not re-entrant.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from cms_pipeline.config import load_settings
from cms_pipeline.lake import meta_uri
from cms_pipeline.storage import Record, create_exclusive, delete_if, join, read_record, replace_if

LEASE_BUSY_EXIT = 75  # EX_TEMPFAIL (sysexits.h): the lake is busy, try again later
DEFAULT_TTL = 120.0
DEFAULT_WAIT = 300.0
START_TIME_TOLERANCE = 1.0  # seconds: one process's start time, read twice, agrees to ~10 ms

Notify = Callable[[str], None]
log = logging.getLogger(__name__)


def _warn(message: str) -> None:
    log.warning(message)


# -- who holds a lease or a claim --------------------------------------------------------


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None if there is no such live
    process (a zombie has ended, its parent just has not collected it)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return float("nan")  # alive, start time unknown: never judged dead from here


@dataclass(frozen=True)
class Holder:
    """One process, told apart from a later process that reuses its pid."""

    name: str  # what holds it, e.g. "cms-pipeline ingest"
    host: str
    pid: int
    started: float  # process start time, epoch seconds
    token: str  # unique per acquisition

    @classmethod
    def this_process(cls, name: str) -> Holder:
        pid = os.getpid()
        return cls(name, socket.gethostname(), pid, process_start_time(pid), uuid.uuid4().hex)


def _when(epoch: float | None) -> str:
    if not epoch:
        return "?"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse(record: Record | None) -> dict | None:
    """The record's fields, or None when it is not a lease record we can read."""
    if record is None:
        return None
    try:
        info = json.loads(record.data)
    except ValueError:
        return None
    if not isinstance(info, dict) or "host" not in info or "pid" not in info:
        return None
    return info


def describe(info: dict | None, now: float | None = None) -> str:
    """`cms-pipeline run` (pid 123 on host x, since ..., last heartbeat 4 s ago)."""
    if info is None:
        return "an unreadable lease record"
    now = now or time.time()
    beat = info.get("heartbeat") or info.get("time")
    ago = f", last heartbeat {now - beat:.0f} s ago" if beat else ""
    return (
        f"`{info.get('holder', '?')}` (pid {info['pid']} on host {info['host']}, "
        f"since {_when(info.get('acquired') or info.get('time'))}{ago})"
    )


def stale_reason(record: Record, ttl: float, now: float | None = None) -> str | None:
    """Why the holder of `record` is gone (it may be taken over), or None if it lives."""
    now = now or time.time()
    info = parse(record)
    if info is None:
        age = now - record.modified
        return f"unreadable record, last written {age:.0f} s ago" if age > ttl else None
    pid, host = int(info["pid"]), info["host"]
    if host == socket.gethostname():
        started = process_start_time(pid)
        if started is None:
            return f"process {pid} on {host} has ended"
        recorded = info.get("started")
        if recorded is not None and abs(started - float(recorded)) > START_TIME_TOLERANCE:
            return f"pid {pid} on {host} is now another process (started {_when(started)})"
        return None
    expires = info.get("expires") or float(info.get("time", 0)) + ttl
    if now > float(expires):
        return f"no heartbeat from {host} since {_when(info.get('heartbeat') or info.get('time'))}"
    return None


# -- the lease ---------------------------------------------------------------------------


class LeaseBusy(RuntimeError):
    """Another live process held the lease for the whole wait."""

    def __init__(self, uri: str, info: dict | None, waited: float, what: str = "lease"):
        self.uri, self.info, self.waited = uri, info, waited
        super().__init__(
            f"{uri}: the {what} is held by {describe(info)}; waited {waited:.0f} s for it"
        )


class Lease:
    """A record at `uri` held by one process at a time (see the module docstring)."""

    def __init__(
        self,
        uri: str,
        name: str,
        ttl: float = DEFAULT_TTL,
        wait: float = DEFAULT_WAIT,
        notify: Notify | None = _warn,
        poll: float = 0.5,
        what: str = "lease",
    ):
        self.uri, self.ttl, self.wait, self.poll, self.what = uri, ttl, wait, poll, what
        self.notify = notify or (lambda _msg: None)
        self.holder = Holder.this_process(name)
        self.acquired: float | None = None
        self.tag: str | None = None
        self.lost: str | None = None  # why, when renewal found the record taken over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, now: float) -> bytes:
        h = self.holder
        return json.dumps(
            {
                "holder": h.name,
                "host": h.host,
                "pid": h.pid,
                "started": h.started,
                "token": h.token,
                "acquired": self.acquired or now,
                "heartbeat": now,
                "expires": now + self.ttl,
                "ttl": self.ttl,
                "command": " ".join(sys.argv)[:300],
            }
        ).encode()

    def _mine(self, record: Record | None) -> bool:
        info = parse(record)
        return info is not None and info.get("token") == self.holder.token

    def acquire(self) -> Lease:
        started_waiting = time.monotonic()
        deadline = started_waiting + self.wait
        announced = None
        while True:
            now = time.time()
            tag = create_exclusive(self.uri, self._body(now))
            if tag is not None:
                self.acquired, self.tag = now, tag
                break
            current = read_record(self.uri)
            if current is None:
                continue  # released meanwhile
            info = parse(current)
            if self._mine(current):  # our create went through but its answer was lost
                self.acquired, self.tag = info.get("acquired", now), current.tag
                break
            reason = stale_reason(current, self.ttl)
            if reason:
                if delete_if(self.uri, current.tag):
                    self.notify(
                        f"took over the {self.what} {self.uri} from {describe(info)}: {reason}"
                    )
                continue
            waited = time.monotonic() - started_waiting
            if time.monotonic() > deadline:
                raise LeaseBusy(self.uri, info, waited, self.what)
            holder = (info or {}).get("token", current.tag)
            if holder != announced:  # say who holds it, again only when that changes
                announced = holder
                self.notify(
                    f"waiting up to {self.wait - waited:.0f} s for the {self.what} {self.uri}, "
                    f"held by {describe(info)}"
                )
            time.sleep(self.poll)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._heartbeat, name=f"lease-heartbeat {self.uri}", daemon=True
        )
        self._thread.start()
        return self

    def _heartbeat(self) -> None:
        interval = max(0.2, self.ttl / 4)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception as exc:  # a storage hiccup: the next beat tries again
                self.notify(f"could not renew the {self.what} {self.uri}: {exc}")
            if self.lost:
                return

    def renew(self) -> bool:
        """Push the expiry forward; False (and `lost` set) if the record is not ours now."""
        tag = replace_if(self.uri, self._body(time.time()), self.tag)
        if tag is not None:
            self.tag = tag
            return True
        current = read_record(self.uri)
        if self._mine(current):  # our write went through but its answer was lost
            self.tag = current.tag
            return True
        self.lost = f"taken over by {describe(parse(current))}" if current else "deleted"
        self.notify(f"lost the {self.what} {self.uri}: {self.lost}")
        return False

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None
        if self.lost or self.tag is None:
            return
        if not delete_if(self.uri, self.tag):
            current = read_record(self.uri)
            if self._mine(current):
                delete_if(self.uri, current.tag)
        self.tag = None

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# -- the lake's lease, re-entrant within a process -----------------------------------------


def lease_uri(settings) -> str:
    return join(meta_uri(settings, "lease"), "holder.json")


def current_holder(settings) -> dict | None:
    """Who holds the lake's lease now (None when nobody does)."""
    return parse(read_record(lease_uri(settings)))


_held: dict[str, tuple[int, Lease, int]] = {}  # uri -> (pid, lease, depth)
_held_guard = threading.Lock()


@contextmanager
def lake_lease(settings, holder: str, notify: Notify | None = _warn) -> Iterator[Lease]:
    """Hold the lake's writer lease for the block (nested blocks in one process share it).
    Taking it first completes a publish that a killed writer left half done
    (cms_pipeline.publish.publishing.complete_interrupted_publish: nothing to do, no
    Spark, if none)."""
    uri = lease_uri(settings)
    with _held_guard:  # one thread acquires; the others of this process then share it
        entry = _held.get(uri)
        if entry is None or entry[0] != os.getpid():  # a forked child holds nothing
            lease = Lease(
                uri,
                holder,
                ttl=settings.lease.ttl_seconds,
                wait=settings.lease.wait_seconds,
                notify=notify,
            )
            lease.acquire()
            entry = (os.getpid(), lease, 0)
        _held[uri] = (entry[0], entry[1], entry[2] + 1)
    try:
        if entry[2] == 0:  # this process's first writer: finish a publish a killed one left
            # inside: publish is a tier above this foundation module (it builds on dbt and
            # imports this one back); docs/architecture.md, "Checking the import direction"
            from cms_pipeline.publish.publishing import complete_interrupted_publish

            complete_interrupted_publish(settings)
        yield entry[1]
    finally:
        with _held_guard:
            pid, lease, depth = _held[uri]
            if depth > 1:
                _held[uri] = (pid, lease, depth - 1)
            else:
                del _held[uri]
                lease.release()


def _load_settings(lake: str | None, profile: str | None):
    return load_settings(lake=lake, profile=profile)


def writes_lake(
    holder: str,
    settings_for: Callable = _load_settings,
    on_busy: Callable[[LeaseBusy], None] | None = None,
    notify: Notify | None = _warn,
):
    """Decorator: the function holds the lake's lease while it runs. The lake is the one
    its `lake` (and `profile`) arguments name, as `settings_for(lake, profile)` resolves
    them; `on_busy` handles a lease held elsewhere for the whole wait (default: raise)."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind_partial(*args, **kwargs).arguments
            settings = settings_for(bound.get("lake"), bound.get("profile"))
            try:
                with lake_lease(settings, holder, notify=notify):
                    return fn(*args, **kwargs)
            except LeaseBusy as exc:
                if on_busy is None:
                    raise
                on_busy(exc)
                raise

        return wrapper

    return decorate
