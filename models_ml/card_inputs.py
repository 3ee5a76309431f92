"""The model card's inputs, gathered from H2O at training time: SHAP contributions of the
leader (or of the best model that has them), subgroup metrics of the test predictions,
the dbt docs of the cohort and label. models_ml.card turns them into card.json and
card.html without H2O."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cms_pipeline.config import PROJECT_ROOT
from models_ml import card, metrics
from models_ml.data import Snapshot
from models_ml.usecase import UseCase

SHAP_MAX_ROWS = 20_000  # TreeSHAP on the first test rows at most: the mean settles long before
# the card reads the cohort and label from the dbt docs and group labels from the codebooks
DBT_MODELS_DIR = PROJECT_ROOT / "dbt_project" / "models"
SEEDS_DIR = PROJECT_ROOT / "dbt_project" / "seeds"


def model_card(
    client,
    run_id,
    use_case: UseCase,
    snap: Snapshot,
    h2o,
    leader,
    leaderboard,
    varimp,
    test_frame,
    pred_frame: pd.DataFrame,
    intervals: dict,
    lineage: dict,
    version: str,
    promotion: dict,
    out: Path,
) -> Path:
    """Write card.json and card.html under `out` and log both to the run."""
    labels = pred_frame[use_case.target].astype(int).to_numpy()
    scores = pred_frame["p1"].astype(float).to_numpy()
    data = card.card_data(
        use_case=use_case.model_dump(mode="json"),
        version=version,
        run_id=run_id,
        lineage=lineage,
        intervals=intervals,
        calibration_bins=metrics.calibration_bins(labels, scores),
        subgroups=card.subgroup_metrics(
            _with_groups(pred_frame, snap), use_case.target, "p1", card.load_codebooks(SEEDS_DIR)
        ),
        varimp=varimp,
        shap=_contributions(h2o, leader, leaderboard, test_frame),
        promotion=promotion,
        leader={"model_id": leader.model_id, "algo": leader.algo},
        docs=card.dbt_docs(DBT_MODELS_DIR, use_case.table, use_case.target),
        bootstrap=use_case.bootstrap.model_dump(),
    )
    paths = card.write_card(data, out, out / "plots" / "calibration.png")
    for path in paths.values():
        client.log_artifact(run_id, str(path))
    return paths["html"]


def _with_groups(pred_frame: pd.DataFrame, snap: Snapshot) -> pd.DataFrame:
    """The test predictions with the subgroup columns (sex, race, age, state) of the
    same rows: H2O imported the one test Parquet file in order, so rows line up."""
    wanted = {column for columns in card.SUBGROUP_COLUMNS.values() for column in columns}
    columns = [column for column in snap.spark_types if column in wanted]
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
        row["model_id"] for row in leaderboard if row["model_id"] != leader.model_id
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
