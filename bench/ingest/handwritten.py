"""The hand-written sketches that DataSketches replaced, kept here only as the baseline
that bench/ingest measures the library against in the same run."""

from __future__ import annotations

import heapq
from operator import itemgetter

import numpy as np
import pyarrow as pa


class TopCounter:
    """The profiles' top-value counter before the frequent-items sketch: at most `size`
    new values a batch, pruned back to `size` entries when it holds twice as many. Its
    counts carry no error bound once it prunes."""

    max_error = None  # unknown

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
        if len(self.counts) > 2 * self.size:
            self.exact = False
            self.counts = dict(heapq.nlargest(self.size, self.counts.items(), key=itemgetter(1)))

    def top(self, n: int) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
