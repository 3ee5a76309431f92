"""Expose exact bronze Delta snapshots to Spark SQL and dbt as `bronze.<table>`.

Each table is a Spark EXTERNAL Parquet table partitioned by `_batch_id`, whose partitions
are exactly the batch folders of one committed Delta version (DESIGN.md). Syncing to an
older version pins the table to it.

A kind of file not delivered yet (a public copy often holds only the beneficiary summaries
and the inpatient claims) is an empty table typed from its contract, marked not delivered,
so silver and gold build every model (the absent kinds' ones empty) and the gates can name
the state instead of failing on a missing relation.
"""

from __future__ import annotations

import pyarrow as pa

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_writer import PARTITION, batches_in_table, open_table
from cms_pipeline.ingest.rows import bronze_schema
from cms_pipeline.lake import bronze_uri
from cms_pipeline.sql import statement

DATABASE = "bronze"
NOT_DELIVERED = "not delivered"  # the table property's value; also the gates' state name
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
    location = _spark_location(uri)
    names = {"database": DATABASE, "table": table, "location": location}
    spark.sql(statement("create_database", database=DATABASE))
    if dt is None:
        _create_not_delivered(spark, settings, table, location)
        return None
    if _is_not_delivered(spark, table):  # its first delivery arrived: the real table replaces it
        spark.sql(statement("drop_table", database=DATABASE, table=table))
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


def contract_schema(settings: Settings, table: str) -> pa.Schema:
    """The bronze columns a delivery of `table` gets from its contract (before any evolution)."""
    contract = next(c for c in settings.sources.values() if c.table == table)
    return bronze_schema(contract.column_names).append(pa.field(PARTITION, pa.string()))


def _create_not_delivered(spark, settings: Settings, table: str, location: str) -> None:
    """An empty `bronze.<table>` typed from the contract: no partition, so nothing is read."""
    names = {"database": DATABASE, "table": table, "location": location}
    if spark.catalog.tableExists(f"{DATABASE}.{table}") and not _is_not_delivered(spark, table):
        spark.sql(statement("drop_table", **names))  # e.g. its Delta table was removed
    schema = contract_schema(settings, table)
    _recreate_if_changed(spark, table, schema, location)
    spark.sql(statement("create_bronze_table", columns=_columns_ddl(schema), **names))
    spark.sql(statement("set_table_not_delivered", not_delivered=NOT_DELIVERED, **names))


def _table_properties(spark, table: str) -> dict[str, str]:
    rows = spark.sql(statement("show_table_properties", database=DATABASE, table=table)).collect()
    return {r.key: r.value for r in rows}


def _is_not_delivered(spark, table: str) -> bool:
    if not spark.catalog.tableExists(f"{DATABASE}.{table}"):
        return False
    return _table_properties(spark, table).get("cms.delta_version") == NOT_DELIVERED


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
    props = _table_properties(spark, table)
    if have != schema.names or props.get("cms.delta_uri") != location:
        spark.sql(statement("drop_table", database=DATABASE, table=table))


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
