"""Bounded per-column state of a profile: a distinct-count sketch, a top-value sketch
and running moments, each updated once per batch.

Approximations, and how far off they can be:
- `distinct_estimate`: a KMV sketch (k smallest 64-bit hashes). Exact while a column
  has fewer than `sketch_size` distinct values; above that its relative standard error
  is 1/sqrt(k - 2) (1.1 % for k = 8192), so 3 standard errors is 3.3 %. Kept over
  Apache DataSketches' HLL and CPC: their Python API takes one call per value (no array
  update), and on the ingest benchmark's values they cost 3.5 to 3.7 and 8.5 to 9 times
  the CPU of this sketch (bench/results/ingest.md, "The profile sketches alone").
- `top_values`: DataSketches' frequent-items sketch, within about 10 % of the CPU of the
  hand-written counter it replaced there (a millisecond or two per 843k rows; the
  whole ingest shows no difference), whose counts had no bound once it pruned. Each
  count is a lower bound of the true count, and `top_values_max_error` says by how many
  rows it may fall short (0: the counts are exact).

No quantile sketch: the fixed-bin histogram (`histograms`) describes numeric columns,
with the same edges in every batch for the PSI and KS of batch differences; a KLL
sketch would be an addition, measured at 44 to 52 times the histogram's CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from datasketches import frequent_items_error_type, frequent_strings_sketch


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


class FrequentValues:
    """The most frequent values of a column and their counts, with a bound on how far
    off each count is: Apache DataSketches' frequent-items sketch.

    Each batch's distinct values are fed weighted by their counts, at most `batch_limit`
    of them (the batch's most frequent): feeding every value of the high-cardinality
    columns cost 3 times the CPU on the ingest benchmark. A count is a lower bound of
    the value's true count, and the true count exceeds it by at most `max_error`: the
    sketch's own maximum error (at most 3.5 / 2^lg_max_map_size of the rows fed) plus,
    for every batch that left values out, the count of the most frequent one it left out.
    """

    def __init__(self, batch_limit: int = 256, lg_max_map_size: int | None = None) -> None:
        self.batch_limit = batch_limit
        # the sketch holds 3/4 of its map: room for three batches' values
        lg = lg_max_map_size or max(3, (4 * batch_limit - 1).bit_length())
        self.sketch = frequent_strings_sketch(lg)
        self.left_out = 0  # sum over batches of the largest count of a value left out

    def update(self, values: pa.Array, counts: np.ndarray) -> None:
        if len(counts) > self.batch_limit:
            order = np.argpartition(counts, -(self.batch_limit + 1))
            self.left_out += int(counts[order[-(self.batch_limit + 1)]])
            keep = order[-self.batch_limit :]
            values, counts = values.take(pa.array(keep)), counts[keep]
        update = self.sketch.update
        for value, n in zip(values.to_pylist(), counts.tolist(), strict=True):
            update(value, n)

    @property
    def max_error(self) -> int:
        """Rows by which any reported count may fall short of the true count (0: exact)."""
        # the sketch's maximum error is the same for every value: upper minus lower bound
        offset = self.sketch.get_upper_bound("") - self.sketch.get_lower_bound("")
        return int(offset) + self.left_out

    @property
    def exact(self) -> bool:
        return self.max_error == 0

    def top(self, n: int) -> list[tuple[str, int]]:
        """The n values with the largest counts, each with its guaranteed lower bound."""
        rows = self.sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
        return sorted(
            ((item, int(lower)) for item, _, lower, _ in rows), key=lambda kv: (-kv[1], kv[0])
        )[:n]


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
