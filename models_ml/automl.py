"""The AutoML run on H2O, and what training reads back from H2O's models and frames.

Only seed and max_models go to H2O: any time limit inside H2O makes runs differ, so
max_runtime_secs is a safety cap enforced from outside (the job is cancelled).
"""

from __future__ import annotations

import threading

from h2o.automl import H2OAutoML, get_leaderboard

from models_ml.data import Snapshot
from models_ml.usecase import UseCase


class AutoMLTimeout(RuntimeError):
    """AutoML ran past its safety cap (max_runtime_secs) and was cancelled."""


def run_automl(use_case: UseCase, snap: Snapshot, train_frame, run_id: str) -> H2OAutoML:
    """AutoML on the training frame, with the use case's settings; the finished run."""
    automl = use_case.automl
    aml = H2OAutoML(
        max_models=automl.max_models,
        seed=automl.seed,
        nfolds=automl.nfolds,
        exclude_algos=automl.exclude_algos or None,
        sort_metric=automl.sort_metric,
        project_name=f"{use_case.name}_{run_id[:12]}",
        verbosity=None,
    )
    run_capped(
        aml,
        automl.max_runtime_secs,
        use_case.name,
        x=snap.features,
        y=use_case.target,
        training_frame=train_frame,
        fold_column=snap.fold_column,
    )
    return aml


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


def used_features(model, snap: Snapshot, use_case: UseCase) -> list[str]:
    """The input columns the model uses (fold column excluded); raises when one of them
    is an id, the label, the split or an excluded column: those must never reach it."""
    used = [name for name in _model_features(model) if name != snap.fold_column]
    leaked = sorted(set(used) & use_case.non_features)
    if leaked:
        raise RuntimeError(
            f"{use_case.name}: model {model.model_id} uses excluded columns {leaked}"
        )
    return used


def _model_features(model) -> list[str]:
    """Input columns the trained model actually uses (response excluded)."""
    names = model._model_json["output"]["names"]
    response = model.actual_params.get("response_column")
    response = response["column_name"] if isinstance(response, dict) else response
    return [name for name in names if name != response]


def predict(model, frame, use_case: UseCase):
    """Labels and P(1) on a frame, plus a pandas frame keyed by the use case's ids."""
    prediction = model.predict(frame)
    both = frame[use_case.id_columns + [use_case.target]].cbind(prediction["p1"])
    table = both.as_data_frame(use_multi_thread=True)
    labels = table[use_case.target].astype(int).to_numpy()
    return labels, table["p1"].astype(float).to_numpy(), table


def levels(frame, column: str) -> list[str]:
    """The levels of a categorical column of an H2O frame, as text."""
    return [str(value) for value in (frame[column].levels()[0] or [])]


def leaderboard(aml) -> list[dict]:
    """The AutoML leaderboard, best first, with each model's algorithm."""
    board = get_leaderboard(aml, extra_columns=["algo"]).as_data_frame(use_multi_thread=True)
    return board.to_dict(orient="records")


def varimp(h2o, board: list[dict]) -> list[tuple[str, float]]:
    """Variable importance of the best model that has one (ensembles do not)."""
    for row in board:
        importances = h2o.get_model(row["model_id"]).varimp()
        if importances:
            return [(str(entry[0]), float(entry[2])) for entry in importances]
    return []
