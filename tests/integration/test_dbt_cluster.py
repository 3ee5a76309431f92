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
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cms_pipeline import processes
from cms_pipeline.config import load_settings
from cms_pipeline.logs import LOG4J2
from cms_pipeline.spark_cluster import (
    HOST,
    LocalCluster,
    start_local_cluster,
    stop_local_cluster,
)
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stranger():
    """A port another process holds while the module runs."""
    with socket.create_server((HOST, 0)) as sock:
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, stranger):
    """Started while every port that could be picked in advance (processes.free_port) is
    the stranger's, and while an earlier run's line in the master's log names that port:
    a server given a port chosen beforehand, or a port read from an earlier run's log
    lines, would not start. Started with the CLI's log settings for Spark JVMs, which
    would hide the lines that name the ports the servers bound."""
    root = tmp_path_factory.mktemp("spark_cluster")
    (root / "logs").mkdir()
    earlier = f"INFO Utils: Successfully started service 'sparkMaster' on port {stranger}.\n"
    (root / "logs" / "master.log").write_text(earlier)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processes, "free_port", lambda host=HOST: stranger)
        # as in `cms-pipeline cluster start`: the CLI's own JVMs log warnings only
        patch.setenv("SPARK_CONF_DIR", str(LOG4J2 / "text"))
        running = start_local_cluster(root)
    try:
        yield running
    finally:
        stop_local_cluster(root)


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
    """sample_0 -> bronze (delta-rs) -> silver built through the Thrift Server, checked by its
    Soda gate on the cluster, published."""
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


def test_each_server_binds_a_port_of_its_own_and_the_record_names_it(cluster, stranger):
    ports = {
        "master": cluster.master_port,
        "master UI": cluster.master_ui_port,
        "metastore": cluster.metastore_port,
        "thrift server": cluster.thrift_port,
    }
    assert stranger not in ports.values() and len(set(ports.values())) == 4, ports
    listening = {name: processes.listening_ports(p) for name, p in cluster.started.items()}
    assert {cluster.master_port, cluster.master_ui_port} <= listening["master"]
    assert listening["metastore"] == {cluster.metastore_port}
    assert cluster.thrift_port in listening["thrift_server"]
    # the record `cluster stop` and `cluster start`'s printed variables read
    assert LocalCluster.load(cluster.root) == cluster
    assert cluster.environment()["CMS_SPARK_THRIFT_PORT"] == str(cluster.thrift_port)

    # and they answer: the master's UI names its URL, its worker and the Thrift Server;
    # the Thrift Server answers a query that reads the metastore
    master = httpx.get(f"http://{HOST}:{cluster.master_ui_port}/json/", timeout=30).json()
    assert master["url"] == cluster.master_url and master["aliveworkers"] == 1
    assert "cms-thrift-server" in [app["name"] for app in master["activeapps"]]
    assert ("default",) in _query(cluster, "show databases")


def test_silver_is_built_and_published_through_the_thrift_server(cluster, env, silver):
    from deltalake import DeltaTable

    from cms_pipeline.lake import bronze_uri

    build = silver["builds"][0]
    assert build["success"], build["error"]
    unit_tests = [t for t in build["tests"] if t["resource_type"] == "unit_test"]
    assert unit_tests and all(t["status"] == "pass" for t in unit_tests)
    assert silver["published"]["silver"]["schema"] == build["schema"]
    gate = silver["gates"]["silver"]  # the Soda gate ran on the build, on the cluster
    assert gate["schema"] == build["schema"] and gate["passed"], gate["counts"]
    assert gate["counts"]["pass"] > 0 and gate["not_delivered"] == []

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


def test_docs_are_generated_and_served_over_http(cluster, env, silver, stranger, tmp_path):
    assert _cli(env, "docs", "generate").returncode == 0
    argv = [sys.executable, "-m", "cms_pipeline", "docs", "serve", "--port", "0"]
    # its output goes to a file, not to a pipe that fills while nobody reads it
    server = processes.spawn("docs", argv, env, tmp_path / "docs_serve.log", cwd=Path.cwd())
    try:
        port = processes.wait_for_bound_port(
            server, 300, "docs serve", r"Serving the dbt docs on http://127\.0\.0\.1:(\d+)/"
        )
        assert port != stranger
        base = f"http://{HOST}:{port}"
        index = httpx.get(f"{base}/index.html", timeout=30)
        assert index.status_code == 200 and "<html" in index.text.lower()
        catalog = httpx.get(f"{base}/catalog.json", timeout=30).json()
    finally:
        processes.stop_group(server)
    node = catalog["nodes"]["model.cms_pipeline.beneficiary"]
    columns = {row[0] for row in _query(cluster, "describe silver.beneficiary")}
    assert set(node["columns"]) == {c for c in columns if c and not c.startswith("#")}
