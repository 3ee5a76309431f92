"""Child processes of test_atomic_publish.py, each on the lake it is given (a lake of its
own: its Derby metastore is held by one process at a time).

    python publish_child.py publish-killed LAKE
        gold builds b0, b1, b2 (tiny tables that name their build), predictions v1;
        publish b0, b1, then SIGKILL itself right after b2's publish replaced its first view
    python publish_child.py read-then-predictions-killed LAKE
        print what a reader sees (no lease: a reader never completes a publish), then write
        predictions v2 and SIGKILL itself after the version table, before the view
    python publish_child.py read-then-publish-fails LAKE
        print what a reader sees, then publish b3, whose run record names a table its
        build lacks: the publish fails half way (the process exits 1), its intent left
    python publish_child.py complete-then-read LAKE
        complete_interrupted_publish (as every writer does first), then read
    python publish_child.py read LAKE
        print what a reader sees

What a reader sees (JSON on stdout): each view of gold with the rows it returns, the
schemas, and the predictions view's rows.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime

import pandas as pd

from cms_pipeline.config import load_settings
from cms_pipeline.publish.layers import build_schema
from cms_pipeline.publish.publishing import promote
from cms_pipeline.publish.records import BuildResult, record_run
from cms_pipeline.spark import get_spark
from cms_pipeline.sql import statement
from models_ml.predictions_store import replace_predictions

BUILDS = {"b0": ["t_a", "t_b"], "b1": ["t_a", "t_b", "t_old"], "b2": ["t_a", "t_b", "t_c"]}
PREDICTIONS = "gold.predictions_tiny"


def _make_build(settings, spark, build_id: str, tables: list[str], lacks=()) -> None:
    """A gold build schema whose tables say which build they belong to, and its run record
    (which also lists the tables in `lacks`, never made)."""
    schema = build_schema("gold", build_id)
    spark.sql(statement("create_database", database=schema))
    for name in [t for t in tables if t not in lacks]:
        frame = spark.createDataFrame([(build_id, name)], "build_id string, table_name string")
        frame.write.format("parquet").saveAsTable(f"{schema}.{name}")
    result = BuildResult(
        layer="gold",
        build_id=build_id,
        schema=schema,
        success=True,
        models=tables,
        started_at=datetime.now(UTC).isoformat(),
    )
    record_run(settings, result, None)


def _predictions(version: str) -> pd.DataFrame:
    return pd.DataFrame({"desynpuf_id": ["A", "B", "C"], "score": [0.1, 0.5, 0.9], "v": version})


def _kill_after(method_owner, method: str, when) -> None:
    """After the real call returns and `when(args)` holds, SIGKILL this process."""
    real = getattr(method_owner, method)

    def wrapped(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        if when(args):
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(method_owner, method, wrapped)


def publish_killed(lake: str) -> None:
    from pyspark.sql import SparkSession

    settings = load_settings(lake=lake)
    spark = get_spark(settings)
    # a publish drops every build it does not keep: each is made just before its publish
    _make_build(settings, spark, "b0", BUILDS["b0"])
    promote(settings, spark, "gold", "b0")
    replace_predictions(spark, PREDICTIONS, spark.createDataFrame(_predictions("v1")), "v1")
    _make_build(settings, spark, "b1", BUILDS["b1"])
    promote(settings, spark, "gold", "b1")
    _make_build(settings, spark, "b2", BUILDS["b2"])
    # dbt's session mode runs each statement through SparkSession.sql in this process
    _kill_after(SparkSession, "sql", lambda a: "create or replace view gold." in a[0].lower())
    promote(settings, spark, "gold", "b2")
    sys.exit("the publish of b2 ran to its end: the kill did not happen")


def read_then_publish_fails(lake: str) -> None:
    """What a reader sees, then b3, whose run record names a table its build lacks: its
    publish fails after its first views (the process lives on and exits 1)."""
    read(lake)
    settings = load_settings(lake=lake)
    spark = get_spark(settings)
    _make_build(settings, spark, "b3", ["t_a", "t_b", "t_d"], lacks=["t_d"])
    promote(settings, spark, "gold", "b3")


def complete_then_read(lake: str) -> None:
    from cms_pipeline.publish.publishing import complete_interrupted_publish

    complete_interrupted_publish(load_settings(lake=lake))
    read(lake)


def read(lake: str) -> dict:
    spark = get_spark(load_settings(lake=lake))
    views = sorted(t.name for t in spark.catalog.listTables("gold") if not t.isTemporary)
    seen = {name: [r.asDict() for r in spark.table(f"gold.{name}").collect()] for name in views}
    schemas = sorted(d.name for d in spark.catalog.listDatabases())
    has_predictions = spark.catalog.databaseExists("predictions")
    tables = (
        sorted(t.name for t in spark.catalog.listTables("predictions")) if has_predictions else []
    )
    seen_by_reader = {"views": seen, "schemas": schemas, "prediction_versions": tables}
    print(json.dumps(seen_by_reader), flush=True)
    return seen_by_reader


def read_then_predictions_killed(lake: str) -> None:
    from pyspark.sql import DataFrameWriter

    read(lake)
    spark = get_spark(load_settings(lake=lake))
    _kill_after(DataFrameWriter, "saveAsTable", lambda a: "__v2" in a[0])
    replace_predictions(spark, PREDICTIONS, spark.createDataFrame(_predictions("v2")), "v2")
    sys.exit("the predictions v2 were replaced to the end: the kill did not happen")


if __name__ == "__main__":
    command, lake = sys.argv[1:3]
    {
        "publish-killed": publish_killed,
        "read-then-predictions-killed": read_then_predictions_killed,
        "read-then-publish-fails": read_then_publish_fails,
        "complete-then-read": complete_then_read,
        "read": read,
    }[command](lake)
