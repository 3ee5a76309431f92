"""Batch scoring: the scoring population scored by the champion MOJO into
gold.predictions_<use_case>.

The population comes from the use case's feature table, the one the model trained on
(one definition): the rows whose prediction date lies in the `scoring_window_days` up to
the as-of date (default: the table's latest prediction date), whatever their label.
Output is readable by Spark SQL as `gold.predictions_<use_case>` (UseCase.predictions_table),
replaced on each run, plus a JSON export for the web under METADATA/exports/ml/.
Each row carries the ids, the split period, the prediction date, the score, the label at
the model's threshold, the model version, the as-of date and the score time.

The replacement is atomic for readers: each run writes a new Parquet table
`predictions.<name>__<stamp>` (a version nobody reads yet; a run killed while writing it
leaves the published rows as they were), then turns the public name into a view on it
with one CREATE OR REPLACE VIEW, then drops the versions older than the one the view read
before (a reader half way through it finishes). Versions are kept as tables of their
own, so an appended history of predictions can later be a view over several of them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from cms_pipeline.atomic import write_json_atomic
from cms_pipeline.config import Settings
from cms_pipeline.sql import statement
from models_ml.serving import load_version
from models_ml.usecase import UseCase, load_use_case

PREDICTIONS_DATABASE = "predictions"  # the version tables behind the public views
_VERSION_PROPERTY = "cms.predictions_version"


@dataclass
class ScoreResult:
    use_case: str
    model_version: str
    source_table: str
    predictions_table: str
    rows: int
    json_path: str
    scored_at: str
    as_of: str


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


def predictions_frame(
    frame: pd.DataFrame,
    scores,
    labels,
    uc: UseCase,
    version: str,
    scored_at: datetime,
    as_of: date | None = None,
) -> pd.DataFrame:
    """The predictions table's rows; pure."""
    wanted = [*uc.id_columns, uc.split.time_column, uc.population.prediction_date]
    keep = [c for c in dict.fromkeys(wanted) if c in frame.columns]
    out = frame[keep].copy()
    out["score"] = scores
    out["predicted_label"] = labels.astype("int32")
    out["model_name"] = uc.name
    out["model_version"] = str(version)
    out["as_of_date"] = as_of
    out["scored_at"] = pd.Timestamp(scored_at)
    return out.reset_index(drop=True)


def score(
    settings: Settings,
    use_case: str | UseCase,
    table: str | None = None,
    spark=None,
    version: str | None = None,
    json_path: Path | None = None,
    as_of: date | None = None,
) -> ScoreResult:
    from cms_pipeline.publish import complete_interrupted_publish

    uc = use_case if isinstance(use_case, UseCase) else load_use_case(settings, use_case)
    if spark is None:
        from cms_pipeline.spark import get_spark

        spark = get_spark(settings)
    complete_interrupted_publish(settings, spark)  # score what gold publishes, whole
    source = table or uc.table
    model = load_version(settings, uc.name, version)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    rows, as_of = scoring_rows(spark, uc, as_of, source)
    frame = rows.toPandas()
    scores = model.scorer.score_frame(frame)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    out = predictions_frame(
        frame, scores, model.scorer.labels(scores), uc, model.version, scored_at, as_of
    )

    replace_predictions(spark, uc.predictions_table, out, version_stamp(scored_at))

    json_path = json_path or settings.metadata_path("exports", "ml", f"predictions_{uc.name}.json")
    export = {
        "use_case": uc.name,
        "model_version": model.version,
        "source_table": source,
        "scored_at": scored_at.isoformat(),
        "as_of": as_of.isoformat(),
        "rows": len(out),
        "predictions": json.loads(
            out.drop(columns=["model_name", "model_version", "scored_at", "as_of_date"]).to_json(
                orient="records", date_format="iso"
            )
        ),
    }
    write_json_atomic(json_path, export)
    return ScoreResult(
        use_case=uc.name,
        model_version=model.version,
        source_table=source,
        predictions_table=uc.predictions_table,
        rows=len(out),
        json_path=str(json_path),
        scored_at=scored_at.isoformat(),
        as_of=as_of.isoformat(),
    )


def version_stamp(scored_at: datetime) -> str:
    """Sortable by time and unique (two runs in one second), lower case like the
    metastore's names: `20261207t041800_1a2b3c`."""
    return scored_at.strftime("%Y%m%dt%H%M%S") + "_" + uuid.uuid4().hex[:6]


def version_table(public: str, stamp: str) -> str:
    """`predictions.<name>__<stamp>` for the public name `<database>.<name>`."""
    return f"{PREDICTIONS_DATABASE}.{public.split('.')[-1]}__{stamp}"


def replace_predictions(spark, public: str, rows: pd.DataFrame, stamp: str) -> str:
    """Publish `rows` as `public` (a view) atomically for readers; returns the version
    table that now holds them (module docstring)."""
    table = version_table(public, stamp)
    for database in (PREDICTIONS_DATABASE, public.split(".")[0]):
        spark.sql(statement("create_database", database=database))
    # a new name: never a table anyone reads, and no overwrite of one
    spark.createDataFrame(rows).write.format("parquet").saveAsTable(table)
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
