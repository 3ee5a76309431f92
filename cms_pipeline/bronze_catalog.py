"""Expose exact bronze Delta snapshots to Spark SQL and dbt as `bronze.<table>`.

Each table is a Spark EXTERNAL Parquet table partitioned by `_batch_id`, whose partitions
are exactly the batch folders of one committed Delta version (DESIGN.md). Syncing to an
older version pins the table to it.
"""

from __future__ import annotations

import pyarrow as pa

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_writer import PARTITION, batches_in_table, open_table
from cms_pipeline.lake import bronze_uri
from cms_pipeline.sql import statement

DATABASE = "bronze"
_SPARK_TYPES = {
    pa.string(): "STRING",
    pa.int64(): "BIGINT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
}


def bronze_tables(settings: Settings) -> list[str]:
    return sorted({c.table for c in settings.sources.values()})


def _columns_ddl(schema: pa.Schema) -> str:
    return ", ".join(
        f"`{f.name}` {_SPARK_TYPES.get(f.type, 'STRING')}" for f in schema if f.name != PARTITION
    )


def _spark_location(uri: str) -> str:
    return uri.replace("s3://", "s3a://", 1) if uri.startswith("s3://") else uri


def _partition_list(settings_uri: str, batches: list[str]) -> str:
    return " ".join(
        f"PARTITION ({PARTITION} = '{b}') LOCATION '{_spark_location(settings_uri)}/{PARTITION}={b}'"
        for b in batches
    )


def sync_table(spark, settings: Settings, table: str, version: int | None = None) -> int | None:
    """Point `bronze.<table>` at Delta `version` (latest when None); returns the version."""
    uri = bronze_uri(settings, table)
    dt = open_table(uri, version)
    if dt is None:
        return None
    location = _spark_location(uri)
    names = {"database": DATABASE, "table": table, "location": location}
    spark.sql(statement("create_database", database=DATABASE))
    if settings.spark.native_delta:
        spark.sql(statement("create_bronze_table_delta", **names))
    else:
        schema = pa.schema(dt.schema().to_arrow())
        _recreate_if_changed(spark, table, schema, location)
        spark.sql(statement("create_bronze_table", columns=_columns_ddl(schema), **names))
        wanted = batches_in_table(dt)
        present = _registered_batches(spark, table)
        if stale := sorted(present - wanted):
            spark.sql(
                statement(
                    "drop_partitions",
                    partitions=", ".join(f"PARTITION ({PARTITION} = '{b}')" for b in stale),
                    **names,
                )
            )
        if new := sorted(wanted - present):
            spark.sql(statement("add_partitions", partitions=_partition_list(uri, new), **names))
        spark.catalog.refreshTable(f"{DATABASE}.{table}")
    spark.sql(statement("set_table_version", version=str(dt.version()), **names))
    return dt.version()


def _registered_batches(spark, table: str) -> set[str]:
    rows = spark.sql(statement("show_partitions", database=DATABASE, table=table)).collect()
    return {r[0].split("=", 1)[1] for r in rows}


def _recreate_if_changed(spark, table: str, schema: pa.Schema, location: str) -> None:
    """Drop the (external) table definition when the schema evolved or the lake moved;
    dropping an external table keeps its data."""
    name = f"{DATABASE}.{table}"
    if not spark.catalog.tableExists(name):
        return
    have = [c.name for c in spark.catalog.listColumns(name)]
    names = {"database": DATABASE, "table": table}
    props = {
        r.key: r.value for r in spark.sql(statement("show_table_properties", **names)).collect()
    }
    if have != schema.names or props.get("cms.delta_uri") != location:
        spark.sql(statement("drop_table", **names))


def sync_bronze(
    spark, settings: Settings, versions: dict[str, int] | None = None
) -> dict[str, int]:
    """Sync every bronze table; returns {table: Delta version now exposed}."""
    synced = {}
    for table in bronze_tables(settings):
        version = sync_table(spark, settings, table, (versions or {}).get(table))
        if version is not None:
            synced[table] = version
    return synced
