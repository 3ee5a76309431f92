"""Drift of scores: the population stability index (PSI) of a scoring run against a
reference (the previous run, the champion's held-out predictions). Pure functions.

PSI = sum over bins of (a - e) * ln(a / e), with e and a the shares of the reference and
of the new scores in each bin. Bins are the reference's deciles, so each holds about a
tenth of it; an empty share is floored at EPSILON (one empty bin does not make PSI
infinite). Usual reading: below 0.1 stable, 0.1 to 0.25 moderate shift, above 0.25 a
major shift (worth a look before acting on the scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BINS = 10
EPSILON = 1e-4
MODERATE, MAJOR = 0.1, 0.25


@dataclass(frozen=True)
class Reference:
    """A reference distribution binned once: its inner bin edges (its deciles), its share
    of rows in each bin, and its number of finite values."""

    edges: np.ndarray
    shares: np.ndarray
    rows: int


def reference_of(values, bins: int = BINS) -> Reference:
    """`values` (1-d numbers; NaN and None ignored) as a Reference."""
    ref = _finite(values)
    edges = bin_edges(ref, bins)
    return Reference(edges, shares(bin_counts(ref, edges)), int(ref.size))


def psi(reference, new, bins: int = BINS) -> float:
    """PSI of `new` against `reference` (1-d arrays of numbers; NaN ignored)."""
    ref = reference_of(reference, bins)
    return psi_of_counts(ref, bin_counts(_finite(new), ref.edges))


def bin_edges(reference, bins: int = BINS) -> np.ndarray:
    """The inner bin edges: the reference's quantiles (deciles by default), once each."""
    ref = _finite(reference)
    if ref.size == 0:
        raise ValueError("PSI needs values on both sides (reference 0)")
    return np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of the finite `values` fall in each bin of `edges` (see `_bins`)."""
    return np.bincount(_bins(values, edges), minlength=edges.size + 1)


def psi_of_counts(reference: Reference, counts) -> float:
    """PSI of new values given as their count in each bin of the reference's edges (as
    `_bins` puts them: counted here, or by Spark next to the data)."""
    counts = np.asarray(counts, dtype=float)
    if counts.sum() == 0:
        raise ValueError("PSI needs values on both sides (new 0)")
    actual = shares(counts)
    return float(np.sum((actual - reference.shares) * np.log(actual / reference.shares)))


def level(value: float) -> str:
    """'stable', 'moderate' or 'major' (module docstring)."""
    if value < MODERATE:
        return "stable"
    return "moderate" if value < MAJOR else "major"


def compare(reference, new, name: str) -> dict:
    """One comparison for the run summary: what against what, PSI and its reading."""
    ref = reference_of(reference)
    return compare_counts(ref, bin_counts(_finite(new), ref.edges), name)


def compare_counts(reference: Reference, counts, name: str) -> dict:
    """`compare` of new values given as their counts in the bins of the reference."""
    value = psi_of_counts(reference, counts)
    return {
        "against": name,
        "psi": round(value, 6),
        "level": level(value),
        "reference_rows": reference.rows,
        "rows": int(np.sum(counts)),
    }


def has_values(values) -> bool:
    """Some finite number among `values`: PSI can be measured on it."""
    return _finite(values).size > 0


def _finite(values) -> np.ndarray:
    """The finite numbers among `values` (floats, ints, Decimals; None, NaN and pd.NA
    dropped)."""
    # a float array stays float (no per-value conversion on a scoring run's scores)
    series = values if isinstance(values, pd.Series) else pd.Series(np.ravel(values))
    arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return arr[np.isfinite(arr)]


def _bins(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    # bin i holds edges[i-1] < v <= edges[i]; values beyond the reference's range go to
    # the first or last bin
    return np.searchsorted(inner_edges, values, side="left")


def shares(counts: np.ndarray) -> np.ndarray:
    """Each bin's share of the rows, floored at EPSILON (module docstring)."""
    return np.maximum(counts / counts.sum(), EPSILON)
