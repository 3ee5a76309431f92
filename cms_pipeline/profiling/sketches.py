"""Bounded per-column state of a profile: a distinct-count sketch, a top-value counter
and running moments, each updated once per batch.

Approximations, and how far off they can be:
- `distinct_estimate`: a KMV sketch (k smallest 64-bit hashes). Exact while a column
  has fewer than `sketch_size` distinct values; above that its relative standard error
  is 1/sqrt(k - 2) (1.1 % for k = 8192), so 3 standard errors is 3.3 %.
- `top_values`: a counter pruned to `counter_size` entries; `top_values_exact` says
  whether anything was pruned (then counts are lower bounds).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import pyarrow as pa


class KmvSketch:
    """Distinct count from the k smallest distinct hashes seen (exact below k)."""

    def __init__(self, k: int = 8192) -> None:
        self.k = k
        self.hashes = np.empty(0, dtype=np.uint64)

    def update(self, hashes: np.ndarray) -> None:
        if len(self.hashes) == self.k:
            hashes = hashes[hashes < self.hashes[-1]]
        if len(hashes) > self.k:  # only the k smallest can stay
            hashes = np.partition(hashes, self.k - 1)[: self.k]
        if len(hashes) == 0:
            return
        merged = np.sort(np.concatenate([self.hashes, hashes]))
        keep = np.ones(len(merged), dtype=bool)
        keep[1:] = merged[1:] != merged[:-1]
        self.hashes = merged[keep][: self.k]

    @property
    def exact(self) -> bool:
        return len(self.hashes) < self.k

    def estimate(self) -> int:
        if self.exact:
            return len(self.hashes)
        kth = (float(self.hashes[-1]) + 1.0) / 2.0**64
        return round((self.k - 1) / kth)

    @property
    def relative_error(self) -> float:
        return 0.0 if self.exact else 1.0 / math.sqrt(self.k - 2)


class TopCounter:
    """Counts of the most frequent values: at most `size` new values a batch, the
    counter pruned back to `size` entries when it holds twice as many."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.counts: dict[str, int] = {}
        self.exact = True

    def update(self, values: pa.Array, counts: np.ndarray) -> None:
        if len(counts) > self.size:
            keep = np.argpartition(counts, -self.size)[-self.size :]
            values, counts = values.take(pa.array(keep)), counts[keep]
            self.exact = False
        get = self.counts.get
        for value, n in zip(values.to_pylist(), counts.tolist(), strict=True):
            self.counts[value] = get(value, 0) + n
        # pruned when twice the size, not after every batch: sorting a high-cardinality
        # column's counter at each batch cost more than all its other profiling
        if len(self.counts) > 2 * self.size:
            self.exact = False
            self.counts = dict(heapq.nlargest(self.size, self.counts.items(), key=itemgetter(1)))

    def top(self, n: int) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass
class _Moments:
    """Weighted count, mean and sum of squared deviations, merged per batch (Chan et al.)."""

    n: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: np.ndarray, weights: np.ndarray) -> None:
        n_b = float(weights.sum())
        if n_b == 0:
            return
        mean_b = float(np.dot(values, weights) / n_b)
        m2_b = float(np.dot(weights, (values - mean_b) ** 2))
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else None
