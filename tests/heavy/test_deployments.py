"""`up` on a real local Prefect server: `prefect deploy --all` of prefect.yaml, read back;
a delivery dropped in landing becomes events and one triggered pipeline run; `down`.

The stack starts with the server's scheduler off (`with_schedules=False`), so only what a
test starts runs; the deployments still carry their schedules. Its free port is taken
by another socket first, so `up` must retry on a new one (issue 33's port race).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest

from cms_pipeline import stack
from cms_pipeline.config import load_settings
from cms_pipeline.ingest.ledger import done_hashes, read_ledger
from cms_pipeline.ingest.reader import sha256_of
from cms_pipeline.processes import free_port
from cms_pipeline.runtime import environment
from flows.watcher import ARRIVED, RESOURCE_PREFIX
from tests.integration.conftest import small_budget_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def taken_port():
    """A port another process holds: the first port `up` is offered."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def deployed_stack(tmp_path_factory, taken_port):
    """`up` on a fresh lake, no ML use case (the triggered run trains nothing), the first
    free port it is offered already taken. Yields (settings, state, report, offered)."""
    root = tmp_path_factory.mktemp("stack")
    config = small_budget_config(root, use_cases=())
    settings = load_settings(lake=str(root / "lake"))
    offered = []

    def first_taken(host="127.0.0.1"):
        offered.append(taken_port if not offered else free_port(host))
        return offered[-1]

    with pytest.MonkeyPatch.context() as mp, environment(CMS_PIPELINE_CONFIG=config):
        mp.setattr(stack, "free_port", first_taken)
        try:
            state, report = stack.up(settings, port=None, timeout=300, with_schedules=False)
            yield settings, state, report, offered
        finally:
            recorded = stack.read_state(settings)
            stopped = stack.down(settings)
            assert len(stopped) == len(recorded.processes)
            assert not any(stack.is_ours(p) for p in recorded.processes)
            assert stack.read_state(settings) is None


