"""The files a training run leaves under its artefacts folder, all logged to its MLflow
run: the leader's MOJO, h2o-genmodel.jar and features.json (mojo/); the version as an
MLflow model (model/, models_ml.pyfunc); the test predictions, leaderboard, metrics and
drift reference (evaluation/); lineage.json and use_case.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from models_ml import metrics, registry
from models_ml.automl import levels
from models_ml.data import Snapshot
from models_ml.schema import FEATURES_FILE, Feature, FeatureSpec, source_type
from models_ml.usecase import UseCase

TOP_FEATURES = 5  # most important numeric inputs whose drift each scoring run reports


def write_mojo(
    out: Path, leader, used: list[str], snap: Snapshot, train_frame, use_case: UseCase
) -> list[Feature]:
    """The leader's MOJO and genmodel jar, and features.json: the model's inputs with
    their types, levels and source types (typed REST request fields)."""
    mojo_dir = out / registry.MOJO_DIR
    mojo_dir.mkdir(parents=True, exist_ok=True)
    mojo_path = Path(
        leader.download_mojo(
            path=str(mojo_dir), get_genmodel_jar=True, genmodel_name=registry.GENMODEL_JAR
        )
    )
    mojo_path.rename(mojo_dir / registry.MOJO_FILE)
    features = [
        Feature(
            name=name,
            type="categorical" if name in snap.categorical else "numeric",
            levels=levels(train_frame, name) if name in snap.categorical else None,
            source_type=source_type(snap.spark_types[name]),
        )
        for name in used
    ]
    FeatureSpec(
        use_case=use_case.name,
        target=use_case.target,
        id_columns=use_case.id_columns,
        features=features,
    ).write(mojo_dir / FEATURES_FILE)
    return features


def write_evaluation(
    out: Path, pred_frame: pd.DataFrame, leaderboard: list[dict], test_metrics: dict, labels, scores
) -> None:
    """The test predictions, the leaderboard and the test metrics with calibration bins."""
    evaluation_dir = out / registry.EVALUATION_DIR
    evaluation_dir.mkdir(parents=True, exist_ok=True)
    pred_frame.to_parquet(evaluation_dir / "test_predictions.parquet", index=False)
    (evaluation_dir / "leaderboard.json").write_text(json.dumps(leaderboard, indent=2, default=str))
    (evaluation_dir / "metrics.json").write_text(
        json.dumps(
            {"test": test_metrics, "calibration_bins": metrics.calibration_bins(labels, scores)},
            indent=2,
        )
    )


def write_feature_reference(
    out: Path, snap: Snapshot, varimp: list[tuple[str, float]], features: list[Feature]
) -> None:
    """The training rows of the most important numeric features: scoring runs measure
    their drift against it (models_ml.drift_on_spark.feature_references)."""
    top = top_numeric_features(varimp, features, TOP_FEATURES)
    pd.read_parquet(snap.train_path, columns=top).to_parquet(
        out / registry.EVALUATION_DIR / registry.FEATURE_REFERENCE, index=False
    )


def top_numeric_features(
    varimp: list[tuple[str, float]], features: list[Feature], n: int
) -> list[str]:
    """The `n` most important numeric model inputs (varimp order), for drift monitoring;
    pure. Without importances (an ensemble alone), the first numeric inputs."""
    numeric = [feature.name for feature in features if feature.type == "numeric"]
    ranked = [name for name, _ in varimp if name in numeric]
    return (ranked + [name for name in numeric if name not in ranked])[:n]


def write_mlflow_model(out: Path, snap: Snapshot, features: list[Feature]) -> None:
    """The version as an MLflow model: `models:/<use case>@champion` loads and serves it."""
    # imports MLflow (about 2 s): only where a model is saved, not where this module is read
    from models_ml import pyfunc

    pyfunc.save(
        out / pyfunc.MODEL_DIR,
        out / registry.MOJO_DIR,
        features,
        pd.read_parquet(snap.test_path, columns=[feature.name for feature in features]),
    )


def write_run_record(out: Path, lineage: dict, use_case: UseCase) -> None:
    """lineage.json and the use case as trained (use_case.yaml)."""
    (out / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
    (out / "use_case.yaml").write_text(
        yaml.safe_dump(use_case.model_dump(mode="json"), sort_keys=False)
    )
