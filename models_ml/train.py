"""Train one use case: snapshot -> H2O AutoML -> held-out evaluation -> MLflow -> promotion.

`train(settings, use_case, lineage)` is what the flow calls. `lineage` carries what the
caller knows about the inputs (bronze Delta versions, dbt manifest hash, batch ids); it
is logged with the table, row counts, snapshot hash, git commit and config hash.

The steps live where their idea does: the split in models_ml.data, the AutoML run in
models_ml.automl, the run's files in models_ml.run_artifacts, what MLflow records in
models_ml.tracking, the champion's challenge in models_ml.promotion and the card's
inputs in models_ml.card_inputs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from cms_pipeline.config import Settings
from cms_pipeline.memory import h2o_heap
from cms_pipeline.spark import get_spark
from models_ml import metrics, promotion, registry, run_artifacts, tracking
from models_ml.automl import leaderboard, predict, run_automl, used_features, varimp
from models_ml.card_inputs import model_card
from models_ml.data import import_h2o, snapshot
from models_ml.h2o_cluster import ensure_h2o
from models_ml.plots import evaluation_plots
from models_ml.usecase import UseCase, load_use_case


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
    if not isinstance(use_case, UseCase):
        use_case = load_use_case(settings, use_case)
    if spark is None:  # PySpark is imported (and started) only when the caller brings none
        spark = get_spark(settings)
    client = registry.client(settings)
    run = client.create_run(
        registry.experiment_id(settings, use_case.name), run_name=f"{use_case.name}-automl"
    )
    run_id = run.info.run_id
    try:
        result = _train_run(
            settings, use_case, lineage or {}, spark, client, run_id, promote_if_better
        )
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return result


def _train_run(
    settings: Settings,
    use_case: UseCase,
    lineage: dict,
    spark,
    client,
    run_id: str,
    promote_if_better: bool,
) -> TrainResult:
    work = settings.metadata_path("ml", use_case.name, run_id)
    snap = snapshot(spark, use_case, work)
    # a local H2O's heap follows the training rows, unless CMS_PIPELINE_H2O_MEM says
    size = sum(path.stat().st_size for path in (work / "table").rglob("*.parquet"))
    h2o = ensure_h2o(max_mem=os.environ.get("CMS_PIPELINE_H2O_MEM") or h2o_heap(size))
    train_frame = import_h2o(h2o, snap, use_case, "train")
    test_frame = import_h2o(h2o, snap, use_case, "test")

    aml = run_automl(use_case, snap, train_frame, run_id)
    leader = aml.leader
    used = used_features(leader, snap, use_case)

    labels, scores, pred_frame = predict(leader, test_frame, use_case)
    test_metrics = metrics.binary_metrics(labels, scores)
    bootstrap = use_case.bootstrap
    intervals = metrics.bootstrap_intervals(
        labels, scores, bootstrap.resamples, bootstrap.seed, bootstrap.level
    )
    board = leaderboard(aml)

    out = work / "artifacts"
    features = run_artifacts.write_mojo(out, leader, used, snap, train_frame, use_case)
    run_artifacts.write_evaluation(out, pred_frame, board, test_metrics, labels, scores)
    importances = varimp(h2o, board)
    evaluation_plots(labels, scores, importances, out / "plots", use_case.name)
    run_artifacts.write_feature_reference(out, snap, importances, features)
    run_artifacts.write_mlflow_model(out, snap, features)
    full_lineage = tracking.run_lineage(lineage, use_case, snap, h2o)
    run_artifacts.write_run_record(out, full_lineage, use_case)

    tracking.log_run(client, run_id, use_case, snap, leader, test_metrics, full_lineage, out)

    version = registry.register_version(
        settings,
        use_case.name,
        run_id,
        tags={
            "test_auc": f"{test_metrics['auc']:.6f}",
            "leader": leader.model_id,
            "config_hash": use_case.config_hash(),
        },
    )
    outcome = promotion.challenge(
        settings, h2o, use_case, test_frame, labels, scores, version.version, work
    )
    promotion.log_challenge(client, run_id, outcome)

    card_html = model_card(
        client,
        run_id,
        use_case,
        snap,
        h2o,
        leader,
        board,
        importances,
        test_frame,
        pred_frame,
        intervals,
        full_lineage,
        str(version.version),
        {"decision": outcome.decision, "would_promote": outcome.promoted, "gain": outcome.gain},
        out,
    )
    if outcome.promoted and promote_if_better:
        registry.promote(settings, use_case.name, version.version, outcome.decision)
    champion = registry.champion(settings, use_case.name)
    return TrainResult(
        use_case=use_case.name,
        run_id=run_id,
        model_version=str(version.version),
        leader=leader.model_id,
        metrics=test_metrics,
        champion_version=str(champion.version) if champion else None,
        promoted=bool(outcome.promoted and promote_if_better),
        decision=outcome.decision,
        snapshot_dir=str(work),
        leaderboard=board,
        card_path=str(card_html),
    )


def as_dict(result: TrainResult) -> dict:
    return asdict(result)
