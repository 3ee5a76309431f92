"""The lake's writer lease on local disk: real processes hold it, die and are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from cms_pipeline.config import PROJECT_ROOT, LeaseSettings
from cms_pipeline.lease import (
    LEASE_BUSY_EXIT,
    Lease,
    LeaseBusy,
    current_holder,
    lake_lease,
    lease_uri,
    process_start_time,
    writes_lake,
)
from cms_pipeline.storage import read_record

HOLD = """
import sys, time
from cms_pipeline.config import load_settings
from cms_pipeline.lease import lake_lease
with lake_lease(load_settings(lake=sys.argv[1]), "test holder"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def quick(settings):
    """The test lake with a short wait and ttl."""
    return settings.model_copy(update={"lease": LeaseSettings(wait_seconds=0.5, ttl_seconds=2)})


def hold_in_process(lake: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, lake], stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def write_record(uri: str, **fields) -> None:
    """Whole or not at all, as a lease writes its record: a reader never sees half of it."""
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".writing")
    partial.write_text(json.dumps(fields))
    os.replace(partial, path)


def wait_until(done, timeout: float = 30.0):
    """Poll `done()` until it is true or `timeout` seconds pass; its last value. Bounds a
    wait for a background thread by time, not by a guess of how soon it gets the CPU."""
    deadline = time.monotonic() + timeout
    while not (value := done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_a_second_writer_waits_names_the_holder_then_gives_up(quick):
    proc = hold_in_process(quick.lake)
    try:
        notes: list[str] = []
        started = time.monotonic()
        with pytest.raises(LeaseBusy) as busy:
            with lake_lease(quick, "second writer", notify=notes.append):
                pass
        assert time.monotonic() - started >= quick.lease.wait_seconds
        assert busy.value.info["pid"] == proc.pid and busy.value.info["holder"] == "test holder"
        assert f"pid {proc.pid} on host {socket.gethostname()}" in str(busy.value)
        assert any("waiting up to" in n and f"pid {proc.pid}" in n for n in notes)
        holder = current_holder(quick)
        assert holder["pid"] == proc.pid
        assert abs(holder["started"] - psutil.Process(proc.pid).create_time()) < 1
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_is_taken_over_at_once(quick):
    proc = hold_in_process(quick.lake)
    proc.send_signal(signal.SIGKILL)  # not reaped yet: a zombie still has its pid
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    notes: list[str] = []
    settings = quick.model_copy(update={"lease": LeaseSettings(wait_seconds=30, ttl_seconds=600)})
    started = time.monotonic()
    with lake_lease(settings, "next writer", notify=notes.append):
        assert current_holder(settings)["pid"] == os.getpid()
    assert time.monotonic() - started < 10  # not the ttl: the pid is known dead
    assert any(f"process {proc.pid}" in n and "has ended" in n for n in notes)
    proc.wait()


def test_a_reused_pid_is_told_apart_by_its_start_time(quick):
    uri = lease_uri(quick)
    me = dict(holder="old run", host=socket.gethostname(), pid=os.getpid(), token="x")
    now = time.time()
    write_record(uri, **me, started=process_start_time(os.getpid()), expires=now + 600)
    with pytest.raises(LeaseBusy):  # same pid, same start: that process lives
        Lease(uri, "w", wait=0.3, notify=None).acquire()
    write_record(uri, **me, started=process_start_time(os.getpid()) - 3600, expires=now + 600)
    notes: list[str] = []
    lease = Lease(uri, "w", wait=5, notify=notes.append).acquire()
    lease.release()
    assert any("is now another process" in n for n in notes)


def test_another_hosts_holder_is_dead_only_when_its_heartbeat_expired(quick):
    uri = lease_uri(quick)
    other = dict(holder="elsewhere", host="another-host", pid=1, started=1.0, token="y")
    write_record(uri, **other, heartbeat=time.time(), expires=time.time() + 60)
    with pytest.raises(LeaseBusy):
        Lease(uri, "w", wait=0.3, notify=None).acquire()
    write_record(uri, **other, heartbeat=time.time() - 90, expires=time.time() - 30)
    notes: list[str] = []
    Lease(uri, "w", wait=5, notify=notes.append).acquire().release()
    assert any("no heartbeat from another-host" in n for n in notes)


def test_an_unreadable_record_is_left_alone_until_it_is_old(quick):
    uri = lease_uri(quick)
    Path(uri).parent.mkdir(parents=True)
    Path(uri).write_bytes(b'{"host": "h')  # a writer that died mid-write (or is writing)
    with pytest.raises(LeaseBusy):
        Lease(uri, "w", ttl=60, wait=0.3, notify=None).acquire()
    assert Path(uri).read_bytes() == b'{"host": "h'
    old = time.time() - 120
    os.utime(uri, (old, old))
    Lease(uri, "w", ttl=60, wait=5, notify=None).acquire().release()
    assert not Path(uri).exists()


def race(uri: str, contenders: int) -> list[Lease]:
    """Leases won by `contenders` threads that try at the same moment, each for 0.5 s."""
    barrier, won = threading.Barrier(contenders), []

    def contend():
        lease = Lease(uri, "contender", wait=0.5, notify=None)
        barrier.wait()
        try:
            won.append(lease.acquire())
        except LeaseBusy:
            pass

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return won


def test_of_many_waiters_for_a_dead_holder_exactly_one_takes_over(quick):
    uri = lease_uri(quick)
    for _ in range(5):
        write_record(uri, holder="dead", host="another-host", pid=1, started=1.0, token="z",
                     heartbeat=0.0, expires=1.0)  # fmt: skip
        won = race(uri, 8)
        assert len(won) == 1  # the winner held it while the seven others tried
        won[0].release()
        assert read_record(uri) is None


def test_holders_never_overlap(quick):
    uri = lease_uri(quick)
    inside, overlaps, rounds = [0], [], []

    def work():
        for _ in range(6):
            with Lease(uri, "worker", wait=30, notify=None, poll=0.01):
                inside[0] += 1
                overlaps.append(inside[0])
                time.sleep(0.005)
                inside[0] -= 1
                rounds.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(rounds) == 24 and max(overlaps) == 1
    assert [p.name for p in Path(uri).parent.iterdir()] == [".lock"]  # no temporary files left


def test_the_lease_is_reentrant_within_a_process(quick):
    with lake_lease(quick, "cms-pipeline run") as outer:
        with lake_lease(quick, "prefect flow pipeline") as inner:
            assert inner is outer
        shared = []

        def task():  # a Prefect task in a worker thread of the same process
            with lake_lease(quick, "a task") as lease:
                shared.append(lease)

        t = threading.Thread(target=task)
        t.start()
        t.join(5)
        assert shared == [outer]  # shared, no deadlock
        assert current_holder(quick)["holder"] == "cms-pipeline run"
    assert current_holder(quick) is None


def test_the_heartbeat_renews_it_and_notices_a_takeover(quick):
    uri = lease_uri(quick)
    notes: list[str] = []
    lease = Lease(uri, "w", ttl=0.8, notify=notes.append).acquire()  # beats every 0.2 s
    first = json.loads(Path(uri).read_text())
    renewed = wait_until(
        lambda: (r := json.loads(Path(uri).read_text()))["heartbeat"] > first["heartbeat"] and r
    )
    assert renewed and renewed["token"] == first["token"], first
    assert renewed["expires"] > renewed["heartbeat"] and renewed["acquired"] == first["acquired"]
    write_record(uri, holder="usurper", host="another-host", pid=1, token="u", expires=9e9)
    assert wait_until(lambda: lease.lost)
    assert "usurper" in lease.lost and any("lost the lease" in n for n in notes)
    lease.release()
    assert json.loads(Path(uri).read_text())["holder"] == "usurper"  # not deleted: not ours


def test_the_cli_exits_75_while_another_command_writes(quick):
    proc = hold_in_process(quick.lake)
    try:
        env = {**os.environ, "CMS_LEASE_WAIT_SECONDS": "1"}
        cli = [sys.executable, "-m", "cms_pipeline", "compact", "--lake", quick.lake]
        result = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
        assert result.returncode == LEASE_BUSY_EXIT
        message = " ".join(result.stderr.split())
        assert "The lake is busy" in message and "`test holder`" in message
        assert f"pid {proc.pid}" in message
    finally:
        proc.kill()
        proc.wait()
    assert current_holder(quick)["pid"] == proc.pid  # its record stays: taken over on demand


def test_writes_lake_holds_the_lease_of_the_lake_its_arguments_name(quick, tmp_path):
    seen = []

    @writes_lake("prefect flow test", settings_for=lambda lake, profile: seen.append(lake) or quick)
    def flow(n: int, lake: str | None = None) -> dict:
        return {"n": n, "holder": current_holder(quick)}

    result = flow(2, quick.lake)  # positional, as Prefect or a caller may pass them
    assert seen == [quick.lake] and result["n"] == 2
    assert result["holder"]["holder"] == "prefect flow test"
    assert current_holder(quick) is None
