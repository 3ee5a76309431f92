"""Per-file ingest claims: written whole, never taken from a live holder, taken from a dead one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cms_pipeline.config import PROJECT_ROOT
from cms_pipeline.ingest.claims import ClaimTimeout, claim
from cms_pipeline.lease import process_start_time

KEY = "ab" * 32  # a content hash


@pytest.fixture
def claims_dir(tmp_path) -> str:
    return str(tmp_path / "lake" / "_meta" / "claims")


def claim_file(claims_dir: str) -> Path:
    return Path(claims_dir) / f"{KEY}.claim"


def test_a_claim_is_complete_from_the_moment_it_exists(claims_dir):
    seen: list[bytes] = []
    stop = threading.Event()

    def watch():  # reads the claim as fast as it can while claims come and go
        while not stop.is_set():
            try:
                seen.append(claim_file(claims_dir).read_bytes())
            except FileNotFoundError:
                pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    for _ in range(30):
        with claim(claims_dir, KEY):
            pass
    stop.set()
    watcher.join()
    assert seen, "the watcher never saw a claim"
    for data in seen:  # never empty or cut short
        info = json.loads(data)
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["started"] == process_start_time(os.getpid())
    assert sorted(p.name for p in Path(claims_dir).iterdir()) == [".lock"]


def test_a_live_holder_keeps_its_claim(claims_dir):
    held, release = threading.Event(), threading.Event()

    def hold():  # another worker of this process, loading the same file
        with claim(claims_dir, KEY):
            held.set()
            release.wait()

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    with pytest.raises(ClaimTimeout, match=f"pid {os.getpid()}"):
        with claim(claims_dir, KEY, wait=0.5):
            pass
    release.set()
    t.join()
    with claim(claims_dir, KEY, wait=5):
        pass


def test_a_half_written_claim_is_not_taken_while_it_is_fresh(claims_dir):
    path = claim_file(claims_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # created, not written yet (or its writer died right there)
    with pytest.raises(ClaimTimeout, match="unreadable"):
        with claim(claims_dir, KEY, wait=0.5, stale_after=60):
            pass
    assert path.read_bytes() == b""
    old = time.time() - 61
    os.utime(path, (old, old))
    with claim(claims_dir, KEY, wait=5, stale_after=60):
        assert json.loads(path.read_bytes())["pid"] == os.getpid()
    assert not path.exists()


def test_a_dead_holders_claim_is_taken(claims_dir):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)  # fmt: skip
    dead = int(proc.stdout)
    path = claim_file(claims_dir)
    path.parent.mkdir(parents=True)
    # the format written before claims had start times: host, pid, time
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "time": time.time()}))
    with claim(claims_dir, KEY, wait=5):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_a_claim_whose_pid_now_names_another_process_is_taken(claims_dir):
    path = claim_file(claims_dir)
    path.parent.mkdir(parents=True)
    started = process_start_time(os.getpid())
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": "t", "expires": 9e9}
    path.write_text(json.dumps({**mine, "started": started}))
    with pytest.raises(ClaimTimeout):  # this very process: alive
        with claim(claims_dir, KEY, wait=0.3):
            pass
    path.write_text(json.dumps({**mine, "started": started - 600}))  # an earlier process
    with claim(claims_dir, KEY, wait=5):
        assert json.loads(path.read_text())["started"] == started
