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


BOOTSTRAP_LEVEL = 0.95


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _resamples(y: np.ndarray, n_resamples: int, seed: int):
    """Row indices drawn with replacement, one array per replicate; replicates holding
    one class only are skipped (AUC is undefined there), so fewer may come out."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            yield idx


def _sorted_metrics(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, float]:
    """`binary_metrics` of rows already sorted by ascending score, in O(n) numpy.

    A bootstrap replicate needs no sort of its own (see `bootstrap_intervals`), and
    scikit-learn's input checks cost more than the arithmetic on a few thousand rows.
    AUC and AP treat tied scores as scikit-learn does; the deciles and the top decile
    split ties by position, like the stable sort of `calibration_bins`."""
    n, pos = len(y), y.sum()
    new = np.r_[True, p[1:] != p[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]  # exclusive
    # Mann-Whitney: mean rank of each tie group, 1-based
    ranks = np.repeat((starts + ends + 1) / 2, ends - starts)
    auc = (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (n - pos))
    # AP: thresholds from the highest score down, one step per distinct score
    tp_above = pos - np.r_[0, np.cumsum(y)][starts]  # positives scored >= each group
    rows_above = n - starts
    precision, recall = (tp_above / rows_above)[::-1], (tp_above / pos)[::-1]
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    edges = np.cumsum([len(a) for a in np.array_split(np.empty(n), bins)])[:-1]
    counts = np.diff(np.r_[0, edges, n])
    keep = counts > 0
    mean_p = np.add.reduceat(p, np.r_[0, edges][keep]) / counts[keep]
    rate = np.add.reduceat(y, np.r_[0, edges][keep]) / counts[keep]
    k = max(1, int(np.ceil(0.1 * n)))
    top = y[::-1][:k]  # the stable descending order puts the later of tied rows first
    return {
        "auc": float(auc),
        "aucpr": ap,
        "logloss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "brier": float(np.mean((p - y) ** 2)),
        "calibration_ece": float(np.sum(counts[keep] * np.abs(mean_p - rate)) / n),
        "lift_top_decile": float(top.mean() / (pos / n)),
        "capture_top_decile": float(top.sum() / pos),
        "positive_rate": float(pos / n),
    }


def bootstrap_intervals(
    y_true, scores, n_resamples: int = 1000, seed: int = 0, level: float = BOOTSTRAP_LEVEL
) -> dict[str, dict]:
    """Percentile bootstrap interval of every `binary_metrics` value: the held-out rows
    resampled with replacement `n_resamples` times (seeded, so runs repeat exactly).

    Returns {metric: {"estimate", "low", "high", "replicates"}}; `rows` is left out (it
    does not vary)."""
    y, p = _arrays(y_true, scores)
    point = binary_metrics(y, p)
    order = np.argsort(p, kind="mergesort")
    ys, ps = y[order], p[order]
    draws: dict[str, list[float]] = {k: [] for k in point if k != "rows"}
    for idx in _resamples(y, n_resamples, seed):
        # the replicate in score order without sorting it: each row repeated as often
        # as it was drawn, along the one sorted order
        times = np.bincount(idx, minlength=len(y))[order]
        for k, v in _sorted_metrics(np.repeat(ys, times), np.repeat(ps, times)).items():
            draws[k].append(v)
    out = {}
    for k, values in draws.items():
        low, high = _percentile_interval(np.asarray(values), level)
        out[k] = {"estimate": point[k], "low": low, "high": high, "replicates": len(values)}
    return out


# the metrics a promotion can be decided on (usecase.PromotionConfig.metric)
PROMOTION_METRICS = ("auc", "aucpr", "logloss")


def paired_bootstrap_gain(
    y_true,
    challenger,
    champion,
    metric: str = "auc",
    higher_is_better: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = BOOTSTRAP_LEVEL,
) -> dict:
    """Bootstrap of the challenger's gain over the champion on the same rows: each
    replicate draws row indices once and scores both models on them, so the noise of
    the rows themselves (shared by both) cancels out of the difference.

    gain = challenger - champion, or champion - challenger when lower is better; returns
    {"gain", "low", "high", "replicates", "metric"}."""
    y, a = _arrays(y_true, challenger)
    _, b = _arrays(y_true, champion)
    if metric not in PROMOTION_METRICS:
        raise ValueError(f"promotion metric {metric!r}: one of {sorted(PROMOTION_METRICS)}")
    sign = 1.0 if higher_is_better else -1.0
    gain = sign * (binary_metrics(y, a)[metric] - binary_metrics(y, b)[metric])
    sorted_a, sorted_b = np.argsort(a, kind="mergesort"), np.argsort(b, kind="mergesort")

    def replicate(order: np.ndarray, scores: np.ndarray, times: np.ndarray) -> float:
        t = times[order]
        return _sorted_metrics(np.repeat(y[order], t), np.repeat(scores[order], t))[metric]

    gains = []
    for idx in _resamples(y, n_resamples, seed):
        times = np.bincount(idx, minlength=len(y))  # the same rows for both models
        gains.append(sign * (replicate(sorted_a, a, times) - replicate(sorted_b, b, times)))
    gains = np.asarray(gains)
    low, high = _percentile_interval(gains, level)
    return {
        "metric": metric,
        "gain": float(gain),
        "low": low,
        "high": high,
        "replicates": int(gains.size),
        "level": level,
    }
