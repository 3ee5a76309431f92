"""The Spark and H2O start-up chatter goes to the log (stderr, in the CLI's log format),
never to stdout, where a command's summary is (cms_pipeline/logs.py, cms_pipeline/log4j2/,
models_ml/h2o_cluster.py). Each test starts its own JVM in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k != "SPARK_CONF_DIR"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**child_env, "PYTHONPATH": str(PROJECT_ROOT), **env},
        timeout=300,
    )


def _records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_spark_logs_json_lines_through_log4j_and_no_banner(tmp_path):
    done = _python(
        f"""
        from cms_pipeline import logs
        logs.configure("json")
        from cms_pipeline.config import load_settings
        from cms_pipeline.spark import get_spark
        spark = get_spark(load_settings(lake={str(tmp_path / "lake")!r}))
        spark.sparkContext.setLogLevel("INFO")  # records to check, not only warnings
        try:
            spark.sql("select * from no_such_table").collect()
        except Exception:
            pass
        print(spark.sql("select 1 as one").collect()[0].one)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "1\n"
    assert "Setting default log level" not in done.stderr  # Spark's defaults not used
    records = _records(done.stderr)  # every line is one JSON object
    spark = [r for r in records if r["logger"].startswith("org.apache.spark")]
    assert spark and all({"timestamp", "level", "message"} <= r.keys() for r in spark)
    # the same timestamps as the Python records': UTC, ISO 8601
    assert all(datetime.fromisoformat(r["timestamp"]).utcoffset() == timedelta(0) for r in spark)
    assert not any("NativeCodeLoader" in r["logger"] for r in records)


def test_h2o_start_up_notes_are_log_records(tmp_path):
    done = _python(
        """
        from cms_pipeline import logs
        logs.configure("json")
        from models_ml.h2o_cluster import ensure_h2o
        h2o = ensure_h2o(max_mem="512m", nthreads=1)
        h2o.H2OFrame({"a": [1, 2, 3]})  # would draw a progress bar on stdout
        print("{}")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {}
    records = _records(done.stderr)  # h2o.init's notes, if any, as JSON records
    assert all(r["logger"] == "models_ml.h2o_cluster" for r in records), records
