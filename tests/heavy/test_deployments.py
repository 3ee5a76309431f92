"""`cms-pipeline up` on a real local Prefect server, one stack for the whole module:
`prefect deploy --all` of prefect.yaml, read back; a delivery dropped in landing becomes
one event per file and one triggered pipeline run; then each scheduled deployment run
once, its Prefect artifacts compared with the lake; `down`.

The stack starts with the server's scheduler off (`with_schedules=False`), so only what a
test starts runs; the deployments still carry their schedules. Its free port is taken
by another socket first, so `up` must retry on a new one (issue 33's port race).

The lake is made the way a user's is, once, by the module's fixture: a delivery dropped
in landing, the watch-landing deployment's run and its events, the pipeline run the
trigger starts (ingest, gates, silver, gold, exports, a champion trained on a small
AutoML budget, scores). The tests read what that left, or run nightly-transform, export,
weekly-retrain and daily-scoring as deployments through the worker on it; each passes in
any order, and alone.

Data: the bundled sample_0 (every file kind) and sample_1's first beneficiaries with their
inpatient claims (enough admissions to train `readmission_30d`). Heavy tier: `up`, a full
pipeline with H2O, then four more flow runs, take several minutes on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cms_pipeline import stack
from cms_pipeline.config import Settings, load_settings
from cms_pipeline.exports import exported_build
from cms_pipeline.ingest.ledger import done_hashes, read_ledger
from cms_pipeline.ingest.reader import sha256_of
from cms_pipeline.processes import free_port
from cms_pipeline.publish.publishing import published_build
from cms_pipeline.runtime import environment
from flows.watcher import ARRIVED, RESOURCE_PREFIX
from tests.conftest import SAMPLE_DATA, first_beneficiaries
from tests.integration.conftest import small_budget_config

pytestmark = pytest.mark.integration

BENEFICIARIES = 500  # of sample_1: a few hundred admissions, some readmitted
USE_CASE = "readmission_30d"
KEY = "readmission-30d"  # as in artifact keys (flows/artifacts.py `_key`)


def make_landing(root: Path) -> Path:
    """sample_0 whole; sample_1's first BENEFICIARIES beneficiaries (their summaries and
    inpatient claims): files in two subfolders."""
    shutil.copytree(SAMPLE_DATA / "sample_0", root / "sample_0")
    kinds = ("Beneficiary", "Inpatient")
    first_beneficiaries(SAMPLE_DATA / "sample_1", BENEFICIARIES, kinds, root / "sample_1")
    return root


@dataclass(frozen=True)
class Delivered:
    """What the module's fixture made: the stack, the delivery, and the runs it caused."""

    settings: Settings
    state: stack.StackState
    report: dict
    offered: list[int]  # the ports `up` was offered, in order
    landing: Path
    watcher: object  # the watch-landing deployment's flow run
    pipeline_runs: list  # the pipeline deployment's runs once the trigger's run was final

    @property
    def api_url(self) -> str:
        return self.state.api_url


@pytest.fixture(scope="module")
def taken_port():
    """A port another process holds: the first port `up` is offered."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory, taken_port):
    """`up` on a fresh lake (the first free port it is offered already taken); a delivery
    in landing; the watch-landing deployment's run; the pipeline run its events' trigger
    started, waited for. `down` at the end must stop every process `up` started."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    root = tmp_path_factory.mktemp("stack")
    landing = make_landing(root / "landing")
    config = small_budget_config(root, (USE_CASE,))
    settings = load_settings(lake=str(root / "lake"))
    offered = []

    def first_taken(host="127.0.0.1"):
        offered.append(taken_port if not offered else free_port(host))
        return offered[-1]

    with (
        pytest.MonkeyPatch.context() as mp,
        environment(CMS_PIPELINE_CONFIG=config, CMS_SPARK_DRIVER_MEMORY="2g"),
    ):
        mp.setattr(stack, "free_port", first_taken)
        try:
            state, report = stack.up(settings, port=None, timeout=300, with_schedules=False)
            watcher = run(
                state.api_url,
                "watch-landing/watch-landing",
                {"landing": str(landing), "lake": settings.lake},
            )
            with client_for(state.api_url) as client:
                # One run for the delivery, made by the trigger (the only way this
                # deployment runs here) once its window has passed; waited for to its end.
                pipeline = client.read_deployment_by_name("pipeline/pipeline")
                only = DeploymentFilter(id=DeploymentFilterId(any_=[pipeline.id]))
                runs = wait_for(
                    lambda: client.read_flow_runs(deployment_filter=only),
                    lambda runs: runs and all(r.state.is_final() for r in runs),
                    timeout=1500,
                )
            yield Delivered(settings, state, report, offered, landing, watcher, runs)
        finally:
            recorded = stack.read_state(settings)
            stopped = stack.down(settings)
            if recorded is not None:  # `up` got as far as recording its processes
                assert len(stopped) == len(recorded.processes)
                assert not any(stack.is_ours(p) for p in recorded.processes)
            assert stack.read_state(settings) is None


