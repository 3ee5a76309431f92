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
from models_ml import card, registry
from models_ml import metrics as m
from models_ml.data import Snapshot, import_h2o, snapshot
from models_ml.h2o_cluster import ensure_h2o
from models_ml.plots import evaluation_plots
from models_ml.schema import Feature, source_type
from models_ml.usecase import UseCase, load_use_case

TOP_FEATURES = 5  # most important numeric inputs whose drift each scoring run reports
PROMOTION_METRIC_NAMES = {
    "gain": "promotion_gain",
    "low": "promotion_gain_ci_low",
    "high": "promotion_gain_ci_high",
}
SHAP_MAX_ROWS = 20_000  # TreeSHAP on the first test rows at most: the mean settles long before
# the card reads the cohort and label from the dbt docs and group labels from the codebooks
DBT_MODELS_DIR = PROJECT_ROOT / "dbt_project" / "models"
SEEDS_DIR = PROJECT_ROOT / "dbt_project" / "seeds"

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
    card_path: str | None = None  # card.html beside the run's artefacts (also logged)


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
    boot = uc.bootstrap
    intervals = m.bootstrap_intervals(y, p, boot.resamples, boot.seed, boot.level)
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
            source_type=source_type(snap.spark_types[n]),  # typed REST request fields
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
    # the version as an MLflow model: `models:/<use case>@champion` loads and serves it
    from models_ml import pyfunc  # imports MLflow: only where a model is saved

    pyfunc.save(
        out / pyfunc.MODEL_DIR,
        mojo_dir,
        features,
        pd.read_parquet(snap.test_path, columns=[f.name for f in features]),
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
    promoted, decision, champ_metrics, noise = _challenge(
        settings, h2o, uc, test_fr, y, p, version.version, work
    )
    c.set_tag(run_id, "promotion_decision", decision)
    for k, v in champ_metrics.items():
        c.log_metric(run_id, f"champion_{k}", v)
    for key in ("gain", "low", "high"):
        if noise is not None and noise[key] == noise[key]:  # NaN: no usable replicate
            c.log_metric(run_id, PROMOTION_METRIC_NAMES[key], noise[key])

    card_html = _model_card(
        c,
        run_id,
        uc,
        snap,
        h2o,
        leader,
        leaderboard,
        varimp,
        test_fr,
        pred_frame,
        intervals,
        full_lineage,
        str(version.version),
        {"decision": decision, "would_promote": promoted, "gain": noise},
        out,
    )
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
        card_path=str(card_html),
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
    challenger: float,
    champion: float | None,
    metric: str,
    margin: float,
    higher_is_better: bool,
    noise: dict | None = None,
) -> tuple[bool, str]:
    """Promotion rule, pure: beat the champion on the same test rows by `margin`, and by
    more than the noise of those rows: the lower bound of the paired bootstrap interval
    of the gain (`noise`, from metrics.paired_bootstrap_gain) must be above 0."""
    if champion is None or np.isnan(champion):
        return True, f"no champion to beat; {metric}={challenger:.4f}"
    if noise is None:
        raise ValueError("a champion exists: the paired bootstrap of the gain is needed")
    gain = (challenger - champion) if higher_is_better else (champion - challenger)
    beats_margin = gain >= margin
    beats_noise = noise["low"] > 0  # NaN (no usable replicate) is not above 0
    promoted = beats_margin and beats_noise
    if promoted:
        verdict = "promoted"
    elif not beats_margin:
        verdict = "kept champion (gain below the margin)"
    else:
        verdict = "kept champion (gain within bootstrap noise)"
    return promoted, (
        f"{verdict}: challenger {metric}={challenger:.4f} vs champion {champion:.4f} "
        f"on the same test rows (gain {gain:+.4f}, margin {margin}, "
        f"{noise['level']:.0%} paired bootstrap CI of the gain "
        f"[{noise['low']:+.4f}, {noise['high']:+.4f}] over {noise['replicates']} replicates)"
    )


def _challenge(settings, h2o, uc: UseCase, test_fr, y, p, version, work):
    """Score the champion's MOJO on this run's test frame and apply the promotion rule;
    (promoted, decision, champion's metrics, paired bootstrap of the gain or None)."""
    metric, margin = uc.promotion.metric, uc.promotion.margin
    higher = uc.promotion.higher_is_better
    challenger = m.binary_metrics(y, p)[metric]
    champ = registry.champion(settings, uc.name)
    if champ is None:
        promoted, why = decide(challenger, None, metric, margin, higher)
        return promoted, why, {}, None
    paths = registry.download_version(settings, uc.name, champ.version, work / "champion")
    champ_model = h2o.import_mojo(str(paths["mojo"]))
    _, p_champ, _ = _predict(h2o, champ_model, test_fr, uc)
    champ_metrics = m.binary_metrics(y, p_champ)
    boot = uc.bootstrap
    noise = m.paired_bootstrap_gain(
        y, p, p_champ, metric, higher, boot.resamples, boot.seed, boot.level
    )
    promoted, why = decide(challenger, champ_metrics[metric], metric, margin, higher, noise)
    return promoted, f"v{version} vs champion v{champ.version}: {why}", champ_metrics, noise


