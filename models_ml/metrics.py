"""Held-out metrics of a binary classifier, from labels and scores.

Champion and challenger are compared with these same functions on the same rows. Ranking
and loss metrics are scikit-learn's; the rest are a line of numpy each.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk


def _arrays(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(scores, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {p.shape} must be 1-D of equal length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, p


def roc_auc(y_true, scores) -> float:
    """Probability that a random positive outranks a random negative (ties count half);
    NaN when the rows hold one class only (scikit-learn would raise)."""
    y, p = _arrays(y_true, scores)
    if np.unique(y).size < 2:
        return float("nan")
    return float(sk.roc_auc_score(y, p))


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve as a step function (no interpolation);
    NaN without positives (scikit-learn would warn and return 0)."""
    y, p = _arrays(y_true, scores)
    if not y.any():
        return float("nan")
    return float(sk.average_precision_score(y, p))


def log_loss(y_true, scores, eps: float = 1e-15) -> float:
    """Mean log loss, scores clipped to [eps, 1 - eps] first (scikit-learn clips at the
    float's own epsilon, which would change the loss of a 0 or 1 score)."""
    y, p = _arrays(y_true, scores)
    return float(sk.log_loss(y, np.clip(p, eps, 1 - eps), labels=[0.0, 1.0]))


def calibration_bins(y_true, scores, bins: int = 10) -> list[dict]:
    """Equal-count bins by score: mean predicted vs observed rate in each.

    Not sklearn's calibration_curve(strategy="quantile"): its percentile edges put rows at
    an edge (and tied scores) in other bins when the row count is not a multiple of
    `bins`, moving a bin's observed rate by up to ~0.01 on held-out sets of a few thousand
    rows, and it returns no row counts; metrics.json keeps these bins."""
    y, p = _arrays(y_true, scores)
    order = np.argsort(p, kind="mergesort")
    out = []
    for i, idx in enumerate(np.array_split(order, bins)):
        if idx.size:
            out.append(
                {
                    "bin": i,
                    "rows": int(idx.size),
                    "mean_predicted": float(p[idx].mean()),
                    "observed_rate": float(y[idx].mean()),
                }
            )
    return out


def expected_calibration_error(y_true, scores, bins: int = 10) -> float:
    table = calibration_bins(y_true, scores, bins)
    n = sum(b["rows"] for b in table)
    return float(sum(b["rows"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in table) / n)


def top_fraction(y_true, scores, fraction: float = 0.1) -> dict:
    """Lift and capture rate among the highest-scored `fraction` of rows."""
    y, p = _arrays(y_true, scores)
    k = max(1, int(np.ceil(fraction * len(y))))
    top = np.argsort(-p, kind="mergesort")[:k]
    base = y.mean()
    rate = y[top].mean()
    return {
        "lift": float(rate / base) if base > 0 else float("nan"),
        "capture_rate": float(y[top].sum() / y.sum()) if y.sum() > 0 else float("nan"),
    }


def binary_metrics(y_true, scores) -> dict[str, float]:
    """Everything logged for a held-out test set; keys are MLflow metric names."""
    y, p = _arrays(y_true, scores)
    decile = top_fraction(y, p, 0.1)
    return {
        "auc": roc_auc(y, p),
        "aucpr": average_precision(y, p),
        "logloss": log_loss(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "calibration_ece": expected_calibration_error(y, p),
        "lift_top_decile": decile["lift"],
        "capture_top_decile": decile["capture_rate"],
        "positive_rate": float(y.mean()),
        "rows": float(len(y)),
    }
