"""Inside a Prefect flow run, the library's log records reach the run's logs (what the
Prefect UI shows) as well as stderr: cms_pipeline/logs.py names its loggers in
PREFECT_LOGGING_EXTRA_LOGGERS before Prefect is imported, in a process the CLI configured
(below: the test configures it) and in one a Prefect worker started for a flow run
(configured when the flows package is imported: flows/__init__.py)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cms_pipeline import logs

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


# A deployed flow like flows/ingest.py's, less its Spark step: the real `ingest files` task
# (the library's ingest) in a flow whose module, like every deployment's entrypoint,
# imports the flows package. Nothing here configures logging.
DEPLOYED_FLOW = """
from prefect import flow
from prefect.utilities.annotations import quote

from cms_pipeline.config import load_settings
from flows.ingest import ingest_files


@flow(name="ingest-without-spark")
def ingest_without_spark(source: str, lake: str) -> list[str]:
    return ingest_files(quote(load_settings(lake=lake)), source).ignored
"""


def _run_logs(run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))


@pytest.mark.integration
def test_a_worker_started_flow_run_logs_the_librarys_info_records(prefect_harness, tmp_path):
    """A process worker runs a deployment's flow run in a fresh interpreter: `python -m
    prefect.engine`, the run's id in PREFECT__FLOW_RUN_ID, the flow loaded from the
    deployment's entrypoint. Run so (without the worker's polling), with neither our
    logging variables nor PREFECT_LOGGING_EXTRA_LOGGERS set but the format, the run's logs
    on the server hold the library's INFO records, and stderr has them as JSON lines."""
    from prefect.client.orchestration import get_client

    (tmp_path / "deployed_logs_flow.py").write_text(DEPLOYED_FLOW)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "notes.txt").write_text("not a CMS file\n")
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("ingest-without-spark")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name="logs",
            entrypoint="deployed_logs_flow.ingest_without_spark",  # a module path, as ours
            pull_steps=[],
        )
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"source": str(landing), "lake": str(tmp_path / "lake")}
        )

    ours = ("PREFECT_LOGGING_", logs.FORMAT_ENV, logs.LEVEL_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PREFECT_API_URL=prefect_harness,
        PREFECT__FLOW_RUN_ID=str(run.id),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)]),
        **{logs.FORMAT_ENV: "json"},
    )
    work_dir = tmp_path / "run"  # the worker's: a temporary folder
    work_dir.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "prefect.engine"],
        capture_output=True,
        text=True,
        cwd=work_dir,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    message = "ignored notes.txt: no contract in config/sources matches its name"
    deadline = time.monotonic() + 15
    while True:  # the engine sent its logs before it exited; the server may lag a little
        found = [(r.name, r.level, r.message) for r in _run_logs(run.id)]
        if ("cms_pipeline.ingest", logging.INFO, message) in found:
            break
        assert time.monotonic() < deadline, f"not in the run's logs: {found}"
        time.sleep(0.5)
    on_stderr = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    record = next(r for r in on_stderr if r.get("message") == message)
    assert (record["logger"], record["level"]) == ("cms_pipeline.ingest", "INFO")


def test_h2os_notes_printed_inside_a_flow_that_logs_prints_stay_our_records(prefect_harness):
    """Inside a Prefect run with log_prints (the pipeline's), `print` is Prefect's and sends
    each line to the run's logger at INFO; h2o's notes still become models_ml.h2o_cluster's
    records: its build-age notice at DEBUG (scripts/run showed it at INFO before)."""
    from types import SimpleNamespace

    import h2o
    from h2o.backend.cluster import H2OCluster
    from prefect import flow
    from prefect.context import get_run_context

    from models_ml.h2o_cluster import h2o_notes

    logger = logging.getLogger("test_flow_logs.h2o")
    logger.setLevel(logging.DEBUG)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = seen.append
    logger.addHandler(handler)
    # the client's own check, as h2o.init runs it on a server whose build is too old
    cluster = SimpleNamespace(version=h2o.__version__, build_too_old=True, build_age="7 months")

    @flow(log_prints=True)
    def connects_to_h2o():
        with h2o_notes(logger):
            H2OCluster.check_version(cluster)
        print("a print of the flow's own")
        return get_run_context().flow_run.id

    try:
        run_id = connects_to_h2o()
    finally:
        logger.removeHandler(handler)
    notice = [r for r in seen if "7 months" in r.getMessage()]
    assert notice and {r.levelno for r in notice} == {logging.DEBUG}
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    in_prefect = [r.message for r in _run_logs(run_id)]
    assert "a print of the flow's own" in in_prefect  # log_prints still works outside it
    assert not any("7 months" in message for message in in_prefect)
