"""Train one use case: snapshot -> H2O AutoML -> held-out evaluation -> MLflow -> promotion.

`train(settings, use_case, lineage)` is what the flow calls. `lineage` carries what the
caller knows about the inputs (bronze Delta versions, dbt manifest hash, batch ids); it
is logged with the table, row counts, snapshot hash, git commit and config hash.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cms_pipeline.config import PROJECT_ROOT, Settings
from models_ml import metrics as m
from models_ml import registry
from models_ml.data import Snapshot, import_h2o, snapshot
from models_ml.h2o_cluster import ensure_h2o
from models_ml.plots import evaluation_plots
from models_ml.schema import Feature
from models_ml.usecase import UseCase, load_use_case

TOP_FEATURES = 5  # most important numeric inputs whose drift each scoring run reports

# lineage keys this module adds itself; the caller's keys are also tagged `lineage.<key>`
OWN_LINEAGE_KEYS = {"table", "snapshot", "git_commit", "config_hash", "h2o_version"}


@dataclass
class TrainResult:
    use_case: str
    run_id: str
    model_version: str
    leader: str
    metrics: dict[str, float]
    champion_version: str | None  # the champion after this run
    promoted: bool
    decision: str
    snapshot_dir: str
    leaderboard: list[dict]


def train(
    settings: Settings,
    use_case: str | UseCase,
    lineage: dict | None = None,
    spark=None,
    promote_if_better: bool = True,
) -> TrainResult:
    uc = use_case if isinstance(use_case, UseCase) else load_use_case(settings, use_case)
    if spark is None:
        from cms_pipeline.spark import get_spark

        spark = get_spark(settings)
    c = registry.client(settings)
    run = c.create_run(registry.experiment_id(settings, uc.name), run_name=f"{uc.name}-automl")
    run_id = run.info.run_id
    try:
        result = _train_run(settings, uc, lineage or {}, spark, c, run_id, promote_if_better)
    except BaseException:
        c.set_terminated(run_id, status="FAILED")
        raise
    c.set_terminated(run_id, status="FINISHED")
    return result


def _train_run(settings, uc: UseCase, lineage, spark, c, run_id, promote_if_better):
    from h2o.automl import H2OAutoML

    from cms_pipeline.memory import h2o_heap

    work = settings.metadata_path("ml", uc.name, run_id)
    snap = snapshot(spark, uc, work)
    # a local H2O's heap follows the training rows, unless CMS_PIPELINE_H2O_MEM says
    size = sum(p.stat().st_size for p in (work / "table").rglob("*.parquet"))
    h2o = ensure_h2o(max_mem=os.environ.get("CMS_PIPELINE_H2O_MEM") or h2o_heap(size))
    train_fr = import_h2o(h2o, snap, uc, "train")
    test_fr = import_h2o(h2o, snap, uc, "test")

    a = uc.automl
    # Only seed + max_models go to H2O: any time limit inside H2O makes runs differ, so
    # max_runtime_secs is a safety cap enforced from outside (the job is cancelled).
    aml = H2OAutoML(
        max_models=a.max_models,
        seed=a.seed,
        nfolds=a.nfolds,
        exclude_algos=a.exclude_algos or None,
        sort_metric=a.sort_metric,
        project_name=f"{uc.name}_{run_id[:12]}",
        verbosity=None,
    )
    run_capped(
        aml,
        a.max_runtime_secs,
        uc.name,
        x=snap.features,
        y=uc.target,
        training_frame=train_fr,
        fold_column=snap.fold_column,
    )
    leader = aml.leader
    used = [n for n in _model_features(leader) if n != snap.fold_column]
    leaked = sorted(set(used) & uc.non_features)
    if leaked:  # guard: ids, label, split and excluded columns must never reach the model
        raise RuntimeError(f"{uc.name}: model {leader.model_id} uses excluded columns {leaked}")

    y, p, pred_frame = _predict(h2o, leader, test_fr, uc)
    test_metrics = m.binary_metrics(y, p)
    leaderboard = _leaderboard(h2o, aml)

    out = work / "artifacts"
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
            name=n,
            type="categorical" if n in snap.categorical else "numeric",
            levels=_levels(train_fr, n) if n in snap.categorical else None,
        )
        for n in used
    ]
    (mojo_dir / registry.FEATURES_FILE).write_text(
        json.dumps(
            {
                "use_case": uc.name,
                "target": uc.target,
                "id_columns": uc.id_columns,
                "features": [f.model_dump() for f in features],
            },
            indent=2,
        )
    )

    eval_dir = out / "evaluation"
    eval_dir.mkdir(parents=True, exist_ok=True)
    pred_frame.to_parquet(eval_dir / "test_predictions.parquet", index=False)
    (eval_dir / "leaderboard.json").write_text(json.dumps(leaderboard, indent=2, default=str))
    (eval_dir / "metrics.json").write_text(
        json.dumps({"test": test_metrics, "calibration_bins": m.calibration_bins(y, p)}, indent=2)
    )
    varimp = _varimp(h2o, aml, leaderboard)
    evaluation_plots(y, p, varimp, out / "plots", uc.name)
    top = top_numeric_features(varimp, features, TOP_FEATURES)
    # the training rows of the most important numeric features: scoring runs measure
    # their drift against it (models_ml.batch.feature_references)
    pd.read_parquet(snap.train_path, columns=top).to_parquet(
        eval_dir / registry.FEATURE_REFERENCE, index=False
    )

    full_lineage = {
        **lineage,
        "table": uc.table,
        "snapshot": snap.lineage(),
        "git_commit": git_commit(),
        "config_hash": uc.config_hash(),
        "h2o_version": h2o.__version__,
    }
    (out / "lineage.json").write_text(json.dumps(full_lineage, indent=2, default=str))
    (out / "use_case.yaml").write_text(yaml.safe_dump(uc.model_dump(mode="json"), sort_keys=False))

    _log_run(c, run_id, uc, snap, leader, aml, test_metrics, full_lineage, out)

    version = registry.register_version(
        settings,
        uc.name,
        run_id,
        tags={
            "test_auc": f"{test_metrics['auc']:.6f}",
            "leader": leader.model_id,
            "config_hash": uc.config_hash(),
        },
    )
    promoted, decision, champ_metrics = _challenge(
        settings, h2o, uc, test_fr, y, test_metrics, version.version, work
    )
    c.set_tag(run_id, "promotion_decision", decision)
    for k, v in champ_metrics.items():
        c.log_metric(run_id, f"champion_{k}", v)
    if promoted and promote_if_better:
        registry.promote(settings, uc.name, version.version, decision)
    champ = registry.champion(settings, uc.name)
    return TrainResult(
        use_case=uc.name,
        run_id=run_id,
        model_version=str(version.version),
        leader=leader.model_id,
        metrics=test_metrics,
        champion_version=str(champ.version) if champ else None,
        promoted=bool(promoted and promote_if_better),
        decision=decision,
        snapshot_dir=str(work),
        leaderboard=leaderboard,
    )


class AutoMLTimeout(RuntimeError):
    """AutoML ran past its safety cap (max_runtime_secs) and was cancelled."""


def run_capped(aml, cap_secs: int, use_case: str, **train_args) -> None:
    """`aml.train(...)`, cancelled after `cap_secs` (0 = no cap)."""
    hit = threading.Event()

    def cancel() -> None:
        job = getattr(aml, "_job", None)
        if job is not None:
            hit.set()
            job.cancel()

    timer = threading.Timer(cap_secs, cancel) if cap_secs else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        aml.train(**train_args)
    except Exception as exc:
        if hit.is_set():
            raise AutoMLTimeout(_cap_message(use_case, cap_secs)) from exc
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if hit.is_set():  # cancelled after the last model: the leaderboard may be partial
        raise AutoMLTimeout(_cap_message(use_case, cap_secs))


def _cap_message(use_case: str, cap_secs: int) -> str:
    return (
        f"AutoML for {use_case} ran longer than max_runtime_secs={cap_secs} and was cancelled; "
        f"raise automl.max_runtime_secs or lower automl.max_models in config/ml/{use_case}.yaml"
    )


def _predict(h2o, model, frame, uc: UseCase):
    """Labels and P(1) on a frame, plus a pandas frame keyed by the use case's ids."""
    pred = model.predict(frame)
    both = frame[uc.id_columns + [uc.target]].cbind(pred["p1"])
    df = both.as_data_frame(use_multi_thread=True)
    y = df[uc.target].astype(int).to_numpy()
    return y, df["p1"].astype(float).to_numpy(), df


