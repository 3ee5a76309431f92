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

`score` runs the steps, each owned by a module:

    scored_rows        the population, and its predictions made on the executors
    predictions_store  the history and the latest run (how each is replaced safely for
                       readers), and the JSON export
    drift_on_spark     the run's drift against its references, counted by Spark
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import functions as F

from cms_pipeline.atomic import write_chunks_atomic
from cms_pipeline.config import Settings
from models_ml.drift_on_spark import feature_references, psi_on_spark, score_references
from models_ml.predictions_store import append_history, json_document, replace_predictions
from models_ml.scored_rows import score_on_executors, scoring_rows, version_stamp
from models_ml.serving import load_version
from models_ml.usecase import UseCase, load_use_case


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


def score(
    settings: Settings,
    use_case: str | UseCase,
    table: str | None = None,
    spark=None,
    version: str | None = None,
    json_path: Path | None = None,
    as_of: date | None = None,
) -> ScoreResult:
    # publish and spark are tiers above the foundation models_ml imports at the top
    # (docs/architecture.md, Packages): imported where used
    from cms_pipeline.publish.publishing import complete_interrupted_publish

    uc = use_case if isinstance(use_case, UseCase) else load_use_case(settings, use_case)
    if spark is None:
        from cms_pipeline.spark import get_spark  # see above

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
    drift = psi_on_spark(latest, [("score", ref, name) for name, ref in references.items()])
    trained_on = f"v{model.version} training rows: "
    features = feature_references(settings, uc, model.version).items()
    drift += psi_on_spark(rows, [(name, ref, trained_on + name) for name, ref in features])
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


def as_dict(result: ScoreResult) -> dict:
    return asdict(result)
