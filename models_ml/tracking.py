"""What a training run records in MLflow tracking: its parameters, tags, test and
cross-validation metrics and artefacts, and its lineage (the caller's, plus the table,
the snapshot, the git commit, the use case's config hash and the H2O version)."""

from __future__ import annotations

import json
import subprocess
import time

from cms_pipeline.config import PROJECT_ROOT
from models_ml.data import Snapshot
from models_ml.usecase import UseCase

# lineage keys this module adds itself; the caller's keys are also tagged `lineage.<key>`
OWN_LINEAGE_KEYS = {"table", "snapshot", "git_commit", "config_hash", "h2o_version"}


def run_lineage(lineage: dict, use_case: UseCase, snap: Snapshot, h2o) -> dict:
    """The caller's lineage with what this run adds to it."""
    return {
        **lineage,
        "table": use_case.table,
        "snapshot": snap.lineage(),
        "git_commit": git_commit(),
        "config_hash": use_case.config_hash(),
        "h2o_version": h2o.__version__,
    }


def log_run(
    client, run_id, use_case: UseCase, snap: Snapshot, leader, test_metrics, lineage, out
) -> None:
    """Parameters, tags and metrics of the run in one batch, then every file under `out`."""
    # MLflow is imported here, after registry.client() has turned its telemetry off
    from mlflow.entities import Metric, Param, RunTag

    automl = use_case.automl
    params = {
        "table": use_case.table,
        "target": use_case.target,
        "max_models": automl.max_models,
        "max_runtime_secs": automl.max_runtime_secs,
        "seed": automl.seed,
        "nfolds": automl.nfolds,
        "exclude_algos": ",".join(automl.exclude_algos),
        "sort_metric": automl.sort_metric,
        "split_column": use_case.split.time_column,
        "train_periods": ",".join(map(str, snap.train_periods)),
        "test_start": snap.test_start,
        "rows_gap": snap.rows_gap,
        "rows_unlabelled": snap.rows_unlabelled,
        "fold_column": snap.fold_column,
        "test_periods": ",".join(map(str, snap.test_periods)),
        "rows_table": snap.rows_table,
        "rows_train": snap.rows_train,
        "rows_test": snap.rows_test,
        "n_features": len(snap.features),
        "promotion_metric": use_case.promotion.metric,
        "promotion_margin": use_case.promotion.margin,
    }
    tags = {
        "use_case": use_case.name,
        "table": use_case.table,
        "leader_model_id": leader.model_id,
        "leader_algo": leader.algo,
        "git_commit": lineage["git_commit"],
        "config_hash": lineage["config_hash"],
        "snapshot_sha256": snap.files_sha256,
        **{
            f"lineage.{key}": json.dumps(value, default=str)[:5000]
            for key, value in lineage.items()
            if key not in OWN_LINEAGE_KEYS
        },
    }
    millis = int(time.time() * 1000)
    run_metrics = [
        Metric(f"test_{name}", float(value), millis, 0)
        for name, value in test_metrics.items()
        if value == value  # skip NaN
    ]
    cross_validation = leader.model_performance(xval=True) if automl.nfolds > 1 else None
    if cross_validation is not None:
        run_metrics += [
            Metric("cv_auc", float(cross_validation.auc()), millis, 0),
            Metric("cv_logloss", float(cross_validation.logloss()), millis, 0),
        ]
    client.log_batch(
        run_id,
        metrics=run_metrics,
        params=[Param(key, str(value)) for key, value in params.items()],
        tags=[RunTag(key, str(value)) for key, value in tags.items()],
    )
    client.log_artifacts(run_id, str(out))


def git_commit() -> str:
    """HEAD of the project repository, suffixed '-dirty' when tracked files changed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            text=True,
            capture_output=True,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
