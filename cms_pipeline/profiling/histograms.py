"""Histogram bins with fixed edges: signed quarter-decade log bins for numbers, years
for dates. Every batch uses the same edges, so the histograms of two profiles compare
bin by bin (the PSI and KS statistics of `batch_diff`).
"""

from __future__ import annotations

import numpy as np

_LOG_BINS_PER_DECADE = 4  # numeric histogram: quarter-decade bins, same edges for every batch
_MIN_LOG_BIN = -8  # |x| < 0.01 falls into the lowest bin


def numeric_bins(values: np.ndarray) -> np.ndarray:
    """Fixed signed log bins: 0 for zero, +/-(1000 + floor(4 log10 |x|)) otherwise."""
    mag = np.abs(values)
    with np.errstate(divide="ignore"):
        k = np.floor(np.log10(np.where(mag > 0, mag, 1.0)) * _LOG_BINS_PER_DECADE)
    k = np.maximum(k, _MIN_LOG_BIN).astype(np.int64) + 1000
    return np.where(values == 0, 0, np.sign(values).astype(np.int64) * k)


def bin_edges(kind: str, key: int) -> tuple[float, float]:
    """Lower and upper edge of a histogram bin (years for dates)."""
    if kind == "year":
        return float(key), float(key + 1)
    if key == 0:
        return 0.0, 0.0
    k = abs(key) - 1000
    lo, hi = 10 ** (k / _LOG_BINS_PER_DECADE), 10 ** ((k + 1) / _LOG_BINS_PER_DECADE)
    if k == _MIN_LOG_BIN:
        lo = 0.0
    return (lo, hi) if key > 0 else (-hi, -lo)


def _add_to_histogram(hist: dict[int, int], keys: np.ndarray, weights: np.ndarray) -> None:
    if len(keys) == 0:
        return
    # bin keys span a few thousand at most (signed log bins, years): a bincount over the
    # span is cheaper than sorting the keys
    low = int(keys.min())
    sums = np.bincount(np.asarray(keys, dtype=np.int64) - low, weights=weights)
    for offset in np.flatnonzero(sums).tolist():
        hist[low + offset] = hist.get(low + offset, 0) + int(sums[offset])
