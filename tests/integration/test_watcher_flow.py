"""The landing-zone watcher announces a new file and (with `then`) ingests it, and does
neither for the same file again.

Real Prefect (the session's test server), real ingest into a temporary lake. The watcher
runs in its own process: ingestion syncs bronze tables through Spark, whose Derby
metastore belongs to one lake per process, and this test process keeps the session's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.ingest.ledger import done_hashes, read_ledger
from cms_pipeline.ingest.reader import sha256_of

pytestmark = pytest.mark.integration

RUN_WATCHER = """
import json, sys
from flows.watcher import watcher_flow
print("WATCHER " + json.dumps(watcher_flow(landing=sys.argv[1], lake=sys.argv[2], then="ingest")))
"""


def run_watcher(api_url: str, landing, lake) -> dict:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    result = subprocess.run(
        [sys.executable, "-c", RUN_WATCHER, str(landing), str(lake)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("WATCHER "))
    return json.loads(line.removeprefix("WATCHER "))


def ingest_runs(lake: str) -> list:
    """Flow runs of the ingest flow that were given this lake."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])))
    return [r for r in runs if r.parameters.get("lake") == lake]


def test_watcher_ingests_a_new_file_once(prefect_harness, sample_data, tmp_path):
    landing, lake = tmp_path / "landing", str(tmp_path / "lake")
    landing.mkdir()
    src = sorted(sample_data.glob("sample_0/*Beneficiary_Summary_File*.csv"))[0]
    delivered = landing / src.name
    delivered.write_bytes(src.read_bytes())
    sha, _ = sha256_of(str(delivered))

    first = run_watcher(prefect_harness, landing, lake)

    assert [a["sha256"] for a in first["arrivals"]] == [sha]
    assert first["started"]["mode"] == "subflow"  # `then`: run here, no trigger needed
    assert sha in done_hashes(read_ledger(load_settings(lake=lake)))
    [run] = ingest_runs(lake)
    assert run.state.is_completed()

    second = run_watcher(prefect_harness, landing, lake)

    assert second["arrivals"] == [] and second["started"] is None
    assert len(ingest_runs(lake)) == 1  # the same file started nothing
