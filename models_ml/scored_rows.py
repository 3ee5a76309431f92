"""The rows of a batch scoring run: the scoring population read from the use case's
feature table, and its prediction rows, made partition by partition on Spark's executors
(models_ml.executors) with the columns RUN_COLUMNS lists."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import partial

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cms_pipeline.config import Settings
from models_ml.executors import partition_scorer, ship
from models_ml.usecase import UseCase


def scoring_rows(spark, uc: UseCase, as_of: date | None = None, table: str | None = None):
    """(rows to score, as-of date): the feature table's rows whose prediction date is in
    the scoring window up to `as_of` (default: the latest prediction date in the table)."""
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


def version_stamp(scored_at: datetime) -> str:
    """Sortable by time and unique (two runs in one second), lower case like the
    metastore's names: `20261207t041800_1a2b3c`."""
    return scored_at.strftime("%Y%m%dt%H%M%S") + "_" + uuid.uuid4().hex[:6]
