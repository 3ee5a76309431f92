"""The local Prefect stack: server (SQLite), process work pool, deployments and a worker.

`up` starts a Prefect server with its home (database, logs) under the metadata folder,
waits until it answers, creates the work pool and queues, runs `prefect deploy --all` on
prefect.yaml (deployments with their schedules and triggers), starts a worker, and writes
the processes it started to a state file. `down` stops exactly those processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from cms_pipeline import processes
from cms_pipeline.config import PROJECT_ROOT, ConfigError, Settings, read_yaml
from cms_pipeline.processes import (
    Started,
    StartError,
    StartTimeout,
    free_port,
    is_ours,
    port_is_free,
)
from cms_pipeline.runtime import prepare_environment

# Prefect's client (about 1 s to import) is imported in the two functions that talk to the
# server's API; `down`, the state file and the server's process need none of it.

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
WRITERS_QUEUE = "lake-writers"  # one run at a time: two runs never write the same table
# A Prefect server starts in ~8 s on an idle machine; 100 s was seen on 2 busy cores.
STARTUP_TIMEOUT_S = 300.0
DEPLOY_TIMEOUT_S = 600.0  # `prefect deploy --all` imports every flow module
PORT_ATTEMPTS = 3  # a port found free may be taken before the server binds it

log = logging.getLogger(__name__)


# --- deployments (prefect.yaml, deployed by `prefect deploy --all`) ---------------------


def prefect_deployments(path: Path = PREFECT_YAML) -> list[dict]:
    """The deployments of prefect.yaml as Prefect reads them (YAML anchors resolved)."""
    deployments = read_yaml(path).get("deployments") or []
    for i, d in enumerate(deployments):
        missing = [k for k in ("name", "entrypoint", "work_pool") if not d.get(k)]
        if missing:
            raise ConfigError(f"{path}: deployments[{i}] lacks {missing}")
    return deployments


def work_queues(deployments: list[dict]) -> dict[str, set[str]]:
    """Work pool -> the queues its deployments name (besides `default`)."""
    pools: dict[str, set[str]] = {}
    for d in deployments:
        pool = d["work_pool"]
        pools.setdefault(pool["name"], set()).add(pool.get("work_queue_name") or "default")
    return {pool: queues - {"default"} for pool, queues in pools.items()}


def deploy_to(api_url: str, env: Mapping[str, str] | None = None) -> dict:
    """Create the pools and queues, then `prefect deploy --all` on prefect.yaml.

    The pools come first because `prefect deploy` refuses a pool that does not exist;
    the writers queue gets its limit of one run at a time. Returns the deployments found
    on the server afterwards (`flow/deployment`) and those of prefect.yaml that are not.
    """
    deployments = prefect_deployments()
    env = {**(env or os.environ), "PREFECT_API_URL": api_url}
    _ensure_pools(api_url, work_queues(deployments))
    argv = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    argv += ["--prefect-file", str(PREFECT_YAML)]
    done = subprocess.run(
        argv, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=DEPLOY_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`prefect deploy --all` failed (exit {done.returncode}):\n"
            + (done.stdout[-3000:] + done.stderr[-3000:])
        )
    return _deployed(api_url, [d["name"] for d in deployments])


def _deployed(api_url: str, names: list[str]) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            found = {d.name: d for d in client.read_deployments()}
            flows = {f.id: f.name for f in client.read_flows()}
    return {
        "deployed": [f"{flows[found[n].flow_id]}/{n}" for n in names if n in found],
        "skipped": {
            n: "not on the server after `prefect deploy --all`" for n in names if n not in found
        },
    }


def _ensure_pools(api_url: str, pools: dict[str, set[str]]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            for pool, queues in sorted(pools.items()):
                try:
                    client.create_work_pool(
                        WorkPoolCreate(name=pool, type="process", base_job_template=template)
                    )
                except ObjectAlreadyExists:
                    pass
                for queue in sorted(queues):
                    try:
                        client.create_work_queue(
                            name=queue,
                            work_pool_name=pool,
                            concurrency_limit=1 if queue == WRITERS_QUEUE else None,
                        )
                    except ObjectAlreadyExists:
                        pass


# --- processes and their state file -----------------------------------------------------


@dataclass
class StackState:
    api_url: str
    ui_url: str
    prefect_home: str
    lake: str
    processes: list[Started]
    web_url: str = ""  # the dashboard (`cms-pipeline web`), once it listens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StackState:
        return cls(**{**data, "processes": [Started(**p) for p in data["processes"]]})


def prefect_home(settings: Settings) -> Path:
    return settings.metadata_path("prefect")


def state_file(settings: Settings) -> Path:
    return prefect_home(settings) / "stack.json"


def read_state(settings: Settings) -> StackState | None:
    body = processes.read_state(state_file(settings))
    return None if body is None else StackState.from_dict(body)


def _write_state(settings: Settings, state: StackState) -> None:
    processes.write_state(state_file(settings), state.to_dict())


def running_api_url(settings: Settings) -> str | None:
    """The API of the stack `up` started for this lake, if it still runs."""
    state = read_state(settings)
    if state and state.processes and all(is_ours(p) for p in state.processes):
        return state.api_url
    return None


def stack_environment(settings: Settings, api_url: str, schedules: bool = True) -> dict[str, str]:
    """The environment of the server and the worker (and so of every flow run).

    `schedules=False` turns the server's scheduler service off: the deployments keep the
    schedules of prefect.yaml, but no scheduled run is created (triggers still fire)."""
    prepare_environment()  # Java, telemetry off
    home = prefect_home(settings)
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "5",
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true" if schedules else "false",
        "CMS_PIPELINE_LAKE": settings.lake,  # flow runs use this stack's lake by default
    }


def wait_healthy(api_url: str, server: Started, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Until the server we started listens on the API's port and the API answers /health
    (another server on that port fails at once, see processes.owns_port)."""
    what = f"the Prefect server at {api_url}"
    url = httpx.URL(api_url)
    host, port = url.host, url.port

    def healthy() -> bool:
        if not processes.owns_port(server, host, port, what):
            return False
        try:
            return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    processes.wait_until(healthy, server, timeout, what)


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Started:
    # Own session: `down` stops the process and the children it starts (the server's API
    # process, the worker's flow runs) as one group.
    return processes.spawn(name, args, env, logs / f"{name}.log", cwd=PROJECT_ROOT)