def client_for(api_url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return get_client(sync_client=True)


def test_up_retries_on_a_taken_port_and_starts_server_worker_and_dashboard(
    deployed_stack, taken_port
):
    settings, state, _report, offered = deployed_stack
    assert offered[0] == taken_port and len(offered) == 2  # the taken one, then another
    assert state.api_url == f"http://127.0.0.1:{offered[1]}/api"
    assert [p.name for p in state.processes] == ["server", "worker-process", "web"]
    assert stack.read_state(settings) == state
    page = httpx.get(state.web_url, timeout=30)  # the dashboard, on the stack's lake
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_every_deployment_of_prefect_yaml_is_on_the_server_as_written(deployed_stack):
    _settings, state, report, _ = deployed_stack
    wanted = {d["name"]: d for d in stack.prefect_deployments()}
    assert report["skipped"] == {}
    assert sorted(n.split("/")[1] for n in report["deployed"]) == sorted(wanted)

    with client_for(state.api_url) as client:
        found = {d.name: d for d in client.read_deployments()}
        automations = client.read_automations()
        queue = client.read_work_queue_by_name(stack.WRITERS_QUEUE, work_pool_name="process")
    assert set(found) == set(wanted)
    assert queue.concurrency_limit == 1
    for name, spec in wanted.items():
        got = found[name]
        assert got.entrypoint == spec["entrypoint"] and got.pull_steps == []
        assert got.work_queue_name == spec["work_pool"]["work_queue_name"]
        limit = spec["concurrency_limit"]
        assert got.global_concurrency_limit.limit == limit["limit"], name
        assert got.concurrency_options.collision_strategy == limit["collision_strategy"]
        assert [schedule_of(s.schedule) for s in got.schedules] == [
            schedule_of_yaml(s) for s in spec.get("schedules") or []
        ], name

    [pipeline_trigger] = wanted["pipeline"]["triggers"]
    [automation] = automations  # the only trigger: the pipeline's
    trigger, [action] = automation.trigger, automation.actions
    assert automation.name == pipeline_trigger["name"] and automation.enabled
    assert trigger.match.model_dump() == pipeline_trigger["match"]
    assert trigger.expect == set(pipeline_trigger["expect"]) == {ARRIVED}
    assert trigger.for_each == set(pipeline_trigger["for_each"])
    assert trigger.within == timedelta(seconds=pipeline_trigger["within"])
    assert trigger.threshold == pipeline_trigger["threshold"]
    assert action.deployment_id == found["pipeline"].id
    assert action.parameters == pipeline_trigger["parameters"]
    assert action.schedule_after == timedelta(seconds=pipeline_trigger["schedule_after"])


def schedule_of(schedule) -> dict:
    if getattr(schedule, "cron", None):
        return {"cron": schedule.cron, "timezone": schedule.timezone}
    return {"interval": schedule.interval.total_seconds(), "timezone": schedule.timezone}


def schedule_of_yaml(spec: dict) -> dict:
    if "cron" in spec:
        return {"cron": spec["cron"], "timezone": spec["timezone"]}
    return {"interval": float(spec["interval"]), "timezone": spec["timezone"]}


def test_plain_prefect_deploy_again_updates_in_place(deployed_stack):
    """`prefect deploy --all` run by hand on the same server: same deployments, still one
    automation (the trigger is replaced, not added twice)."""
    _settings, state, _report, _ = deployed_stack
    env = {**stack.stack_environment(_settings, state.api_url, schedules=False)}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=stack.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with client_for(state.api_url) as client:
        assert {d.name for d in client.read_deployments()} == {
            d["name"] for d in stack.prefect_deployments()
        }
        assert len(client.read_automations()) == 1


def test_a_delivery_becomes_one_event_per_file_and_one_triggered_pipeline_run(
    deployed_stack, tmp_path, sample_data
):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.deployments import run_deployment
    from prefect.events.filters import EventFilter, EventNameFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings, state, _report, _ = deployed_stack
    landing = tmp_path / "landing"
    landing.mkdir()
    for src in sorted((sample_data / "sample_0").glob("*.csv")):
        (landing / src.name).write_bytes(src.read_bytes())
    hashes = {sha256_of(str(f))[0] for f in landing.iterdir()}
    assert len(hashes) > 1  # a delivery of several files

    with temporary_settings(updates={PREFECT_API_URL: state.api_url}):
        watcher = run_deployment(
            "watch-landing/watch-landing",
            parameters={"landing": str(landing), "lake": settings.lake},
            timeout=600,
        )
    assert watcher.state.is_completed(), watcher.state
    assert watcher.name == f"watch {landing.name}"

    with client_for(state.api_url) as client:
        pipeline = client.read_deployment_by_name("pipeline/pipeline")
        events = wait_for(
            lambda: arrivals_in(client, EventFilter(event=EventNameFilter(name=[ARRIVED]))),
            lambda found: len(found) >= len(hashes),
            timeout=120,
        )
        assert {e.resource.id for e in events} == {RESOURCE_PREFIX + h for h in hashes}
        assert {(e.payload["landing"], e.payload["lake"]) for e in events} == {
            (str(landing), settings.lake)
        }
        # One run for the delivery, made by the trigger (the only way this deployment
        # runs here), once its window has passed; it ingests every file.
        deployment_filter = DeploymentFilter(id=DeploymentFilterId(any_=[pipeline.id]))
        runs = wait_for(
            lambda: client.read_flow_runs(deployment_filter=deployment_filter),
            lambda runs: runs and all(r.state.is_final() for r in runs),
            timeout=1500,
        )
    [run] = runs
    assert run.state.is_completed(), run.state
    assert run.parameters == {"source": str(landing), "lake": settings.lake}
    assert run.name == f"pipeline {landing.name} -> bronze, silver, gold, models"
    assert hashes <= done_hashes(read_ledger(load_settings(lake=settings.lake)))


def arrivals_in(client, event_filter) -> list:
    page = client.read_events(filter=event_filter, limit=50)  # the API allows 50 a page
    return [e for e in page.events if e.event == ARRIVED]


def wait_for(read, done, timeout: float, interval: float = 3.0):
    """`read()` until `done(value)`; its last value (the caller's assertions explain)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
    return value
