"""Batch scoring: a gold table scored by the champion MOJO into gold.predictions_<use_case>.

Output is a Spark Parquet table in the metastore (like the dbt-built gold tables),
replaced on each run, plus a JSON export for the web under METADATA/exports/ml/.
Each row carries the ids, the split period, the score, the label at the model's
threshold, the model version and the score time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cms_pipeline.config import Settings
from models_ml.serving import load_version
from models_ml.usecase import UseCase, load_use_case


@dataclass
class ScoreResult:
    use_case: str
    model_version: str
    source_table: str
    predictions_table: str
    rows: int
    json_path: str
    scored_at: str


def predictions_frame(
    frame: pd.DataFrame, scores, labels, uc: UseCase, version: str, scored_at: datetime
) -> pd.DataFrame:
    """The predictions table's rows; pure."""
    keep = [c for c in [*uc.id_columns, uc.split.time_column] if c in frame.columns]
    out = frame[keep].copy()
    out["score"] = scores
    out["predicted_label"] = labels.astype("int32")
    out["model_name"] = uc.name
    out["model_version"] = str(version)
    out["scored_at"] = pd.Timestamp(scored_at)
    return out.reset_index(drop=True)


def score(
    settings: Settings,
    use_case: str | UseCase,
    table: str | None = None,
    spark=None,
    version: str | None = None,
    json_path: Path | None = None,
) -> ScoreResult:
    uc = use_case if isinstance(use_case, UseCase) else load_use_case(settings, use_case)
    if spark is None:
        from cms_pipeline.spark import get_spark

        spark = get_spark(settings)
    source = table or uc.table
    model = load_version(settings, uc.name, version)
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    frame = spark.table(source).toPandas()
    scores = model.scorer.score_frame(frame)
    scored_at = datetime.now(UTC).replace(microsecond=0)
    out = predictions_frame(
        frame, scores, model.scorer.labels(scores), uc, model.version, scored_at
    )

    database = uc.predictions_table.split(".")[0]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    (
        spark.createDataFrame(out)
        .write.mode("overwrite")
        .format("parquet")
        .saveAsTable(uc.predictions_table)
    )

    json_path = json_path or settings.metadata_path("exports", "ml", f"predictions_{uc.name}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    export = {
        "use_case": uc.name,
        "model_version": model.version,
        "source_table": source,
        "scored_at": scored_at.isoformat(),
        "rows": len(out),
        "predictions": json.loads(
            out.drop(columns=["model_name", "model_version", "scored_at"]).to_json(
                orient="records", date_format="iso"
            )
        ),
    }
    json_path.write_text(json.dumps(export))
    return ScoreResult(
        use_case=uc.name,
        model_version=model.version,
        source_table=source,
        predictions_table=uc.predictions_table,
        rows=len(out),
        json_path=str(json_path),
        scored_at=scored_at.isoformat(),
    )


def as_dict(result: ScoreResult) -> dict:
    return asdict(result)