@pytest.fixture(scope="module")
def lake(delivered) -> Delivered:
    """The lake of the delivery, once the triggered pipeline run completed."""
    [triggered] = delivered.pipeline_runs
    assert triggered.state.is_completed(), triggered.state
    return delivered


def client_for(api_url: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        return get_client(sync_client=True)


def run(api_url: str, deployment: str, parameters: dict | None = None):
    """One run of the deployment through the stack's worker, waited for."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        flow_run = run_deployment(deployment, parameters=parameters or {}, timeout=3600)
    assert flow_run.state.is_completed(), (deployment, flow_run.state)
    return flow_run


def artifacts_of(api_url: str, flow_run) -> dict:
    """The run's artifacts by key (its subflows' and tasks' too)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
    with client_for(api_url) as client:
        return {a.key: a for a in client.read_artifacts(flow_run_filter=runs) if a.key}


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


def delivered_files(landing: Path) -> dict[str, str]:
    """Each delivered file's path below the landing root, and its sha256."""
    return {
        str(p.relative_to(landing)): sha256_of(str(p))[0] for p in sorted(landing.rglob("*.csv"))
    }


# --- up, the deployments as written, deploy again ----------------------------------------


def test_up_retries_on_a_taken_port_and_starts_server_worker_and_dashboard(delivered, taken_port):
    state, offered = delivered.state, delivered.offered
    assert offered[0] == taken_port and len(offered) == 2  # the taken one, then another
    assert state.api_url == f"http://127.0.0.1:{offered[1]}/api"
    assert [p.name for p in state.processes] == ["server", "worker-process", "web"]
    assert stack.read_state(delivered.settings) == state
    page = httpx.get(state.web_url, timeout=30)  # the dashboard, on the stack's lake
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_every_deployment_of_prefect_yaml_is_on_the_server_as_written(delivered):
    wanted = {d["name"]: d for d in stack.prefect_deployments()}
    assert delivered.report["skipped"] == {}
    assert sorted(n.split("/")[1] for n in delivered.report["deployed"]) == sorted(wanted)

    with client_for(delivered.api_url) as client:
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


def test_plain_prefect_deploy_again_updates_in_place(delivered):
    """`prefect deploy --all` run by hand on the same server: same deployments, still one
    automation (the trigger is replaced, not added twice)."""
    env = stack.stack_environment(delivered.settings, delivered.api_url, schedules=False)
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=stack.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with client_for(delivered.api_url) as client:
        assert {d.name for d in client.read_deployments()} == {
            d["name"] for d in stack.prefect_deployments()
        }
        assert len(client.read_automations()) == 1


# --- the delivery: events, the triggered run, the watcher's artifact ---------------------


def test_a_delivery_becomes_one_event_per_file_and_one_triggered_pipeline_run(delivered):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.events.filters import EventFilter, EventNameFilter

    settings, landing = delivered.settings, delivered.landing
    files = delivered_files(landing)
    hashes = set(files.values())
    assert len(hashes) == len(files) > 1  # a delivery of several files, each its own bytes
    assert any("/" in f for f in files)  # in subfolders of the landing area

    with client_for(delivered.api_url) as client:
        events = wait_for(
            lambda: arrivals_in(client, EventFilter(event=EventNameFilter(name=[ARRIVED]))),
            lambda found: len(found) >= len(files),
            timeout=120,
        )
        pipeline = client.read_deployment_by_name("pipeline/pipeline")
        only = DeploymentFilter(id=DeploymentFilterId(any_=[pipeline.id]))
        runs_now = client.read_flow_runs(deployment_filter=only)
    # one event per file: its hash the resource, its path below the landing root the name
    assert len(events) == len(files)
    assert {e.resource.id: e.resource.name for e in events} == {
        RESOURCE_PREFIX + h: f for f, h in files.items()
    }
    assert {(e.payload["landing"], e.payload["lake"]) for e in events} == {
        (str(landing), settings.lake)
    }
    # one pipeline run for the delivery, still one however many tests ran since
    [run] = delivered.pipeline_runs
    assert [r.id for r in runs_now] == [run.id]
    assert run.state.is_completed(), run.state
    assert run.parameters == {"source": str(landing), "lake": settings.lake}
    assert run.name == f"pipeline {landing.name} -> bronze, silver, gold, models"
    assert hashes <= done_hashes(read_ledger(load_settings(lake=settings.lake)))


def test_watch_landing_lists_every_delivered_file_in_its_artifact(delivered):
    watcher, landing = delivered.watcher, delivered.landing
    assert watcher.name == f"watch {landing.name}"
    table = json.loads(artifacts_of(delivered.api_url, watcher)["landing-arrivals"].data)
    files = delivered_files(landing)
    assert sorted(row["file"] for row in table) == sorted(files)
    assert {row["file"]: row["sha256"] for row in table} == files


# --- each scheduled deployment, run once on the delivery's lake --------------------------


def test_nightly_transform_publishes_the_build_its_artifacts_name(lake):
    settings, api_url = lake.settings, lake.api_url
    before = published_build(settings, "gold")["build_id"]

    flow_run = run(api_url, "transform/nightly-transform")

    found = artifacts_of(api_url, flow_run)
    gold = published_build(settings, "gold")["build_id"]
    assert gold != before
    assert f"build `{gold}` published" in found["gold-published"].data
    assert f"build `{gold}` published" in found["silver-published"].data
    gate = json.loads(found["quality-gold"].data)
    assert gate and {row["outcome"] for row in gate} <= {"pass", "warn"}
    assert flow_run.name == "transform silver, gold"


def test_export_writes_the_documents_its_artifact_counts(lake):
    settings, api_url = lake.settings, lake.api_url

    flow_run = run(api_url, "export/export")

    rows = json.loads(artifacts_of(api_url, flow_run)["exports"].data)
    web = {r["name"]: r["value"] for r in rows if r["export"] == "web"}
    states = Path(web["states"])
    assert int(web["state_documents"]) == len(list(states.glob("*.json"))) > 0
    assert exported_build(settings) == published_build(settings, "gold")["build_id"]
    assert flow_run.name == "export gold"


def test_weekly_retrain_registers_the_version_its_model_card_names(lake):
    settings, api_url = lake.settings, lake.api_url

    flow_run = run(api_url, "train/weekly-retrain")

    found = artifacts_of(api_url, flow_run)
    card = found[f"model-card-{KEY}"]
    version = int(re.search(r" v(\d+)$", card.description).group(1))
    models = subprocess.run(
        [sys.executable, "-m", "cms_pipeline", "models", "list", "--lake", settings.lake, "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert models.returncode == 0, models.stderr[-2000:]
    [model] = [m for m in json.loads(models.stdout) if m["use_case"] == USE_CASE]
    assert model["latest"] == version == model["versions"]  # the pipeline's, then this one
    assert f"leaderboard-{KEY}" in found
    assert flow_run.name == "train all use cases"


def test_daily_scoring_artifact_counts_the_rows_it_exported(lake):
    settings, api_url = lake.settings, lake.api_url

    flow_run = run(api_url, "score/daily-scoring")

    text = artifacts_of(api_url, flow_run)[f"score-drift-{KEY}"].data
    exported = json.loads(
        settings.metadata_path("exports", "ml", f"predictions_{USE_CASE}.json").read_text()
    )
    assert f"**{USE_CASE}**: {exported['rows']} rows as of {exported['as_of']}" in text
    assert f"run {exported['run_id']}" in text
    assert len(exported["predictions"]) == exported["rows"] > 0
    assert flow_run.name == "score all use cases"
