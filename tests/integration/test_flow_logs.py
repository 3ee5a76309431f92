"""Inside a Prefect flow run, the library's log records reach the run's logs (what the
Prefect UI shows) as well as stderr: cms_pipeline/logs.py names its loggers in
PREFECT_LOGGING_EXTRA_LOGGERS before Prefect is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

FLOW = """
import asyncio, json, logging
from cms_pipeline import logs
from cms_pipeline.runtime import prepare_environment
logs.configure("json")
prepare_environment()
from prefect import flow, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.context import get_run_context
from prefect.logging.handlers import APILogWorker

@flow
def loads_a_file():
    logging.getLogger("cms_pipeline.ingest").info("loaded %s", "DE1_0_2008.csv")
    return get_run_context().flow_run.id

run_id = loads_a_file()
APILogWorker.drain_all()

async def read():
    async with get_client() as client:
        found = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        return [(r.name, r.message) for r in found]

print(json.dumps(asyncio.run(read())))
"""


def test_a_flow_runs_logs_hold_the_librarys_records(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FLOW)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    in_prefect = [tuple(r) for r in json.loads(done.stdout)]
    assert ("cms_pipeline.ingest", "loaded DE1_0_2008.csv") in in_prefect
    on_stderr = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(r.get("message") == "loaded DE1_0_2008.csv" for r in on_stderr)
