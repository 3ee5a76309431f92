"""Batch scoring: the scoring population scored by the champion MOJO, appended to the
prediction history gold.predictions_<use_case>, with the run alone in
gold.predictions_<use_case>_latest.

The population comes from the use case's feature table, the one the model trained on
(one definition): the rows whose prediction date lies in the `scoring_window_days` up to
the as-of date (default: the table's latest prediction date), whatever their label.
Each row carries the ids, the split period, the prediction date, the score, the label at
the model's threshold, the model version, the as-of date, the score time and the run id
(`version_stamp`, sortable by time). The JSON export for the web under
METADATA/exports/ml/ holds the latest run.

History: one Parquet table `predictions.<name>_history`, partitioned by run_id, and the
view `gold.predictions_<use_case>` on it. A run appends its rows as a new partition, which
the metastore lists only once the write has committed: a run killed while writing leaves
the history as it was.

Latest: replaced atomically for readers. Each run writes a new Parquet table
`predictions.<name>_latest__<stamp>` (a version nobody reads yet), then turns the public
name into a view on it with one CREATE OR REPLACE VIEW, then drops the versions older than
the one the view read before (a reader half way through it finishes). The history is
appended first, so the latest run is always in the history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cms_pipeline.atomic import write_chunks_atomic
from cms_pipeline.config import Settings
from cms_pipeline.sql import statement
from models_ml import registry
from models_ml.executors import partition_scorer, ship
from models_ml.monitoring import (
    BINS,
    Reference,
    compare_counts,
    has_values,
    reference_of,
    shares,
)
from models_ml.serving import cache_dir, load_version
from models_ml.usecase import UseCase, load_use_case

PREDICTIONS_DATABASE = "predictions"  # the version tables behind the public views
_VERSION_PROPERTY = "cms.predictions_version"
HELD_OUT = "test_predictions.parquet"  # written by models_ml.run_artifacts


@dataclass
class ScoreResult:
    use_case: str
    model_version: str
    source_table: str
    predictions_table: str  # this run's rows (the latest view)
    history_table: str  # every run's rows
    run_id: str
    rows: int
    json_path: str
    scored_at: str
    as_of: str
    monitoring: list = field(default_factory=list)  # PSI of scores and top features


def scoring_rows(spark, uc: UseCase, as_of: date | None = None, table: str | None = None):
    """(rows to score, as-of date): the feature table's rows whose prediction date is in
    the scoring window up to `as_of` (default: the latest prediction date in the table)."""
    from pyspark.sql import functions as F

    frame = spark.table(table or uc.table)
    when = F.col(uc.population.prediction_date)
    if as_of is None:
        as_of = frame.agg(F.max(when)).first()[0]
        if as_of is None:
            raise ValueError(f"{table or uc.table}: no rows to score (the table is empty)")
    start = F.date_sub(F.lit(as_of), uc.population.scoring_window_days)
    return frame.filter((when <= F.lit(as_of)) & (when > start)), as_of


# What a scoring run adds to each kept row, in table order, with its Spark type: the one
# list behind both the pandas rows (predictions_frame) and the Spark schema.
RUN_COLUMNS = {
    "score": "DoubleType",
    "predicted_label": "IntegerType",
    "model_name": "StringType",
    "model_version": "StringType",
    "as_of_date": "DateType",
    "scored_at": "TimestampType",
    "run_id": "StringType",
}


def predictions_frame(
    frame: pd.DataFrame,
    scores,
    labels,
    uc: UseCase,
    version: str,
    scored_at: datetime,
    as_of: date | None = None,
    run_id: str | None = None,
) -> pd.DataFrame:
    """The predictions table's rows: the kept columns, then RUN_COLUMNS; pure."""
    added = {
        "score": scores,
        "predicted_label": labels.astype("int32"),
        "model_name": uc.name,
        "model_version": str(version),
        "as_of_date": as_of,
        "scored_at": pd.Timestamp(scored_at),
        "run_id": run_id or version_stamp(scored_at),
    }
    out = frame[kept_columns(uc, frame.columns)].copy()
    for name in RUN_COLUMNS:  # a KeyError here: RUN_COLUMNS names a column not made above
        out[name] = added[name]
    return out.reset_index(drop=True)


