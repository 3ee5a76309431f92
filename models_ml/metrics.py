"""Held-out metrics of a binary classifier, from labels and scores (pure numpy).

Champion and challenger are compared with these same functions on the same rows.
"""

from __future__ import annotations

import numpy as np


def _arrays(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(scores, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {p.shape} must be 1-D of equal length")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, p


def roc_auc(y_true, scores) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    y, p = _arrays(y_true, scores)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = p[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y, p = _arrays(y_true, scores)
    tps, fps = _cumulative_counts(y, p)
    tpr = np.concatenate([[0.0], tps / max(y.sum(), 1)])
    fpr = np.concatenate([[0.0], fps / max(len(y) - y.sum(), 1)])
    return fpr, tpr


def precision_recall_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y, p = _arrays(y_true, scores)
    tps, fps = _cumulative_counts(y, p)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / max(y.sum(), 1)
    return recall, precision


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve as a step function (no interpolation)."""
    recall, precision = precision_recall_curve(y_true, scores)
    if recall.size == 0 or recall[-1] == 0:
        return float("nan")
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def log_loss(y_true, scores, eps: float = 1e-15) -> float:
    y, p = _arrays(y_true, scores)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_bins(y_true, scores, bins: int = 10) -> list[dict]:
    """Equal-count bins by score: mean predicted vs observed rate in each."""
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


def _cumulative_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True/false positives at each distinct threshold, highest score first."""
    order = np.argsort(-p, kind="mergesort")
    y, p = y[order], p[order]
    last_of_tie = np.r_[np.where(np.diff(p))[0], len(p) - 1] if len(p) else np.array([], int)
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps
