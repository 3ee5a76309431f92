"""Where a scoring run's predictions are kept: the history, the latest run, the JSON
export for the web.

History: one Parquet table `predictions.<name>_history`, partitioned by run_id, and the
view `gold.predictions_<use_case>` on it. A run appends its rows as a new partition, which
the metastore lists only once the write has committed: a run killed while writing leaves
the history as it was.

Latest: replaced atomically for readers. Each run writes a new Parquet table
`predictions.<name>_latest__<stamp>` (a version nobody reads yet), then turns the public
name into a view on it with one CREATE OR REPLACE VIEW, then drops the versions older than
the one the view read before (a reader half way through it finishes). The history is
appended first, so the latest run is always in the history (models_ml.batch.score).

JSON: the latest run under METADATA/exports/ml/, streamed in chunks (json_document).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd

from cms_pipeline.sql import statement

PREDICTIONS_DATABASE = "predictions"  # the version tables behind the public views
_VERSION_PROPERTY = "cms.predictions_version"


def version_table(public: str, stamp: str) -> str:
    """`predictions.<name>__<stamp>` for the public name `<database>.<name>`."""
    return f"{PREDICTIONS_DATABASE}.{public.split('.')[-1]}__{stamp}"


def history_table(public: str) -> str:
    """`predictions.<name>_history` for the public name `<database>.<name>`."""
    return f"{PREDICTIONS_DATABASE}.{public.split('.')[-1]}_history"


def append_history(spark, public: str, rows) -> str:
    """Append `rows` (one run, one run_id) to the history behind the view `public`;
    returns the history table (module docstring)."""
    table = history_table(public)
    for database in (PREDICTIONS_DATABASE, public.split(".")[0]):
        spark.sql(statement("create_database", database=database))
    writer = rows.write.format("parquet").partitionBy("run_id")
    writer.mode("append").saveAsTable(table)
    if _current_version(spark, public) != table:
        spark.sql(statement("replace_predictions_view", view=public, table=table))
        # a view on one version table before the history existed: its versions go
        for old in predictions_versions(spark, public):
            spark.sql(statement("drop_table_if_exists", table=old))
    return table


def replace_predictions(spark, public: str, rows, stamp: str) -> str:
    """Publish `rows` as `public` (a view) atomically for readers; returns the version
    table that now holds them (module docstring)."""
    table = version_table(public, stamp)
    for database in (PREDICTIONS_DATABASE, public.split(".")[0]):
        spark.sql(statement("create_database", database=database))
    # a new name: never a table anyone reads, and no overwrite of one
    rows.write.format("parquet").saveAsTable(table)
    previous = _current_version(spark, public)
    spark.sql(statement("replace_predictions_view", view=public, table=table))
    for old in predictions_versions(spark, public):
        if old not in (table, previous):
            spark.sql(statement("drop_table_if_exists", table=old))
    return table


def predictions_versions(spark, public: str) -> list[str]:
    """The version tables of `public`, oldest first."""
    prefix = version_table(public, "")
    database, name = prefix.split(".")
    return sorted(
        f"{database}.{t.name}"
        for t in spark.catalog.listTables(database)
        if t.name.startswith(name) and not t.isTemporary
    )


def _current_version(spark, public: str) -> str | None:
    """The version table the view `public` reads, or None. A table of that name (written
    before predictions were versioned) is dropped: the view takes its place."""
    if not spark.catalog.tableExists(public):
        return None
    if spark.catalog.getTable(public).tableType != "VIEW":
        spark.sql(statement("drop_table_if_exists", table=public))
        return None
    database, name = public.split(".")
    rows = spark.sql(statement("show_table_properties", database=database, table=name))
    return {r.key: r.value for r in rows.collect()}.get(_VERSION_PROPERTY)


def json_document(head: dict, key: str, frame, chunk_rows: int = 50_000) -> Iterator[bytes]:
    """`head` with `key` holding `frame`'s rows as JSON records, in chunks: the driver
    holds one chunk of rows at a time, never the whole table."""
    text = json.dumps({**head, key: []})
    yield text[: text.rindex("[") + 1].encode()
    first = True
    for chunk in _row_chunks(frame, chunk_rows):
        records = chunk.to_json(orient="records", date_format="iso")[1:-1]
        if records:
            yield (records if first else "," + records).encode()
            first = False
    yield b"]}"


def _row_chunks(frame, chunk_rows: int) -> Iterator[pd.DataFrame]:
    names = frame.columns
    batch = []
    for row in frame.toLocalIterator(prefetchPartitions=True):
        batch.append(tuple(row))
        if len(batch) == chunk_rows:
            yield pd.DataFrame.from_records(batch, columns=names)
            batch = []
    if batch:
        yield pd.DataFrame.from_records(batch, columns=names)