def kept_columns(uc: UseCase, columns) -> list[str]:
    """The scored rows' columns a prediction keeps: ids, split period, prediction date."""
    wanted = [*uc.id_columns, uc.split.time_column, uc.population.prediction_date]
    return [c for c in dict.fromkeys(wanted) if c in columns]


def predictions_schema(rows_schema, uc: UseCase):
    """The Spark schema of `predictions_frame` for rows of `rows_schema`."""
    from pyspark.sql import types as T

    kept = [rows_schema[c] for c in kept_columns(uc, rows_schema.names)]
    added = [T.StructField(name, getattr(T, kind)()) for name, kind in RUN_COLUMNS.items()]
    return T.StructType([*kept, *added])


def _predict_batch(rows: pd.DataFrame, scorer, **run) -> pd.DataFrame:
    """One Arrow batch of the population scored (on an executor)."""
    scores = scorer.score_frame(rows)
    return predictions_frame(rows, scores, scorer.labels(scores), **run)


def score_on_executors(
    settings: Settings, spark, rows, model, uc: UseCase, scored_at, as_of, run_id: str
):
    """`rows` (a Spark DataFrame) as predictions, scored partition by partition on the
    executors by `model` (a serving.LoadedModel); lazy, like any DataFrame. The driver
    never holds the rows: it later sees counts and bins (psi_on_spark)."""
    shipped = settings.metadata_path("ml", "_shipped")
    scorer = partition_scorer(
        ship(spark, model.mojo, shipped),
        ship(spark, model.jar, shipped),
        partial(
            _predict_batch,
            uc=uc,
            version=model.version,
            scored_at=scored_at,
            as_of=as_of,
            run_id=run_id,
        ),
    )
    return rows.mapInPandas(scorer, predictions_schema(rows.schema, uc))


def score(
    settings: Settings,
    use_case: str | UseCase,
    table: str | None = None,
    spark=None,
    version: str | None = None,
    json_path: Path | None = None,
    as_of: date | None = None,
) -> ScoreResult:
    from pyspark.sql import functions as F

    from cms_pipeline.publish.publishing import complete_interrupted_publish

    uc = use_case if isinstance(use_case, UseCase) else load_use_case(settings, use_case)
    if spark is None:
        from cms_pipeline.spark import get_spark

        spark = get_spark(settings)
    complete_interrupted_publish(settings, spark)  # score what gold publishes, whole
    source = table or uc.table
    model = load_version(settings, uc.name, version)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    rows, as_of = scoring_rows(spark, uc, as_of, source)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    run_id = version_stamp(scored_at)
    out = score_on_executors(settings, spark, rows, model, uc, scored_at, as_of, run_id)

    references = score_references(settings, spark, uc, model.version)
    history = append_history(spark, uc.predictions_table, out)
    run_rows = spark.table(history).filter(F.col("run_id") == run_id)  # scored once
    replace_predictions(spark, uc.latest_predictions_table, run_rows, run_id)
    latest = spark.table(uc.latest_predictions_table)
    count = latest.count()
    drift = [psi_on_spark(ref, latest, "score", name) for name, ref in references.items()]
    drift += [
        psi_on_spark(ref, rows, name, f"v{model.version} training rows: {name}")
        for name, ref in feature_references(settings, uc, model.version).items()
    ]
    drift = [d for d in drift if d is not None]  # e.g. a feature null in every row

    json_path = json_path or settings.metadata_path("exports", "ml", f"predictions_{uc.name}.json")
    export = {
        "use_case": uc.name,
        "model_version": model.version,
        "source_table": source,
        "scored_at": scored_at.isoformat(),
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "rows": count,
    }
    exported = latest.drop("model_name", "model_version", "scored_at", "as_of_date", "run_id")
    write_chunks_atomic(json_path, json_document(export, "predictions", exported))
    return ScoreResult(
        use_case=uc.name,
        model_version=model.version,
        source_table=source,
        predictions_table=uc.latest_predictions_table,
        history_table=uc.predictions_table,
        run_id=run_id,
        rows=count,
        json_path=str(json_path),
        scored_at=scored_at.isoformat(),
        as_of=as_of.isoformat(),
        monitoring=drift,
    )


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