def decide(
    challenger: float, champion: float | None, metric: str, margin: float, higher_is_better: bool
) -> tuple[bool, str]:
    """Promotion rule, pure: beat the champion on the same test data by `margin`."""
    if champion is None or np.isnan(champion):
        return True, f"no champion to beat; {metric}={challenger:.4f}"
    gain = (challenger - champion) if higher_is_better else (champion - challenger)
    verdict = "promoted" if gain >= margin else "kept champion"
    return gain >= margin, (
        f"{verdict}: challenger {metric}={challenger:.4f} vs champion {champion:.4f} "
        f"on the same test rows (gain {gain:+.4f}, margin {margin})"
    )


def _challenge(settings, h2o, uc: UseCase, test_fr, y, test_metrics, version, work):
    """Score the champion's MOJO on this run's test frame and apply the promotion rule."""
    metric, margin = uc.promotion.metric, uc.promotion.margin
    champ = registry.champion(settings, uc.name)
    if champ is None:
        promoted, why = decide(
            test_metrics[metric], None, metric, margin, uc.promotion.higher_is_better
        )
        return promoted, why, {}
    paths = registry.download_version(settings, uc.name, champ.version, work / "champion")
    champ_model = h2o.import_mojo(str(paths["mojo"]))
    _, p_champ, _ = _predict(h2o, champ_model, test_fr, uc)
    champ_metrics = m.binary_metrics(y, p_champ)
    promoted, why = decide(
        test_metrics[metric], champ_metrics[metric], metric, margin, uc.promotion.higher_is_better
    )
    return promoted, f"v{version} vs champion v{champ.version}: {why}", champ_metrics


