"""The profile sketches alone, hand-written against Apache DataSketches, on the very
values that ingest profiles: each batch's distinct values of every column, with their
counts and hashes, gathered once from the benchmark's input files.

Every variant is fed the same values in the same order, `PASSES` times per round (a
fresh sketch each pass), the variants in turn; CPU seconds of this process per pass
count, since the machine is shared.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from datasketches import (
    cpc_sketch,
    frequent_items_error_type,
    hll_sketch,
    kll_doubles_sketch,
    tgt_hll_type,
)

from bench.ingest.handwritten import TopCounter
from cms_pipeline.config import load_settings
from cms_pipeline.profiling.conformance import NUMERIC_TYPES, conformance
from cms_pipeline.profiling.histograms import _add_to_histogram, numeric_bins
from cms_pipeline.profiling.profilers import ColumnProfiler, Profiler
from cms_pipeline.profiling.sketches import FrequentValues, KmvSketch

BLOCK = 16 << 20  # ingest parses 16 MiB blocks
PASSES = 10  # one pass takes milliseconds: too short to time alone
LG_K = 13  # 8192 buckets: HLL's standard error 1.04/sqrt(8192) = 1.15 %, like KMV's 1.1 %

# one profiled batch of one column: (column, distinct values, counts, hashes, numbers,
# weights of the numbers); numbers only for numeric columns
Fed = tuple[str, pa.Array, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


def gather(src: Path) -> list[Fed]:
    """What `ColumnProfiler.add_values` receives when the input files are profiled."""
    fed: list[Fed] = []
    sources = load_settings().sources.values()
    original = ColumnProfiler.add_values
    table = [""]  # the table of the file being profiled

    def record(self, values, counts, hashes):
        numbers = weights = None
        if self.spec.type in NUMERIC_TYPES:
            _, parses, typed = conformance(self.spec, values)
            numbers = typed.to_numpy(zero_copy_only=False).astype(np.float64)
            weights = counts[parses]
        fed.append((f"{table[0]}.{self.spec.name}", values, counts, hashes, numbers, weights))

    ColumnProfiler.add_values = record
    try:
        for path in sorted(src.glob("*.csv")):
            contract = next(c for c in sources if re.search(c.file_pattern, path.name))
            table[0] = contract.table
            names = path.open().readline().strip().replace('"', "").split(",")
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=True
                ),
            )
            profiler = Profiler(contract, key_columns=[])
            for batch in reader:
                profiler.update(batch)
    finally:
        ColumnProfiler.add_values = original
    return fed


# ------------------------------------------------------------------ the variants


def _per_column(fed: list[Fed], make: Callable, feed: Callable) -> dict:
    states: dict = {}
    for column, *rest in fed:
        if column not in states:
            states[column] = make()
        feed(states[column], *rest)
    return states


def _hashes_one_by_one(sketch, values, counts, hashes, *_) -> None:
    update = sketch.update
    for h in hashes.view(np.int64).tolist():
        update(h)


def _histogram(state, values, counts, hashes, numbers, weights) -> None:
    if numbers is not None and len(numbers):
        _add_to_histogram(state, numeric_bins(numbers), weights)


def _kll(sketch, values, counts, hashes, numbers, weights) -> None:
    if numbers is not None and len(numbers):
        sketch.update(np.repeat(numbers, weights))  # KLL takes no weights: one item a row


VARIANTS: dict[str, tuple[str, Callable, Callable]] = {
    "KMV k=8192 (hand-written, kept)": (
        "distinct",
        lambda: KmvSketch(8192),
        lambda s, values, counts, hashes, *_: s.update(hashes),
    ),
    f"HLL_8 lg_k={LG_K} (DataSketches)": (
        "distinct",
        lambda: hll_sketch(LG_K, tgt_hll_type.HLL_8),
        _hashes_one_by_one,
    ),
    f"CPC lg_k={LG_K} (DataSketches)": ("distinct", lambda: cpc_sketch(LG_K), _hashes_one_by_one),
    "top-value counter (hand-written, replaced)": (
        "top values",
        lambda: TopCounter(256),
        lambda s, values, counts, *_: s.update(values, counts),
    ),
    "frequent_strings_sketch (DataSketches, used)": (
        "top values",
        lambda: FrequentValues(256),
        lambda s, values, counts, *_: s.update(values, counts),
    ),
    "frequent_strings_sketch fed every value (not used)": (
        "top values",
        lambda: FrequentValues(batch_limit=2**62, lg_max_map_size=10),
        lambda s, values, counts, *_: s.update(values, counts),
    ),
    "fixed-bin histogram (hand-written, kept; no quantiles)": ("distribution", dict, _histogram),
    "KLL doubles k=200 (DataSketches, not added)": (
        "distribution",
        lambda: kll_doubles_sketch(200),
        _kll,
    ),
}


def _accuracy(fed: list[Fed], states: dict[str, dict]) -> dict[str, dict]:
    """Worst relative error of each distinct-count variant against the exact count, and
    the top-value sketch's largest bound."""
    exact: dict[str, set] = {}
    for column, _, _, hashes, *_ in fed:
        exact.setdefault(column, set()).update(hashes.tolist())
    out: dict[str, dict] = {}
    for name, by_column in states.items():
        kind = VARIANTS[name][0]
        if kind == "distinct":
            errors = [
                abs(_estimate(sketch) - len(exact[c])) / len(exact[c])
                for c, sketch in by_column.items()
            ]
            out[name] = {"worst_relative_error": round(max(errors), 5)}
        elif isinstance(next(iter(by_column.values())), FrequentValues):
            bounds = {c: s.max_error for c, s in by_column.items()}
            worst = max(bounds, key=bounds.get)
            rows = next(iter(by_column.values())).sketch
            out[name] = {
                "columns_with_exact_counts": sum(b == 0 for b in bounds.values()),
                "columns": len(bounds),
                "largest_bound": {"column": worst, "rows": bounds[worst]},
                "error_type": str(frequent_items_error_type.NO_FALSE_NEGATIVES),
                "sketch_epsilon": rows.epsilon,
            }
    return out