def psi_on_spark(reference: Reference, frame, column: str, name: str) -> dict | None:
    """monitoring.compare of `frame[column]` against `reference`, the column binned and
    counted by Spark; None without a value to bin."""
    counts = _spark_bin_counts(_finite_values(frame, column), reference.edges)
    return compare_counts(reference, counts, name) if counts.sum() else None


def reference_on_spark(frame, column: str) -> Reference | None:
    """monitoring.reference_of `frame[column]`, its deciles and counts computed by Spark
    (exact percentiles, interpolated as numpy's); None without a value."""
    from pyspark.sql import functions as F

    values = _finite_values(frame, column)
    quantiles = [float(q) for q in np.linspace(0, 1, BINS + 1)[1:-1]]
    deciles, rows = values.agg(F.percentile("v", F.lit(quantiles)), F.count("v")).first()
    if not rows:
        return None
    edges = np.unique(np.asarray(deciles, dtype=float))
    counts = _spark_bin_counts(values, edges)
    return Reference(edges, shares(counts), int(rows))


def _finite_values(frame, column: str):
    """`frame[column]` as a one-column frame `v` of its finite values (as doubles)."""
    from pyspark.sql import functions as F

    value = F.col(column).cast("double")
    return frame.select(value.alias("v")).filter(
        F.col("v").isNotNull() & ~F.isnan("v") & (F.abs("v") != float("inf"))
    )


def _spark_bin_counts(values, edges: np.ndarray) -> np.ndarray:
    """monitoring.bin_counts of the column `v`, counted by Spark."""
    from pyspark.sql import functions as F

    # bin i: edges[i-1] < v <= edges[i] (monitoring._bins), as the number of edges below v
    position = sum((F.when(F.col("v") > float(e), 1).otherwise(0) for e in edges), F.lit(0))
    found = {r["bin"]: r["count"] for r in values.groupBy(position.alias("bin")).count().collect()}
    return np.array([found.get(i, 0) for i in range(len(edges) + 1)])


def score_references(settings: Settings, spark, uc: UseCase, version: str) -> dict:
    """What this run's scores are compared with (models_ml.monitoring): the previous run
    in the history, and the held-out predictions the version was evaluated on at training
    (the model's own reference distribution). A reference that does not exist is left out."""
    from pyspark.sql import functions as F

    references = {}
    history = history_table(uc.predictions_table)
    if spark.catalog.tableExists(history):
        runs = spark.table(history)
        previous = runs.agg(F.max("run_id")).first()[0]
        if previous is not None:  # binned where it lies: the driver gets 10 counts
            ref = reference_on_spark(runs.filter(F.col("run_id") == previous), "score")
            if ref is not None:
                references[f"previous run {previous}"] = ref
    held_out = registry.download_evaluation(
        settings, uc.name, version, HELD_OUT, cache_dir(settings)
    )
    if held_out is not None:  # the test rows of training: a file of a few thousand scores
        scores = pd.read_parquet(held_out)["p1"]
        references[f"v{version} held-out predictions"] = reference_of(scores)
    return references


def feature_references(settings: Settings, uc: UseCase, version: str) -> dict:
    """{feature: Reference of its values in the version's training rows} for the most
    important numeric inputs with a value (models_ml.run_artifacts); empty for a version trained
    before they were kept."""
    path = registry.download_evaluation(
        settings, uc.name, version, registry.FEATURE_REFERENCE, cache_dir(settings)
    )
    if path is None:
        return {}
    features = pd.read_parquet(path).items()
    return {name: reference_of(values) for name, values in features if has_values(values)}


def version_stamp(scored_at: datetime) -> str:
    """Sortable by time and unique (two runs in one second), lower case like the
    metastore's names: `20261207t041800_1a2b3c`."""
    return scored_at.strftime("%Y%m%dt%H%M%S") + "_" + uuid.uuid4().hex[:6]


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


def as_dict(result: ScoreResult) -> dict:
    return asdict(result)
