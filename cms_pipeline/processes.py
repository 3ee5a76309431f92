"""Background servers this project starts and later stops (the Prefect stack, the local
Spark cluster), from any process: start, wait until ready, stop, and the state file.

    server = spawn("server", argv, env, log=logs / "server.log", cwd=root)
    write_state(root / "stack.json", {"processes": [asdict(server)]})
    wait_for_port(server, "127.0.0.1", port, timeout=300, what="the Prefect server")
    ...
    stop_group(server)  # another process may do this, from the state file

Each server runs in its own session, so it outlives its starter and is stopped with the
processes it starts. A `Started` record keeps the process's start time with its pid: a
pid the system has since given to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from cms_pipeline.atomic import write_json_atomic


class StartError(RuntimeError):
    """A server stopped, or took a port another process held, while starting; the message
    names its log."""


class StartTimeout(StartError, TimeoutError):
    """A server was not ready in time; the message names its log."""


@dataclass
class Started:
    name: str
    pid: int
    create_time: float  # with the pid, tells our process from a later one with its id
    log: str


def spawn(
    name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | str
) -> Started:
    """Start `argv` in its own session (it outlives the caller; its group is stopped as
    one), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:  # already gone: is_ours says so, wait_until names the log
        create_time = 0.0
    return Started(name, proc.pid, create_time, str(log))


def is_ours(proc: Started) -> bool:
    """The recorded process still runs (same pid and start time, not a reused id)."""
    try:
        running = psutil.Process(proc.pid)
        return (
            abs(running.create_time() - proc.create_time) < 1.0
            and running.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return False


def tail(path: str | Path, lines: int = 20) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(
    ready: Callable[[], bool],
    proc: Started,
    timeout: float,
    what: str,
    interval: float = 0.5,
) -> None:
    """Poll `ready()` until it is true; StartError as soon as `proc` exits, StartTimeout
    after `timeout` seconds. `what` names the server in the message."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not is_ours(proc):
            raise StartError(f"{what} stopped during start-up; see {proc.log}:\n{tail(proc.log)}")
        if time.monotonic() > deadline:
            raise StartTimeout(f"{what} was not ready within {timeout:.0f} s; see {proc.log}")
        time.sleep(interval)


def stop_group(proc: Started, timeout: float = 30.0) -> bool:
    """SIGTERM the process, its group and its descendants (a child in a session of its
    own too, as Prefect's flow runs), SIGKILL what is left after `timeout` seconds.
    False when the process is no longer ours (gone, or its pid reused): nothing is sent."""
    if not is_ours(proc):
        return False
    try:
        root = psutil.Process(proc.pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group was made for this process: its id is the pid
        for member in members:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(sig)
        _gone, alive = psutil.wait_procs(members, timeout=timeout)
        if not alive:
            break
    return True


# --- ports ------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now. It is free until someone else binds it, so the server
    it is for may find it taken: `wait_for_port` then fails at once, naming the port.

    Binding port 0 and reading the port back would leave no gap, but our servers cannot
    do that, nor take a socket bound for them: the Spark master, Hive metastore and
    Thrift Server report a port-0 choice only in their logs, yet the other cluster
    processes and the printed variables need it first; the Prefect server's settings
    (PREFECT_API_URL, the UI's API URL) name its port before it starts and `prefect
    server start` hands uvicorn no socket; H2O's client joins the port it was given, and
    H2O binds the next one too (its internal port). A Spark worker's web UI, which
    nobody needs to find, takes port 0.
    """
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_open(host: str, port: int) -> bool:
    """Something accepts connections on `port` (ours or not)."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def listening_ports(proc: Started) -> set[int]:
    """TCP ports the process or one of its descendants listens on."""
    try:
        root = psutil.Process(proc.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return set()
    ports = set()
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            ports |= {
                c.laddr.port
                for c in member.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
    return ports


def owns_port(proc: Started, host: str, port: int, what: str) -> bool:
    """`proc` (or a child of it) listens on `port`; StartError when another process does,
    which could otherwise answer a readiness check in its place."""
    if port in listening_ports(proc):
        return True
    # Checked in this order, an answer from our own server is always seen as ours.
    if port_open(host, port) and port not in listening_ports(proc):
        raise StartError(
            f"{what}: port {port} on {host} was taken by another process before it bound "
            f"it; start again (a new free port is chosen); see {proc.log}"
        )
    return False


def wait_for_port(
    proc: Started, host: str, port: int, timeout: float, what: str, interval: float = 0.5
) -> None:
    """Until `proc` itself listens on `port` (see `wait_until`, `owns_port`)."""
    wait_until(lambda: owns_port(proc, host, port, what), proc, timeout, what, interval)


# --- state files ------------------------------------------------------------------------


def write_state(path: Path, body: dict) -> Path:
    """The record of what was started, written atomically: a reader (`down`, `stop`) sees
    the previous record or this one, never half of one."""
    return write_json_atomic(path, body, indent=2)


def read_state(path: Path) -> dict | None:
    """The record at `path`, or None when nothing was started there."""
    return json.loads(path.read_text()) if path.exists() else None


# Polls for the owner; once it is gone (even killed by SIGKILL, which runs no cleanup),
# stops the child's group the way stop_group does, unless that pid is someone else's now.
_REAPER = """
import sys, time
from cms_pipeline.processes import Started, is_ours, stop_group
owner = Started("owner", int(sys.argv[1]), float(sys.argv[2]), "")
child = Started("child", int(sys.argv[3]), float(sys.argv[4]), "")
while is_ours(owner) and is_ours(child):
    time.sleep(2)
if is_ours(child):
    stop_group(child, timeout=10)
"""


def stop_with_this_process(pid: int) -> None:
    """Stop the server `pid` (a group leader, e.g. the H2O JVM h2o.init starts in a session
    of its own) when this process ends, however it ends: a detached watcher process does
    it, so a killed run leaves no JVM behind holding memory and a port."""
    try:
        owner = psutil.Process(os.getpid()).create_time()
        child = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return
    argv = [sys.executable, "-c", _REAPER]
    argv += [str(os.getpid()), repr(owner), str(pid), repr(child)]
    subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
