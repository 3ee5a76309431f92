"""The `cluster` profile for real: a Spark standalone master and worker, a Hive metastore
service and a Spark Thrift Server on this machine (cms_pipeline/spark_cluster.py).

The CLI runs in child processes with CMS_PIPELINE_ENV=cluster, as a user would: its
SparkSession joins the master and registers the bronze snapshots in the shared metastore,
and dbt builds and publishes silver through the Thrift Server. This test process never
starts Spark (its own session, if any, holds another metastore). Data: sample_0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.spark_cluster import free_port, local_cluster
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_cluster(tmp_path_factory.mktemp("spark_cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory) -> dict[str, str]:
    lake = tmp_path_factory.mktemp("cluster_lake") / "lake"
    return {**os.environ, **cluster.environment(lake=str(lake))}


def _cli(env: dict, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cms_pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return json.loads(result.stdout)


def _query(cluster, sql: str) -> list[tuple]:
    """Through the Thrift Server, the endpoint dbt uses."""
    from pyhive import hive

    with hive.connect(host="127.0.0.1", port=cluster.thrift_port, username="cms") as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.fixture(scope="module")
def silver(env):
    """sample_0 -> bronze (delta-rs) -> gated silver build through the Thrift Server."""
    ingest = _json(_cli(env, "ingest", str(SAMPLE_DATA / "sample_0"), "--json"))
    assert ingest["totals"]["rejected"] == 0
    return _json(_cli(env, "transform", "--layer", "silver", "--json"))


def _settings(env: dict):
    keys = ("CMS_PIPELINE_ENV", "CMS_PIPELINE_LAKE", "CMS_PIPELINE_METADATA")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    try:
        return load_settings()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def test_silver_is_built_and_published_through_the_thrift_server(cluster, env, silver):
    from deltalake import DeltaTable

    from cms_pipeline.lake import bronze_uri

    build = silver["builds"][0]
    assert build["success"], build["error"]
    unit_tests = [t for t in build["tests"] if t["resource_type"] == "unit_test"]
    assert unit_tests and all(t["status"] == "pass" for t in unit_tests)
    assert silver["published"]["silver"]["schema"] == build["schema"]

    # the bronze tables the pipeline's own session registered are the ones dbt read
    for table, version in build["bronze_versions"].items():
        props = dict(_query(cluster, f"show tblproperties bronze.{table}"))
        assert props["cms.delta_version"] == str(version)

    views = {row[1] for row in _query(cluster, "show views in silver")}
    assert set(build["models"]) <= views

    settings = _settings(env)
    bronze = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table(
        columns=["DESYNPUF_ID", "year"]
    )
    expected = len(set(zip(*bronze.to_pydict().values(), strict=True)))
    assert _query(cluster, "select count(*) from silver.beneficiary") == [(expected,)]


def test_docs_are_generated_and_served_over_http(cluster, env, silver, tmp_path):
    assert _cli(env, "docs", "generate").returncode == 0
    port = free_port()
    log = tmp_path / "docs_serve.log"  # a file, not a pipe that fills while nobody reads it
    server = subprocess.Popen(
        [sys.executable, "-m", "cms_pipeline", "docs", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                index = httpx.get(f"{base}/index.html", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "docs site did not answer"
                time.sleep(1)
        assert index.status_code == 200 and "<html" in index.text.lower()
        catalog = httpx.get(f"{base}/catalog.json", timeout=30).json()
    finally:
        server.terminate()
        server.wait(timeout=60)
    node = catalog["nodes"]["model.cms_pipeline.beneficiary"]
    columns = {row[0] for row in _query(cluster, "describe silver.beneficiary")}
    assert set(node["columns"]) == {c for c in columns if c and not c.startswith("#")}