def _model_card(
    c,
    run_id,
    uc: UseCase,
    snap: Snapshot,
    h2o,
    leader,
    leaderboard,
    varimp,
    test_fr,
    pred_frame: pd.DataFrame,
    intervals: dict,
    lineage: dict,
    version: str,
    promotion: dict,
    out: Path,
) -> Path:
    """Write card.json and card.html under `out` and log both to the run."""
    y = pred_frame[uc.target].astype(int).to_numpy()
    p = pred_frame["p1"].astype(float).to_numpy()
    data = card.card_data(
        use_case=uc.model_dump(mode="json"),
        version=version,
        run_id=run_id,
        lineage=lineage,
        intervals=intervals,
        calibration_bins=m.calibration_bins(y, p),
        subgroups=card.subgroup_metrics(
            _with_groups(pred_frame, snap), uc.target, "p1", card.load_codebooks(SEEDS_DIR)
        ),
        varimp=varimp,
        shap=_contributions(h2o, leader, leaderboard, test_fr),
        promotion=promotion,
        leader={"model_id": leader.model_id, "algo": leader.algo},
        docs=card.dbt_docs(DBT_MODELS_DIR, uc.table, uc.target),
        bootstrap=uc.bootstrap.model_dump(),
    )
    paths = card.write_card(data, out, out / "plots" / "calibration.png")
    for path in paths.values():
        c.log_artifact(run_id, str(path))
    return paths["html"]


def _with_groups(pred_frame: pd.DataFrame, snap: Snapshot) -> pd.DataFrame:
    """The test predictions with the subgroup columns (sex, race, age, state) of the
    same rows: H2O imported the one test Parquet file in order, so rows line up."""
    wanted = {c for cols in card.SUBGROUP_COLUMNS.values() for c in cols}
    columns = [c for c in snap.spark_types if c in wanted]
    groups = pd.read_parquet(snap.test_path, columns=columns)
    if len(groups) != len(pred_frame):
        raise RuntimeError(f"{snap.test_path}: {len(groups)} rows, predictions {len(pred_frame)}")
    return pd.concat(
        [
            pred_frame.reset_index(drop=True),
            groups.drop(columns=list(pred_frame.columns), errors="ignore"),
        ],
        axis=1,
    )


def _contributions(h2o, leader, leaderboard: list[dict], frame) -> dict:
    """Mean |SHAP| per feature (H2O TreeSHAP) of the leader on the test rows, or of the
    best leaderboard model that has contributions (none for stacked ensembles or GLM
    without a background frame); the card says which model and why."""
    rows = min(frame.nrows, SHAP_MAX_ROWS)
    sample = frame[:rows, :] if rows < frame.nrows else frame
    skipped = []
    ids = [leader.model_id] + [
        r["model_id"] for r in leaderboard if r["model_id"] != leader.model_id
    ]
    for model_id in ids:
        model = leader if model_id == leader.model_id else h2o.get_model(model_id)
        if model.algo == "stackedensemble":
            skipped.append(f"{model_id}: stacked ensembles have no predict_contributions")
            continue
        try:
            contributions = model.predict_contributions(sample).as_data_frame(use_multi_thread=True)
        except Exception as exc:  # noqa: BLE001 - H2O raises several kinds; the next model may work
            skipped.append(f"{model_id}: {_h2o_reason(exc)}")
            continue
        note = f"Of the first {rows} of {frame.nrows} test rows." if rows < frame.nrows else ""
        if model_id != leader.model_id:
            note += (
                f" The leader {leader.model_id} has none; this is the best non-ensemble model "
                f"on the leaderboard that has them ({'; '.join(skipped)})."
            )
        return {
            "model_id": model_id,
            "algo": model.algo,
            "rows": rows,
            "note": note.strip(),
            "features": card.mean_abs_contributions(contributions),
        }
    return {"model_id": None, "rows": 0, "features": [], "note": "; ".join(skipped)}


def _h2o_reason(exc: Exception) -> str:
    """The Java exception's message out of an H2O error (which spans lines and may hold
    a stack trace), on one line."""
    text = " ".join(str(exc).split())
    _, found, tail = text.partition("Exception: ")
    return (tail if found else text).split(" stacktrace")[0][:300]


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
