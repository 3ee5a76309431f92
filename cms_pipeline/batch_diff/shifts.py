"""How one column moved between two profiles: population stability index and the
Kolmogorov-Smirnov distance on the profiles' fixed-edge histograms, mean, null-rate and
top-value share changes, each flagged past its threshold."""

from __future__ import annotations

from typing import Any

import numpy as np

from cms_pipeline.batch_diff.report import ColumnShift, Thresholds
from cms_pipeline.profiling.conformance import NUMERIC_TYPES
from cms_pipeline.profiling.records import ColumnProfile

_EPS = 1e-4  # floor for empty bins in PSI, as usual for PSI


def psi(before: dict[Any, float], after: dict[Any, float]) -> float:
    """Population stability index of two distributions over the same bins (counts ok)."""
    p, q = _aligned_shares(before, after)
    p, q = np.maximum(p, _EPS), np.maximum(q, _EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_binned(before: dict[Any, float], after: dict[Any, float]) -> float:
    """Largest distance between the two cumulative distributions, bins in key order."""
    p, q = _aligned_shares(before, after, ordered=True)
    return float(np.max(np.abs(np.cumsum(p) - np.cumsum(q)))) if len(p) else 0.0


def _aligned_shares(
    before: dict[Any, float], after: dict[Any, float], ordered: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    keys = list(set(before) | set(after))
    if ordered:
        keys.sort()
    p = np.array([before.get(k, 0) for k in keys], dtype=float)
    q = np.array([after.get(k, 0) for k in keys], dtype=float)
    p = p / p.sum() if p.sum() else p
    q = q / q.sum() if q.sum() else q
    return p, q


def column_shift(before: ColumnProfile, after: ColumnProfile, t: Thresholds) -> ColumnShift:
    """Shift of one column between two profiles, with flags past the thresholds."""
    shift = ColumnShift(
        column=after.column,
        logical_type=after.logical_type,
        null_rate_before=before.null_rate,
        null_rate_after=after.null_rate,
    )
    if abs(after.null_rate - before.null_rate) > t.null_rate:
        shift.flags.append("null_rate")
    if before.histogram and after.histogram:
        # histogram keys are fixed bins whose integer order is value order
        shift.psi = psi(before.histogram, after.histogram)
        shift.ks = ks_binned(before.histogram, after.histogram)
    if after.logical_type in NUMERIC_TYPES and before.mean is not None and after.mean is not None:
        shift.mean_before, shift.mean_after = before.mean, after.mean
        shift.std_before, shift.std_after = before.std, after.std
        delta = abs(after.mean - before.mean)
        scale = before.std or 0.0
        if (scale > 0 and delta / scale > t.mean_shift) or (scale == 0 and delta > 0):
            shift.flags.append("mean")
    if after.histogram_kind is None:
        _categorical_shift(before, after, shift)
    if shift.psi is not None and shift.psi > t.psi:
        shift.flags.append("psi")
    if shift.ks is not None and shift.ks > t.ks:
        shift.flags.append("ks")
    top = shift.top_share_change_max
    if top is not None and top > t.top_share:
        shift.flags.append("top_share")
    return shift


def _categorical_shift(before: ColumnProfile, after: ColumnProfile, shift: ColumnShift) -> None:
    """Top-value shares; PSI too when both top lists hold every distinct value."""
    sb = _shares(before)
    sa = _shares(after)
    complete_b = _complete(before)
    complete_a = _complete(after)
    changes = []
    for value in set(sb) | set(sa):
        # a value missing from a complete list has share 0; from a cut list it is unknown
        if (value in sb or complete_b) and (value in sa or complete_a):
            changes.append((value, sb.get(value, 0.0), sa.get(value, 0.0)))
    changes.sort(key=lambda t: -abs(t[2] - t[1]))
    shift.top_share_changes = changes[:5]
    if complete_b and complete_a and sb and sa:
        shift.psi = psi(sb, sa)


def _shares(col: ColumnProfile) -> dict[str, float]:
    n = col.non_null
    return {v: c / n for v, c in col.top_values} if n else {}


def _complete(col: ColumnProfile) -> bool:
    return col.distinct_exact and col.distinct_estimate <= len(col.top_values)