def _estimate(sketch) -> float:
    return sketch.estimate() if isinstance(sketch, KmvSketch) else sketch.get_estimate()


def compare(src: Path, rounds: int) -> dict:
    """CPU seconds of each variant per round (variants in turn), and their accuracy."""
    fed = gather(src)
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    states: dict[str, dict] = {}
    for _ in range(rounds):
        for name, (_, make, feed) in VARIANTS.items():
            start = time.process_time()
            for _ in range(PASSES):
                states[name] = _per_column(fed, make, feed)
            seconds[name].append(round((time.process_time() - start) / PASSES, 4))
    rows = [
        {
            "sketch": name,
            "kind": kind,
            "cpu_seconds": min(seconds[name]),
            "rounds_cpu_seconds": seconds[name],
        }
        for name, (kind, _, _) in VARIANTS.items()
    ]
    best = {r["sketch"]: r["cpu_seconds"] for r in rows}
    names = list(VARIANTS)
    pairs = [(1, 0), (2, 0), (4, 3), (5, 3), (7, 6)]  # DataSketches, hand-written
    # CPU time of DataSketches over the hand-written sketch: > 1 is slower. The least
    # rounds' ratio, and the median of each round's ratio (a round's sketches ran
    # back to back, so a burst of load hits both)
    ratios = {
        f"{names[a]} / {names[b]}": round(best[names[a]] / best[names[b]], 2) for a, b in pairs
    }
    median_ratios = {
        f"{names[a]} / {names[b]}": round(
            statistics.median(
                x / y for x, y in zip(seconds[names[a]], seconds[names[b]], strict=True)
            ),
            2,
        )
        for a, b in pairs
    }
    return {
        "median_round_ratios": median_ratios,
        "passes": PASSES,
        "values_fed": sum(len(f[1]) for f in fed),
        "batches_times_columns": len(fed),
        "results": rows,
        "ratios": ratios,
        "accuracy": _accuracy(fed, states),
    }
