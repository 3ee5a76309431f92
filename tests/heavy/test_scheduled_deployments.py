"""Each scheduled deployment of prefect.yaml, run once on a real local Prefect server
(`cms-pipeline up`'s stack, scheduler off), its Prefect artifacts compared with the lake.

The lake is made the way a user's is: a delivery dropped in landing, the watcher
deployment's events, the pipeline run its trigger starts (ingest, gates, silver, gold,
exports, a champion trained on a small AutoML budget, scores). Then nightly-transform,
export, weekly-retrain and daily-scoring each run as deployments through the worker.

Data: the bundled sample_0 (every file kind) and sample_1's first beneficiaries with their
inpatient claims (enough admissions to train `readmission_30d`). Heavy tier: a full
pipeline with H2O, then four more flow runs, take several minutes on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cms_pipeline import stack
from cms_pipeline.config import load_settings
from cms_pipeline.exports import exported_build
from cms_pipeline.publish.publishing import published_build
from cms_pipeline.runtime import environment
from tests.conftest import SAMPLE_DATA
from tests.heavy.test_deployments import client_for, wait_for
from tests.integration.conftest import small_budget_config

pytestmark = [pytest.mark.integration]

BENEFICIARIES = 500  # of sample_1: a few hundred admissions, some readmitted
USE_CASE = "readmission_30d"
KEY = "readmission-30d"  # as in artifact keys (flows/artifacts.py `_key`)


def _lines(path: Path) -> tuple[list[bytes], bytes]:
    data = path.read_bytes()
    end = b"\r\n" if b"\r\n" in data else b"\n"
    return [line for line in data.split(end) if line], end


def make_landing(root: Path) -> Path:
    shutil.copytree(SAMPLE_DATA / "sample_0", root / "sample_0")
    source = SAMPLE_DATA / "sample_1"
    first_year, _ = _lines(next(source.glob("DE1_0_2008_Beneficiary_Summary_File_*")))
    ids = {line.split(b",")[0] for line in first_year[1 : BENEFICIARIES + 1]}
    (root / "sample_1").mkdir()
    for path in source.glob("*"):
        if "Beneficiary" in path.name or "Inpatient" in path.name:
            lines, end = _lines(path)
            rows = [line for line in lines[1:] if line.split(b",")[0] in ids]
            (root / "sample_1" / path.name).write_bytes(end.join([lines[0], *rows]) + end)
    return root


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


@pytest.fixture(scope="module")
def lake_from_a_delivery(tmp_path_factory):
    """Stack up; a delivery in landing; the watcher deployment's run; the pipeline run its
    trigger started. Yields (settings, api_url, landing, watcher run, pipeline run)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    root = tmp_path_factory.mktemp("scheduled")
    landing = make_landing(root / "landing")
    config = small_budget_config(root, (USE_CASE,))
    settings = load_settings(lake=str(root / "lake"))
    with environment(CMS_PIPELINE_CONFIG=config, CMS_SPARK_DRIVER_MEMORY="2g"):
        try:
            state, _ = stack.up(settings, port=None, timeout=300, with_schedules=False)
            watcher = run(
                state.api_url,
                "watch-landing/watch-landing",
                {"landing": str(landing), "lake": settings.lake},
            )
            with client_for(state.api_url) as client:
                pipeline = client.read_deployment_by_name("pipeline/pipeline")
                only = DeploymentFilter(id=DeploymentFilterId(any_=[pipeline.id]))
                runs = wait_for(
                    lambda: client.read_flow_runs(deployment_filter=only),
                    lambda runs: runs and all(r.state.is_final() for r in runs),
                    timeout=3600,
                )
            [triggered] = runs
            assert triggered.state.is_completed(), triggered.state
            yield settings, state.api_url, landing, watcher, triggered
        finally:
            stack.down(settings)


def test_watch_landing_lists_every_delivered_file_in_its_artifact(lake_from_a_delivery):
    settings, api_url, landing, watcher, _ = lake_from_a_delivery
    table = json.loads(artifacts_of(api_url, watcher)["landing-arrivals"].data)
    delivered = sorted(str(p.relative_to(landing)) for p in landing.rglob("*.csv"))
    assert sorted(row["file"] for row in table) == delivered


def test_nightly_transform_publishes_the_build_its_artifacts_name(lake_from_a_delivery):
    settings, api_url, *_ = lake_from_a_delivery
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


def test_export_writes_the_documents_its_artifact_counts(lake_from_a_delivery):
    settings, api_url, *_ = lake_from_a_delivery

    flow_run = run(api_url, "export/export")

    rows = json.loads(artifacts_of(api_url, flow_run)["exports"].data)
    web = {r["name"]: r["value"] for r in rows if r["export"] == "web"}
    states = Path(web["states"])
    assert int(web["state_documents"]) == len(list(states.glob("*.json"))) > 0
    assert exported_build(settings) == published_build(settings, "gold")["build_id"]
    assert flow_run.name == "export gold"


def test_weekly_retrain_registers_the_version_its_model_card_names(lake_from_a_delivery):
    settings, api_url, *_ = lake_from_a_delivery

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


def test_daily_scoring_artifact_counts_the_rows_it_exported(lake_from_a_delivery):
    settings, api_url, *_ = lake_from_a_delivery

    flow_run = run(api_url, "score/daily-scoring")

    text = artifacts_of(api_url, flow_run)[f"score-drift-{KEY}"].data
    exported = json.loads(
        settings.metadata_path("exports", "ml", f"predictions_{USE_CASE}.json").read_text()
    )
    assert f"**{USE_CASE}**: {exported['rows']} rows as of {exported['as_of']}" in text
    assert f"run {exported['run_id']}" in text
    assert len(exported["predictions"]) == exported["rows"] > 0
    assert flow_run.name == "score all use cases"
