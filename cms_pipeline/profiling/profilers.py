"""The streaming profilers: `Profiler` for one file's batches, `ColumnProfiler` per
column, `KeyTracker` for exact duplicate keys, and `KeySet`, the keys of a delivery or a
table state.

A `Profiler` is fed the pyarrow batches of one file (all source columns as text) and
keeps per column only bounded state: counters, a distinct-count sketch, a frequent-items
sketch for the top values, running moments and a fixed-bin histogram. Work per batch is
done by pyarrow.compute on the batch's distinct values, weighted by their counts, so a
flag column with two values costs almost nothing whatever the batch size.

Key duplicates (`KeyTracker`) are exact up to 64-bit hash collisions: the chance of
any false duplicate among n keys is about n^2 / 2^65 (3e-8 for 1 million keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import ColumnSpec, SourceContract
from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS, LINEAGE_COLUMNS
from cms_pipeline.profiling.conformance import NUMERIC_TYPES, TYPED, conformance
from cms_pipeline.profiling.hashing import hash_keys, hash_values
from cms_pipeline.profiling.histograms import _add_to_histogram, numeric_bins
from cms_pipeline.profiling.records import BatchProfile, ColumnProfile, KeyCheck
from cms_pipeline.profiling.sketches import FrequentValues, KmvSketch, _Moments

# bronze columns that are not source data: never profiled as such
NOT_PROFILED = frozenset(LINEAGE_COLUMNS) | frozenset(FILE_ATTRIBUTE_COLUMNS)


class ColumnProfiler:
    """Bounded state of one column, fed one text array per batch."""

    def __init__(
        self,
        spec: ColumnSpec,
        *,
        sketch_size: int = 8192,
        counter_size: int = 256,
        top_k: int = 10,
        max_examples: int = 5,
    ) -> None:
        self.spec = spec
        self.top_k = top_k
        self.max_examples = max_examples
        self.count = 0
        self.nulls = 0
        self.conforming = 0
        self.examples: list[str] = []
        self.sketch = KmvSketch(sketch_size)
        self.top = FrequentValues(counter_size)
        self.moments = _Moments()
        self.histogram: dict[int, int] = {}
        self.min_text: str | None = None
        self.max_text: str | None = None
        self.min_value: Any = None
        self.max_value: Any = None

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        distinct = self.count_values(array)
        if distinct is not None:
            self.add_values(*distinct, hash_values(distinct[0]))

    def count_values(self, array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray] | None:
        """Count rows and nulls of a batch's column; its distinct present values and how
        often each occurs (None when all are null). A dictionary-encoded column is
        counted from its indices, without hashing its values again."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        self.count += len(array)
        self.nulls += array.null_count
        if len(array) == array.null_count:
            return None
        if pa.types.is_dictionary(array.type):
            indices = array.indices.drop_null() if array.null_count else array.indices
            counts = np.bincount(indices.to_numpy(), minlength=len(array.dictionary))
            values = array.dictionary
            if not counts.all():  # values no row points at
                values, counts = values.filter(pa.array(counts > 0)), counts[counts > 0]
        else:
            present = array.drop_null() if array.null_count else array
            vc = pc.value_counts(present)
            values, counts = vc.field("values"), vc.field("counts").to_numpy()
        if values.type != pa.string():
            values = values.cast(pa.string())
        return values, counts.astype(np.int64)

    def add_values(self, values: pa.Array, counts: np.ndarray, hashes: np.ndarray) -> None:
        """Fold in a batch's distinct values, their counts and their hashes: every check
        below runs on these, weighted by the counts."""
        self.sketch.update(hashes)  # distinct values: distinct hashes
        self.top.update(values, counts)
        self._update_text_range(values)

        ok, parses, typed = conformance(self.spec, values)
        self.conforming += int(counts[ok].sum())
        if len(self.examples) < self.max_examples and not ok.all():
            for value in values.filter(pa.array(~ok))[: self.max_examples].to_pylist():
                if value not in self.examples and len(self.examples) < self.max_examples:
                    self.examples.append(value)
        if typed is not None and len(typed):
            self._update_typed(typed, counts[parses])

    def _update_text_range(self, values: pa.Array) -> None:
        mm = pc.min_max(values)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        self.min_text = lo if self.min_text is None else min(self.min_text, lo)
        self.max_text = hi if self.max_text is None else max(self.max_text, hi)

    def _update_typed(self, typed: pa.Array, weights: np.ndarray) -> None:
        mm = pc.min_max(typed)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        self.min_value = lo if self.min_value is None else min(self.min_value, lo)
        self.max_value = hi if self.max_value is None else max(self.max_value, hi)
        if self.spec.type in NUMERIC_TYPES:
            numbers = typed.to_numpy(zero_copy_only=False).astype(np.float64)
            self.moments.update(numbers, weights.astype(np.float64))
            _add_to_histogram(self.histogram, numeric_bins(numbers), weights)
        else:  # date: histogram by year
            years = pc.year(typed).to_numpy(zero_copy_only=False)
            _add_to_histogram(self.histogram, years, weights)

    def result(self) -> ColumnProfile:
        non_null = self.count - self.nulls
        typed = self.spec.type in TYPED
        min_value, max_value = self.min_value, self.max_value
        if isinstance(min_value, dt.date):
            min_value, max_value = min_value.isoformat(), max_value.isoformat()
        numeric = self.spec.type in NUMERIC_TYPES and self.moments.n > 0
        return ColumnProfile(
            column=self.spec.name,
            logical_type=self.spec.type,
            nullable=self.spec.nullable,
            count=self.count,
            nulls=self.nulls,
            null_rate=self.nulls / self.count if self.count else 0.0,
            distinct_estimate=self.sketch.estimate(),
            distinct_exact=self.sketch.exact,
            distinct_relative_error=self.sketch.relative_error,
            min_text=self.min_text,
            max_text=self.max_text,
            min_value=min_value,
            max_value=max_value,
            mean=self.moments.mean if numeric else None,
            std=self.moments.std if numeric else None,
            conforming=self.conforming,
            nonconforming=non_null - self.conforming,
            conformance_rate=self.conforming / non_null if non_null else None,
            nonconforming_examples=self.examples,
            top_values=self.top.top(self.top_k),
            top_values_exact=self.top.exact,
            top_values_max_error=self.top.max_error,
            histogram_kind=("log10" if self.spec.type in NUMERIC_TYPES else "year")
            if typed
            else None,
            histogram=dict(self.histogram),
        )


