"""The pipeline's one SparkSession, built from the typed settings.

Locally: Hive support with a Derby metastore at an absolute path under the metadata
folder, so dbt (session mode) and later processes see the same catalog. Only one process
may hold the Derby metastore at a time.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from cms_pipeline.config import Settings
from cms_pipeline.memory import auto_heap
from cms_pipeline.runtime import prepare_environment

# PySpark (about 0.3 s to import) is imported where a session is made or asked for:
# dbt_runner imports this module for spark_conf, and through dbt_runner so do modules
# that run without Spark (exports' settings, read by the dashboard).

# The JIT's quick tier only (C1), with room for its code (alone, C1 fills the default
# 48 MB code cache and stops compiling). On small data Spark's time goes to planning
# queries and the optimising tier (C2) only competes for the cores; on large data the
# hot loops want C2. Measured here: the tests' first pipeline run 381 -> 313 s, the
# default test run 17 -> 12 minutes; a scale-0.1 run 446 -> 539 s (slower).
QUICK_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"


def java_options(quick_jit: bool, extra: str = "") -> str:
    """JVM flags of the Spark driver and executors (and of a local cluster's JVMs)."""
    return " ".join(flags for flags in (QUICK_JIT if quick_jit else "", extra.strip()) if flags)


def spark_conf(settings: Settings, incoming: str | None = None) -> dict[str, str]:
    """All Spark settings for a profile; dbt's profile is generated from the same dict.
    `spark.driver.memory: auto` is sized from the lake's bronze and `incoming`, the files
    the run will ingest (cms_pipeline/memory.py)."""
    meta = Path(settings.metadata).resolve()
    java = java_options(settings.spark.quick_jit, settings.spark.java_options)
    conf = {
        "spark.master": settings.spark.master,
        "spark.app.name": settings.spark.app_name,
        "spark.sql.warehouse.dir": str(meta / "spark-warehouse"),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={meta / 'metastore_db'};create=true"
        ),
        # quoted: Spark splits these options like a shell, and the lake's path may hold spaces
        "spark.driver.extraJavaOptions": f'"-Dderby.system.home={meta}" {java}'.strip(),
        "spark.sql.legacy.createHiveTableByDefault": "false",
        # Class names without the codegen stage's id: stages whose generated code is the
        # same share one class, which the JVM compiles once (see dbt's unpivot_from_mapping)
        "spark.sql.codegen.useIdInClassName": "false",
    }
    if java:
        conf["spark.executor.extraJavaOptions"] = java
    if settings.spark.native_delta:
        conf["spark.sql.extensions"] = "io.delta.sql.DeltaSparkSessionExtension"
        conf["spark.sql.catalog.spark_catalog"] = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    conf.update(settings.spark.conf)
    if conf.get("spark.driver.memory") == "auto":
        # the heap is fixed when the JVM starts: the lake is measured only before that
        running = _running_driver_memory()
        conf["spark.driver.memory"] = running or auto_heap(settings.lake, incoming)
    return conf


def _running_driver_memory() -> str | None:
    """The driver heap of this process's running SparkContext, if one runs."""
    try:
        from pyspark import SparkContext
    except ImportError:
        return None
    context = SparkContext._active_spark_context
    return context.getConf().get("spark.driver.memory") if context is not None else None


def get_spark(settings: Settings, incoming: str | None = None):
    """Create (or return the running) SparkSession for these settings; `incoming`: the
    files a run will ingest, which an automatic heap size counts in."""
    prepare_environment()
    # Python workers (batch scoring's mapInPandas) run this interpreter, which has the
    # project's packages: PySpark would take `python3` from PATH, not the venv's unless it
    # is activated. A cluster whose executors have their Python elsewhere sets the variable.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    Path(settings.metadata).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(settings, incoming).items():
        builder = builder.config(key, value)
    if settings.spark.native_delta:
        from delta import configure_spark_with_delta_pip  # only on clusters that have Delta

        builder = configure_spark_with_delta_pip(builder)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def start_in_background(settings: Settings, incoming: str | None = None) -> threading.Thread:
    """Start the session (the JVM, then the metastore's first connection) on a thread of
    its own, so that it overlaps work that leaves a core idle: ingestion runs no JVM. A
    failure is left to the next get_spark, which raises it where a stage needs Spark."""

    def start() -> None:
        # the first stage's database; bronze_catalog loads ingest (about 0.2 s), which
        # dbt_runner, exports and the dashboard, importing this module, do not need
        from cms_pipeline.bronze_catalog import DATABASE

        try:
            get_spark(settings, incoming).catalog.databaseExists(DATABASE)
        except Exception:  # noqa: BLE001 (the next get_spark reports it)
            pass

    thread = threading.Thread(target=start, name="spark-start", daemon=True)
    thread.start()
    return thread
