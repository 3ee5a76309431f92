"""Servers started in their own session: readiness on a port of their own, start-up
failures naming the log, stopping a whole group and never a stranger (no JVM)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from cms_pipeline import processes
from cms_pipeline.processes import Started, StartError, StartTimeout

HOST = "127.0.0.1"
SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]


@pytest.fixture
def started(tmp_path):
    """spawn() under tmp_path; whatever a test started is stopped after it."""
    procs: list[Started] = []

    def start(name: str, argv: list[str]) -> Started:
        proc = processes.spawn(
            name, argv, {"PATH": "/usr/bin:/bin"}, tmp_path / f"{name}.log", tmp_path
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        processes.stop_group(proc, timeout=5)


def test_a_server_is_ready_once_it_listens_then_stops_with_its_group(started):
    port = processes.free_port(HOST)
    server = started("http", [sys.executable, "-m", "http.server", str(port), "--bind", HOST])
    assert processes.is_ours(server) and os.getpgid(server.pid) == server.pid

    processes.wait_for_port(server, HOST, port, timeout=60, what="http.server")

    assert port in processes.listening_ports(server)
    assert processes.port_open(HOST, port) and not processes.port_is_free(HOST, port)
    assert processes.stop_group(server, timeout=10)
    assert not processes.is_ours(server)
    assert processes.stop_group(server) is False  # nothing of ours is left to stop


def test_a_port_taken_by_another_process_fails_at_once(started):
    with socket.socket() as stranger:
        stranger.bind((HOST, 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        waiter = started("waiter", SLEEP)  # would bind `port`, but it is taken
        begun = time.monotonic()
        with pytest.raises(StartError, match=f"port {port} on {HOST} was taken"):
            processes.wait_for_port(waiter, HOST, port, timeout=120, what="waiter")
        assert time.monotonic() - begun < 60  # not the timeout


def _port_zero_server(ports: int, say: str) -> list[str]:
    """A server that binds `ports` sockets on port 0, then prints `say` with the first
    port filled in ("" prints nothing), as a server started on port 0 logs what it got."""
    code = (
        "import socket, time\n"
        f"socks = [socket.create_server(('{HOST}', 0)) for _ in range({ports})]\n"
        f"line = {say!r}.format(socks[0].getsockname()[1])\n"
        "print(line, flush=True) if line else None\n"
        "time.sleep(300)\n"
    )
    return [sys.executable, "-c", code]


def test_a_port_zero_server_reports_the_port_it_got_not_an_earlier_runs(started, tmp_path):
    with socket.socket() as stranger:  # a port held by another process the whole time
        stranger.bind((HOST, 0))
        stranger.listen()
        taken = stranger.getsockname()[1]
        # an earlier run's line in the same (appended) log names the taken port
        (tmp_path / "server.log").write_text(f"started on port {taken}\n")

        server = started("server", _port_zero_server(1, "started on port {}"))
        port = processes.wait_for_bound_port(
            server, timeout=60, what="server", pattern=r"on port (\d+)"
        )

        assert port != taken
        assert processes.listening_ports(server) == {port}
        assert processes.logged_port(server, r"on port (\d+)") == port


def test_a_port_zero_server_that_logs_no_port_is_found_by_the_one_it_listens_on(started):
    server = started("quiet", _port_zero_server(1, ""))
    port = processes.wait_for_bound_port(server, timeout=60, what="quiet")
    assert processes.listening_ports(server) == {port}
    assert processes.port_open(HOST, port)


def test_a_quiet_server_on_two_ports_is_an_error_not_a_guess(started):
    server = started("two", _port_zero_server(2, "ready"))
    processes.wait_until(lambda: "ready" in processes.tail(server.log), server, 60, "two")
    with pytest.raises(StartError, match=r"two listens on ports \[\d+, \d+\], expected one"):
        processes.wait_for_bound_port(server, timeout=60, what="two")


def test_a_server_that_exits_while_starting_names_its_log(started):
    crash = [sys.executable, "-c", "import sys; print('no config here'); sys.exit(3)"]
    server = started("crash", crash)
    with pytest.raises(StartError, match="crash stopped during start-up") as err:
        processes.wait_until(lambda: False, server, timeout=120, what="crash")
    assert server.log in str(err.value) and "no config here" in str(err.value)


def test_a_server_not_ready_in_time_times_out(started):
    server = started("slow", SLEEP)
    with pytest.raises(StartTimeout, match="slow was not ready within 1 s") as err:
        processes.wait_until(lambda: False, server, timeout=1, what="slow", interval=0.1)
    assert isinstance(err.value, TimeoutError)
    assert processes.is_ours(server)  # a timeout stops nothing by itself


def test_a_process_ignoring_sigterm_is_killed_with_its_children(started, tmp_path):
    # The child starts a grandchild in a session of its own (as a Prefect worker's flow
    # runs), then ignores SIGTERM.
    stubborn = (
        "import signal, subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " start_new_session=True);"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True);"
        "time.sleep(300)"
    )
    proc = started("stubborn", [sys.executable, "-c", stubborn])
    processes.wait_until(
        lambda: "ready" in processes.tail(proc.log), proc, timeout=60, what="stubborn"
    )
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    assert len(family) == 2

    assert processes.stop_group(proc, timeout=1)

    _gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive


def test_a_reused_pid_is_never_signalled():
    bystander = subprocess.Popen(SLEEP)
    try:
        running = psutil.Process(bystander.pid)
        record = Started("old", bystander.pid, running.create_time() - 1000, "")
        assert not processes.is_ours(record)
        assert processes.stop_group(record, timeout=1) is False
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_state_file_round_trip(tmp_path):
    path = tmp_path / "run" / "state.json"
    assert processes.read_state(path) is None
    body = {"processes": [{"name": "server", "pid": 1, "create_time": 2.5, "log": "x"}]}
    processes.write_state(path, body)
    assert processes.read_state(path) == body
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary left


def test_the_cluster_record_round_trips_and_stop_stops_what_it_names(started, tmp_path):
    from cms_pipeline.spark_cluster import ClusterError, LocalCluster, stop_local_cluster

    root = tmp_path / "cluster"
    cluster = LocalCluster(root, master_port=1, master_ui_port=2, metastore_port=3, thrift_port=4)
    cluster.started["master"] = started("master", SLEEP)
    cluster.save()
    assert LocalCluster.load(root) == cluster
    master = psutil.Process(cluster.started["master"].pid)

    assert stop_local_cluster(root)

    master.wait(timeout=30)
    assert LocalCluster.load(root).started == {}
    assert not stop_local_cluster(tmp_path / "elsewhere")  # nothing was started there

    processes.write_state(root / "cluster.json", {"root": str(root), "pids": {"master": 1}})
    with pytest.raises(ClusterError, match="older record without start times"):
        LocalCluster.load(root)


def test_a_server_is_stopped_when_its_starter_is_killed(tmp_path):
    """stop_with_this_process: a server in its own session (as h2o.init starts H2O's JVM)
    does not outlive a starter killed by SIGKILL."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    import psutil

    pid_file = tmp_path / "server.pid"
    starter = textwrap.dedent(
        f"""
        import os, signal, subprocess, sys, time
        from cms_pipeline.processes import stop_with_this_process
        server = subprocess.Popen(["sleep", "300"], start_new_session=True)
        stop_with_this_process(server.pid)
        open({str(pid_file)!r}, "w").write(str(server.pid))
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", starter], timeout=60)
    assert done.returncode == -signal.SIGKILL
    server = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while psutil.pid_exists(server) and psutil.Process(server).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the server outlived its killed starter"
        time.sleep(0.2)
