"""The local Prefect stack: server (SQLite), process work pool, deployments and a worker.

`up` starts a Prefect server with its home (database, logs) under the metadata folder,
waits until it answers, creates the work pool and queues, creates every deployment of
prefect.yaml with the schedules of config/schedules.yaml, starts a worker, and writes
the processes it started to a state file. `down` stops exactly those processes.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cms_pipeline import processes
from cms_pipeline.config import (
    PROJECT_ROOT,
    SCHEDULES_YAML,
    ConfigError,
    ScheduleConfig,
    Settings,
    load_schedules,
    read_yaml,
)
from cms_pipeline.processes import Started, is_ours, port_is_free
from cms_pipeline.runtime import prepare_environment

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
WRITERS_QUEUE = "lake-writers"  # one run at a time: two runs never write the same table
# A Prefect server starts in ~8 s on an idle machine; 100 s was seen on 2 busy cores.
STARTUP_TIMEOUT_S = 300.0


# --- deployments (prefect.yaml) ---------------------------------------------------------


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str  # flows/ingest.py:ingest_flow
    work_pool: str
    work_queue: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: dict[str, Any] | None = None

    @property
    def module_and_function(self) -> tuple[str, str]:
        path, function = self.entrypoint.split(":")
        return path.removesuffix(".py").replace("/", "."), function


def load_deployment_specs(
    path: Path = PREFECT_YAML, schedules: ScheduleConfig | None = None
) -> list[DeploymentSpec]:
    """The deployments of prefect.yaml; schedule names must match one of them."""
    specs = []
    for i, d in enumerate(read_yaml(path).get("deployments") or []):
        missing = [k for k in ("name", "entrypoint", "work_pool") if not d.get(k)]
        if missing:
            raise ConfigError(f"{path}: deployments[{i}] lacks {missing}")
        limit = d.get("concurrency_limit")
        specs.append(
            DeploymentSpec(
                name=d["name"],
                entrypoint=d["entrypoint"],
                work_pool=d["work_pool"]["name"],
                work_queue=d["work_pool"].get("work_queue_name") or "default",
                description=" ".join((d.get("description") or "").split()),
                tags=tuple(d.get("tags") or ()),
                parameters=dict(d.get("parameters") or {}),
                concurrency_limit={"limit": limit} if isinstance(limit, int) else limit,
            )
        )
    if schedules is not None:
        unknown = sorted(set(schedules.schedules) - {s.name for s in specs})
        if unknown:
            raise ConfigError(
                f"{SCHEDULES_YAML}: schedules for {unknown}, which prefect.yaml does not "
                f"deploy; expected names among {[s.name for s in specs]}"
            )
    return specs


def deploy_all(api_url: str, specs: list[DeploymentSpec], schedules: ScheduleConfig | None) -> dict:
    """Create the pools, queues and deployments on the server at `api_url`.

    Flows are deployed by module path, so a worker runs them from the installed project
    wherever it is. A flow module that is not there yet is reported, not fatal.
    `schedules=None` creates the deployments without schedules (on demand only).
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.deployments.runner import EntrypointType, deploy
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deployed, skipped = [], {}
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        _ensure_pools(specs)
        runners = []
        for spec in specs:
            module, function = spec.module_and_function
            try:
                flow = getattr(importlib.import_module(module), function)
            except (ImportError, AttributeError) as exc:
                skipped[spec.name] = f"{spec.entrypoint}: {exc}"
                continue
            limit = spec.concurrency_limit
            runners.append(
                flow.to_deployment(
                    name=spec.name,
                    description=spec.description,
                    tags=list(spec.tags),
                    parameters=spec.parameters,
                    schedules=schedules.for_deployment(spec.name) if schedules else [],
                    concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
                    work_pool_name=spec.work_pool,
                    work_queue_name=spec.work_queue,
                    entrypoint_type=EntrypointType.MODULE_PATH,
                )
            )
            deployed.append(f"{flow.name}/{spec.name}")
        for pool in sorted({r.work_pool_name for r in runners}):
            with contextlib.redirect_stdout(io.StringIO()):  # deploy() prints a rich table
                deploy(
                    *[r for r in runners if r.work_pool_name == pool],
                    work_pool_name=pool,
                    build=False,
                    push=False,
                    print_next_steps_message=False,
                    ignore_warnings=True,
                )
    return {"deployed": deployed, "skipped": skipped}


def deploy_to(api_url: str, with_schedules: bool = True) -> dict:
    """Create pools, queues and deployments on a running server (compose's worker does this)."""
    config = load_schedules()
    specs = load_deployment_specs(schedules=config)
    return deploy_all(api_url, specs, config if with_schedules else None)


def _ensure_pools(specs: list[DeploymentSpec]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        for pool in sorted({s.work_pool for s in specs}):
            try:
                client.create_work_pool(
                    WorkPoolCreate(name=pool, type="process", base_job_template=template)
                )
            except ObjectAlreadyExists:
                pass
            queues = {s.work_queue for s in specs if s.work_pool == pool} - {"default"}
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


def stack_environment(settings: Settings, api_url: str) -> dict[str, str]:
    """The environment of the server and the worker (and so of every flow run)."""
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
    port: int = 4200,
    timeout: float = STARTUP_TIMEOUT_S,
    with_schedules: bool = True,
) -> tuple[StackState, dict]:
    """Start server and worker, create pools and deployments; returns (state, deploy report).

    `with_schedules=False` leaves every deployment on demand (nothing runs by itself).
    When the state file names running processes, the stack is already up: nothing is
    started again and the deployments are refreshed.
    """
    config = load_schedules()
    specs = load_deployment_specs(schedules=config)
    schedules = config if with_schedules else None  # validated either way
    home = prefect_home(settings)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    state = read_state(settings)
    if state and all(is_ours(p) for p in state.processes):
        return state, deploy_all(state.api_url, specs, schedules)
    if state:
        down(settings)  # a half-dead stack from before: stop what is left of it

    if not port_is_free(host, port):
        # Else the health check could answer for another server on that port. Prefect
        # cannot bind port 0 for us (processes.free_port says why).
        raise RuntimeError(f"port {port} on {host} is in use; pass another (--port)")
    api_url = f"http://{host}:{port}/api"
    env = stack_environment(settings, api_url)
    prefect = [sys.executable, "-m", "prefect"]
    server = _spawn(
        "server", [*prefect, "server", "start", "--host", host, "--port", str(port)], env, logs
    )
    state = StackState(api_url, f"http://{host}:{port}", str(home), settings.lake, [server])
    _write_state(settings, state)  # at once, so `down` can stop it even if a step fails
    try:
        wait_healthy(api_url, server, timeout)
        report = deploy_all(api_url, specs, schedules)
        pools = sorted({s.work_pool for s in specs})
        for pool in pools:
            worker = _spawn(
                f"worker-{pool}",
                [
                    *prefect,
                    "worker",
                    "start",
                    "--pool",
                    pool,
                    "--type",
                    "process",
                    "--name",
                    f"cms-pipeline-{pool}",
                ],
                env,
                logs,
            )
            state.processes.append(worker)
            _write_state(settings, state)
        state.web_url = _start_dashboard(settings, host, env, logs, state, timeout)
        _write_state(settings, state)
    except BaseException:
        down(settings)
        raise
    return state, report


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
