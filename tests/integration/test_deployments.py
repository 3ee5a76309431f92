"""`up` on a real local Prefect server: deployments, a triggered run through the worker, `down`.

The watcher deployment is triggered on a landing area with one new file; it starts the
ingest deployment (on the one-at-a-time writers queue), and both runs complete in the
worker's processes. `down` then stops every process `up` started.
"""

from __future__ import annotations

import httpx
import pytest

from cms_pipeline import stack
from cms_pipeline.config import load_settings
from cms_pipeline.ingest.ledger import done_hashes, read_ledger
from cms_pipeline.ingest.reader import sha256_of
from cms_pipeline.processes import free_port

pytestmark = pytest.mark.integration


def test_up_deploys_runs_through_the_worker_and_down_stops_it(tmp_path, sample_data):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = load_settings(lake=str(tmp_path / "lake"))
    landing = tmp_path / "landing"
    landing.mkdir()
    src = sorted(sample_data.glob("sample_0/*Inpatient_Claims*.csv"))[0]
    (landing / src.name).write_bytes(src.read_bytes())
    sha, _ = sha256_of(str(landing / src.name))

    try:
        # No schedules: nothing may start by itself while the test runs.
        state, report = stack.up(settings, port=free_port(), timeout=300, with_schedules=False)
        assert report["skipped"] == {}
        assert {"watch-landing/watch-landing", "ingest/ingest", "pipeline/pipeline"} <= set(
            report["deployed"]
        )
        assert [p.name for p in state.processes] == ["server", "worker-process", "web"]
        assert stack.read_state(settings) == state
        page = httpx.get(state.web_url, timeout=30)  # the dashboard, on the stack's lake
        assert page.status_code == 200 and "<html" in page.text.lower()

        with temporary_settings(updates={PREFECT_API_URL: state.api_url}):
            watcher = run_deployment(
                "watch-landing/watch-landing",
                parameters={"landing": str(landing), "lake": settings.lake, "then": "ingest"},
                timeout=900,
            )
            assert watcher.state.is_completed(), watcher.state
            with get_client(sync_client=True) as client:
                ingest = client.read_deployment_by_name("ingest/ingest")
                runs = client.read_flow_runs()
                queue = client.read_work_queue_by_name(
                    stack.WRITERS_QUEUE, work_pool_name="process"
                )
            [ingest_run] = [r for r in runs if r.deployment_id == ingest.id]
            assert ingest_run.state.is_completed()
            assert ingest_run.parameters["source"] == str(landing)
            assert ingest_run.work_queue_name == stack.WRITERS_QUEUE
            assert queue.concurrency_limit == 1
            assert ingest.global_concurrency_limit.limit == 1
            assert ingest.concurrency_options.collision_strategy == "ENQUEUE"
        assert sha in done_hashes(read_ledger(settings))
    finally:
        recorded = stack.read_state(settings)
        stopped = stack.down(settings)

    assert len(stopped) == len(recorded.processes)
    assert not any(stack.is_ours(p) for p in recorded.processes)
    assert stack.read_state(settings) is None
