r"""Background servers this project starts and later stops (the Prefect stack, the local
Spark cluster), from any process: start, wait until ready, stop, and the state file.

    server = spawn("server", [..., "--port", "0"], env, log=logs / "server.log", cwd=root)
    write_state(root / "stack.json", {"processes": [asdict(server)]})
    port = wait_for_bound_port(server, timeout=300, what="the server", pattern=r"on port (\d+)")
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
import re
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
    log_start: int = 0  # the log's size when this process started: its own lines follow


def spawn(
    name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | str
) -> Started:
    """Start `argv` in its own session (it outlives the caller; its group is stopped as
    one), output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        log_start = os.fstat(out.fileno()).st_size
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
    return Started(name, proc.pid, create_time, str(log), log_start)


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
    it is for may find it taken: `wait_for_port` then fails at once, naming the port, and
    the starter tries again on a new port.

    Use it only for a server that can neither bind port 0 and say which port it got
    (`wait_for_bound_port`) nor take a socket bound for it: the Prefect server, whose
    settings (PREFECT_API_URL, the UI's API URL) name its port before it starts, and
    which hands uvicorn no socket. The local Spark cluster's servers all bind port 0.
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


def logged_port(proc: Started, pattern: str) -> int | None:
    """The port in the first line `proc` logged that matches `pattern` (a regular
    expression whose first group is the port); None until it logs one."""
    try:
        with open(proc.log, "rb") as log:
            log.seek(proc.log_start)  # earlier runs' lines in the same log do not count
            text = log.read().decode(errors="replace")
    except OSError:
        return None
    found = re.search(pattern, text)
    return int(found.group(1)) if found else None


def wait_for_bound_port(
    proc: Started, timeout: float, what: str, pattern: str | None = None, interval: float = 0.5
) -> int:
    """The port a server started on port 0 bound, once `proc` (or a child) listens on it.

    The kernel picks the port when the server binds it, so no other process can take it
    first. Where the server logs the port it got, `pattern` finds it in its log (see
    `logged_port`); where it does not (it logs the 0 it was given), the server must listen
    on one port only, and that is the one: a second one is a StartError, not a guess."""
    bound: list[int] = []

    def ready() -> bool:
        listening = listening_ports(proc)
        if pattern is not None:
            port = logged_port(proc, pattern)
            if port is None or port not in listening:
                return False
        elif len(listening) > 1:
            raise StartError(
                f"{what} listens on ports {sorted(listening)}, expected one; see {proc.log}"
            )
        elif listening:
            (port,) = listening
        else:
            return False
        bound.append(port)
        return True

    wait_until(ready, proc, timeout, what, interval)
    return bound[0]


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