class KeyTracker:
    """Exact duplicate-key count of one file: a 64-bit hash per row, kept in numpy chunks.

    Memory is 16 bytes per row (hash and line), freed when the file is done.
    """

    def __init__(self, key_columns: list[str], max_lines: int = 10) -> None:
        self.key_columns = list(key_columns)
        self.max_lines = max_lines
        self._hashes: list[np.ndarray] = []
        self._lines: list[np.ndarray] = []
        self._sorted: np.ndarray | None = None  # the check and the key set share one sort
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        n = batch.num_rows
        self._hashes.append(hash_keys(batch, self.key_columns))
        self._sorted = None
        if "_source_line" in batch.schema.names:
            lines = batch.column("_source_line").to_numpy(zero_copy_only=False)
        else:
            lines = np.arange(self.rows + 1, self.rows + n + 1)
        self._lines.append(np.asarray(lines, dtype=np.int64))
        self.rows += n

    def hashes(self) -> np.ndarray:
        return np.concatenate(self._hashes) if self._hashes else np.empty(0, np.uint64)

    def sorted_hashes(self) -> np.ndarray:
        if self._sorted is None:
            self._sorted = np.sort(self.hashes())
        return self._sorted

    def key_set(self) -> KeySet:
        sorted_h = self.sorted_hashes()
        first = np.ones(len(sorted_h), dtype=bool)
        first[1:] = sorted_h[1:] != sorted_h[:-1]
        return KeySet(sorted_h[first], rows=self.rows, key_columns=tuple(self.key_columns))

    def result(self) -> KeyCheck:
        hashes = self.hashes()
        lines = np.concatenate(self._lines) if self._lines else np.empty(0, np.int64)
        sorted_h = self.sorted_hashes()
        repeated = sorted_h[1:][sorted_h[1:] == sorted_h[:-1]]
        dup_lines = np.empty(0, np.int64)
        if len(repeated):  # only the rows of repeated keys need a stable order
            rows = np.flatnonzero(np.isin(hashes, repeated))
            order = np.argsort(hashes[rows], kind="stable")  # the first occurrence first
            h = hashes[rows][order]
            again = np.zeros(len(h), dtype=bool)
            again[1:] = h[1:] == h[:-1]
            dup_lines = np.sort(lines[rows[order[again]]])
        return KeyCheck(
            key_columns=self.key_columns,
            rows=self.rows,
            distinct_keys=int(self.rows - len(repeated)),
            duplicate_rows=len(repeated),
            duplicate_lines=dup_lines[: self.max_lines].tolist(),
        )