def up(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int | None = 4200,
    timeout: float = STARTUP_TIMEOUT_S,
    with_schedules: bool = True,
) -> tuple[StackState, dict]:
    """Start server and worker, create pools and deployments; returns (state, deploy report).

    `port=None` (or 0) takes a free port, and another one when a different process binds
    it first (see `_start_server`). `with_schedules=False` starts the server without its
    scheduler: nothing runs by itself, yet the deployments carry their schedules. When
    the state file names running processes, the stack is already up: nothing is started
    again and the deployments are refreshed.
    """
    prefect_deployments()  # a broken prefect.yaml fails before anything starts
    home = prefect_home(settings)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    state = read_state(settings)
    if state and all(is_ours(p) for p in state.processes):
        return state, deploy_to(state.api_url, stack_environment(settings, state.api_url))
    if state:
        down(settings)  # a half-dead stack from before: stop what is left of it

    if port and not port_is_free(host, port):
        # Else the health check could answer for another server on that port.
        raise RuntimeError(f"port {port} on {host} is in use; pass another (--port)")
    try:
        state, env = _start_server(settings, host, port, timeout, with_schedules, logs)
        report = deploy_to(state.api_url, env)
        for pool in sorted(work_queues(prefect_deployments())):
            argv = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
            argv += ["--type", "process", "--name", f"cms-pipeline-{pool}"]
            state.processes.append(_spawn(f"worker-{pool}", argv, env, logs))
            _write_state(settings, state)
        state.web_url = _start_dashboard(settings, host, env, logs, state, timeout)
        _write_state(settings, state)
    except BaseException:
        down(settings)
        raise
    return state, report


def _start_server(
    settings: Settings, host: str, port: int | None, timeout: float, schedules: bool, logs: Path
) -> tuple[StackState, dict[str, str]]:
    """Start `prefect server start` and wait until it answers; (state, environment).

    Prefect names its port before it starts (PREFECT_API_URL, the UI's API URL) and
    `prefect server start` takes no socket from us, so a chosen free port can be taken
    by another process before the server binds it. With no port given, that start is
    retried on a new free port (PORT_ATTEMPTS in all); a port the user gave is not.
    """
    attempts = 1 if port else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port or free_port(host)
        api_url = f"http://{host}:{chosen}/api"
        env = stack_environment(settings, api_url, schedules)
        argv = [sys.executable, "-m", "prefect", "server", "start"]
        server = _spawn("server", [*argv, "--host", host, "--port", str(chosen)], env, logs)
        home = str(prefect_home(settings))
        state = StackState(api_url, f"http://{host}:{chosen}", home, settings.lake, [server])
        _write_state(settings, state)  # at once, so `down` can stop it even if a step fails
        try:
            wait_healthy(api_url, server, timeout)
            return state, env
        except StartTimeout:
            raise
        except StartError as exc:  # it stopped, or another process holds its port
            processes.stop_group(server)
            collided = not port and processes.port_open(host, chosen)  # not ours: stopped
            if not collided or attempt == attempts:
                raise
            log.warning("%s; trying another port", exc)
    raise AssertionError("unreachable")


def _start_dashboard(settings, host: str, env, logs: Path, state: StackState, timeout) -> str:
    """`cms-pipeline web` for the stack's lake on a port it binds itself; its URL."""
    argv = [sys.executable, "-m", "cms_pipeline", "web", "--lake", settings.lake]
    web = _spawn("web", [*argv, "--host", host, "--port", "0"], env, logs)
    state.processes.append(web)
    _write_state(settings, state)
    processes.wait_until(
        lambda: bool(processes.listening_ports(web)), web, timeout, "the dashboard"
    )
    return f"http://{host}:{min(processes.listening_ports(web))}/"


def down(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Stop the processes named in the state file (and their children); nothing else."""
    state = read_state(settings)
    if state is None:
        return []
    stopped = [
        f"{proc.name} (pid {proc.pid})"
        for proc in reversed(state.processes)  # the worker first, the server last
        if processes.stop_group(proc, timeout)
    ]
    state_file(settings).unlink(missing_ok=True)
    return stopped
