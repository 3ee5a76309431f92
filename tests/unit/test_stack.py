"""`down` stops exactly the processes `up` recorded (and their children), nothing else."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil
import pytest

from cms_pipeline import processes, stack

# A parent that starts a child in its own session, as Prefect's worker does for flow runs.
PARENT = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
    " start_new_session=True); time.sleep(300)"
)


def test_down_stops_recorded_processes_and_children_only(settings):
    logs = stack.prefect_home(settings) / "logs"
    logs.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin"}
    ours = stack._spawn("worker-process", [sys.executable, "-c", PARENT], env, logs)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        state = stack.StackState("http://x/api", "http://x", "", settings.lake, [ours])
        stack._write_state(settings, state)
        assert stack.read_state(settings) == state
        root = psutil.Process(ours.pid)
        deadline = time.monotonic() + 30
        while not root.children(recursive=True) and time.monotonic() < deadline:
            time.sleep(0.05)  # the parent starts its child
        family = [root, *root.children(recursive=True)]
        assert len(family) == 2

        stopped = stack.down(settings)

        assert stopped == [f"worker-process (pid {ours.pid})"]
        _gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive
        assert bystander.poll() is None  # not ours: still running
        assert not stack.state_file(settings).exists()
        assert stack.down(settings) == []  # nothing left to stop
    finally:
        bystander.kill()
        bystander.wait()


def test_the_health_check_never_answers_for_another_server(settings, tmp_path):
    # Another process holds the port our server was given: waiting fails at once, naming
    # the port, instead of asking the stranger for /health.
    server = processes.spawn(
        "server",
        [sys.executable, "-c", "import time; time.sleep(300)"],
        {},
        tmp_path / "s.log",
        tmp_path,
    )
    try:
        with socket.socket() as stranger:
            stranger.bind(("127.0.0.1", 0))
            stranger.listen()
            port = stranger.getsockname()[1]
            with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 was taken"):
                stack.wait_healthy(f"http://127.0.0.1:{port}/api", server, timeout=120)
    finally:
        assert processes.stop_group(server, timeout=5)


def test_up_refuses_a_port_in_use(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not stack.port_is_free("127.0.0.1", port)
        with pytest.raises(RuntimeError, match=f"port {port}"):
            stack.up(settings, port=port)
    assert stack.read_state(settings) is None  # nothing was started