@dataclass
class KeySet:
    """Sorted distinct 64-bit key hashes of a delivery or a table state."""

    hashes: np.ndarray
    rows: int = 0
    key_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def from_batches(
        cls, batches: Iterable[pa.RecordBatch | pa.Table], key_columns: list[str]
    ) -> KeySet:
        tracker = KeyTracker(key_columns)
        for batch in batches:
            tracker.update(batch)
        return tracker.key_set()

    def minus(self, other: KeySet) -> int:
        """How many keys of this set are not in `other` (both hashed on the same columns)."""
        if self.key_columns and other.key_columns and self.key_columns != other.key_columns:
            raise ValueError(
                f"cannot compare keys on {list(self.key_columns)} with keys on "
                f"{list(other.key_columns)}: build both key sets with the same key columns"
            )
        return int(len(self.hashes) - np.isin(self.hashes, other.hashes, assume_unique=True).sum())


class Profiler:
    """Profile of one file's bronze batches; `update` per batch, `result` at the end.

    Profiles the source columns present in the batches (lineage columns are skipped);
    a column the contract does not know is profiled as text. With `key_columns`
    (default: the contract's keys, lineage columns such as `year` included), duplicate
    keys are counted exactly.
    """

    def __init__(
        self,
        contract: SourceContract,
        *,
        source_file: str | None = None,
        batch_id: str | None = None,
        key_columns: list[str] | None = None,
        sketch_size: int = 8192,
        counter_size: int = 256,
        top_k: int = 10,
    ) -> None:
        self.contract = contract
        self.source_file = source_file
        self.batch_id = batch_id
        self.specs = {c.name: c for c in contract.columns}
        self.options = dict(sketch_size=sketch_size, counter_size=counter_size, top_k=top_k)
        # every contract column is reported, even when no batch (or no row) carries it
        self.columns = {
            name: ColumnProfiler(spec, **self.options) for name, spec in self.specs.items()
        }
        keys = contract.keys if key_columns is None else key_columns
        self.keys = KeyTracker(keys) if keys else None
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        present = set(batch.schema.names)
        for name, col in self.columns.items():
            if name not in present:  # a column the file lacks is null in bronze
                col.count += batch.num_rows
                col.nulls += batch.num_rows
        found = []
        for name in batch.schema.names:
            if name in NOT_PROFILED:
                continue
            if name not in self.columns:
                spec = self.specs.get(name) or ColumnSpec(name=name)
                self.columns[name] = ColumnProfiler(spec, **self.options)
                if self.rows:  # a column that appears late was null before
                    self.columns[name].count = self.columns[name].nulls = self.rows
            distinct = self.columns[name].count_values(batch.column(name))
            if distinct is not None:
                found.append((self.columns[name], *distinct))
        # one hash call for the distinct values of every column (a call per column
        # costs more than the hashing of a flag's two values)
        hashes = hash_values(pa.concat_arrays([values for _, values, _ in found])) if found else ()
        start = 0
        for col, values, counts in found:
            col.add_values(values, counts, hashes[start : start + len(values)])
            start += len(values)
        if self.keys is not None:
            missing = [k for k in self.keys.key_columns if k not in batch.schema.names]
            if missing:
                raise KeyError(
                    f"{self.source_file or self.contract.table}: key column(s) {missing} "
                    "missing from the batch; pass them (lineage columns included) or "
                    "key_columns=[] to skip the key check"
                )
            self.keys.update(batch)
        self.rows += batch.num_rows

    def result(self) -> BatchProfile:
        order = {name: i for i, name in enumerate(self.specs)}
        cols = sorted(self.columns.values(), key=lambda c: order.get(c.spec.name, len(order)))
        return BatchProfile(
            table=self.contract.table,
            source_file=self.source_file,
            batch_id=self.batch_id,
            rows=self.rows,
            columns=[c.result() for c in cols],
            keys=None if self.keys is None else self.keys.result(),
        )


def profile_batches(
    batches: Iterable[pa.RecordBatch | pa.Table], contract: SourceContract, **options: Any
) -> BatchProfile:
    """Profile every batch of an iterable (one file, or a table state) in one pass."""
    profiler = Profiler(contract, **options)
    for batch in batches:
        profiler.update(batch)
    return profiler.result()