def _model_features(model) -> list[str]:
    """Input columns the trained model actually uses (response excluded)."""
    names = model._model_json["output"]["names"]
    response = model.actual_params.get("response_column")
    response = response["column_name"] if isinstance(response, dict) else response
    return [n for n in names if n != response]


def _levels(frame, column: str) -> list[str]:
    return [str(v) for v in (frame[column].levels()[0] or [])]


def _leaderboard(h2o, aml) -> list[dict]:
    from h2o.automl import get_leaderboard

    lb = get_leaderboard(aml, extra_columns=["algo"]).as_data_frame(use_multi_thread=True)
    return lb.to_dict(orient="records")


def top_numeric_features(
    varimp: list[tuple[str, float]], features: list[Feature], n: int
) -> list[str]:
    """The `n` most important numeric model inputs (varimp order), for drift monitoring;
    pure. Without importances (an ensemble alone), the first numeric inputs."""
    numeric = [f.name for f in features if f.type == "numeric"]
    ranked = [name for name, _ in varimp if name in numeric]
    return (ranked + [name for name in numeric if name not in ranked])[:n]


def _varimp(h2o, aml, leaderboard) -> list[tuple[str, float]]:
    """Variable importance of the best model that has one (ensembles do not)."""
    for row in leaderboard:
        vi = h2o.get_model(row["model_id"]).varimp()
        if vi:
            return [(str(r[0]), float(r[2])) for r in vi]
    return []


def _log_run(c, run_id, uc: UseCase, snap: Snapshot, leader, aml, test_metrics, lineage, out):
    from mlflow.entities import Metric, Param, RunTag

    a = uc.automl
    params = {
        "table": uc.table,
        "target": uc.target,
        "max_models": a.max_models,
        "max_runtime_secs": a.max_runtime_secs,
        "seed": a.seed,
        "nfolds": a.nfolds,
        "exclude_algos": ",".join(a.exclude_algos),
        "sort_metric": a.sort_metric,
        "split_column": uc.split.time_column,
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
        "promotion_metric": uc.promotion.metric,
        "promotion_margin": uc.promotion.margin,
    }
    tags = {
        "use_case": uc.name,
        "table": uc.table,
        "leader_model_id": leader.model_id,
        "leader_algo": leader.algo,
        "git_commit": lineage["git_commit"],
        "config_hash": lineage["config_hash"],
        "snapshot_sha256": snap.files_sha256,
        **{
            f"lineage.{k}": json.dumps(v, default=str)[:5000]
            for k, v in lineage.items()
            if k not in OWN_LINEAGE_KEYS
        },
    }
    ts = _millis()
    metrics = [
        Metric(f"test_{k}", float(v), ts, 0) for k, v in test_metrics.items() if v == v
    ]  # skip NaN
    cv = leader.model_performance(xval=True) if uc.automl.nfolds > 1 else None
    if cv is not None:
        metrics += [
            Metric("cv_auc", float(cv.auc()), ts, 0),
            Metric("cv_logloss", float(cv.logloss()), ts, 0),
        ]
    c.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    c.log_artifacts(run_id, str(out))


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


def _millis() -> int:
    import time

    return int(time.time() * 1000)


def as_dict(result: TrainResult) -> dict:
    return asdict(result)
