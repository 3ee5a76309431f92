"""The pipeline starts its SparkSession in the background while ingestion runs: the
session it starts is the one every stage then gets, and a JVM that cannot start fails
the first stage that needs Spark, not the process. Each case runs in a process of its
own (a process holds one SparkSession)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import sys
from pyspark import SparkContext
from cms_pipeline.config import load_settings
from cms_pipeline.spark import get_spark, start_in_background

settings = load_settings(lake=sys.argv[1])
thread = start_in_background(settings)
thread.join(timeout=600)
print("alive after join:", thread.is_alive())
print("started by the thread:", SparkContext._active_spark_context is not None)
try:
    spark = get_spark(settings)
except Exception as exc:
    print("get_spark raised:", type(exc).__name__)
    sys.exit(3)
print("warehouse:", spark.conf.get("spark.sql.warehouse.dir"))
print("bronze exists:", spark.catalog.databaseExists("bronze"))
"""


def _run(lake: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(lake)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_session_started_in_the_background_is_the_one_stages_get(tmp_path):
    lake = tmp_path / "lake"
    done = _run(lake)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "alive after join: False" in done.stdout
    assert "started by the thread: True" in done.stdout
    # the thread connected the metastore of this lake's metadata folder
    warehouse = next(ln for ln in done.stdout.splitlines() if ln.startswith("warehouse:"))
    assert str(lake.resolve()) in warehouse
    assert (lake / "_metadata" / "metastore_db").is_dir()
    assert "bronze exists: False" in done.stdout


def test_a_jvm_that_cannot_start_fails_the_stage_that_needs_it(tmp_path):
    done = _run(tmp_path / "lake", JAVA_HOME=str(tmp_path / "no-such-jdk"))
    assert done.returncode == 3, done.stdout + done.stderr[-3000:]
    assert "alive after join: False" in done.stdout
    assert "started by the thread: False" in done.stdout
    assert "get_spark raised:" in done.stdout
