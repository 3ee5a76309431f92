"""Streaming profiles of bronze batches, and the contract's expectations checked on them.

A `Profiler` is fed the pyarrow batches of one file (all source columns as text) and
keeps per column only bounded state: counters, a distinct-count sketch, a bounded
top-value counter, running moments and a fixed-bin histogram. Work per batch is done
by pyarrow.compute on the batch's distinct values, weighted by their counts, so a
flag column with two values costs almost nothing whatever the batch size.

Approximations, and how far off they can be:
- `distinct_estimate`: a KMV sketch (k smallest 64-bit hashes). Exact while a column
  has fewer than `sketch_size` distinct values; above that its relative standard error
  is 1/sqrt(k - 2) (1.1 % for k = 8192), so 3 standard errors is 3.3 %.
- `top_values`: a counter pruned to `counter_size` entries; `top_values_exact` says
  whether anything was pruned (then counts are lower bounds).
- Key duplicates (`KeyTracker`) are exact up to 64-bit hash collisions: the chance
  of any false duplicate among n keys is about n^2 / 2^65 (3e-8 for 1 million keys).

Hashes are computed with numpy from the Arrow string buffers (pyarrow has no hash
kernel): a polynomial over the bytes mod 2^64, finished by splitmix64's mixer. They are
stable across processes, which is more than the sketches and key sets need.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import ColumnSpec, SourceContract
from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS, LINEAGE_COLUMNS

# bronze columns that are not source data: never profiled as such
NOT_PROFILED = frozenset(LINEAGE_COLUMNS) | frozenset(FILE_ATTRIBUTE_COLUMNS)

# What text a logical type accepts (before the type's own parse check).
TYPE_PATTERNS = {
    "id": r"^[0-9A-F]{16}$",
    "integer": r"^-?\d{1,18}$",  # 18 digits always fit int64
    "decimal": r"^-?(\d+(\.\d*)?|\.\d+)$",
    "date": r"^\d{8}$",
}
NUMERIC_TYPES = ("integer", "decimal")
TYPED = ("integer", "decimal", "date")

_HASH_SEED = 0x5EED
_LOG_BINS_PER_DECADE = 4  # numeric histogram: quarter-decade bins, same edges for every batch
_MIN_LOG_BIN = -8  # |x| < 0.01 falls into the lowest bin


_POLY = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime: odd, so no bit is lost
_NULL_HASH = np.uint64(0x6E756C6C6E756C6C)
# _LOW_BYTES[r]: the low r bytes of a word (the rest of a value's last word is not its own)
_LOW_BYTES = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [2**64 - 1], dtype=np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def hash_values(array: pa.Array) -> np.ndarray:
    """64-bit hash of each value of a string array (a null hashes like the empty text).

    Each value is read as 8-byte words, straight from the Arrow data buffer: word k of
    every value that has one is gathered in one numpy step, so the cost follows the
    number of words, not of values times Python calls."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())  # int64 offsets, one code path
    n = len(array)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset : array.offset + n + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[first:last] if last > first else []
    starts, lengths = offsets[:-1] - first, np.diff(offsets)
    hashes = _mix(lengths.astype(np.uint64) ^ np.uint64(_HASH_SEED))
    width = int(lengths.max(initial=0))
    if n and width == lengths.min() and width <= 64:  # ids: one length, a matrix of words
        matrix = np.zeros((n, -(-width // 8) * 8), dtype=np.uint8)
        matrix[:, :width] = np.asarray(data).reshape(n, width)
        for words in matrix.view("<u8").T:
            hashes = _mix(hashes * _POLY + words)
        return hashes
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])  # a last word may overrun
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)
    rows = np.arange(n)
    for k in range(-(-width // 8)):
        rows = rows[lengths[rows] > 8 * k]
        words = np.ascontiguousarray(windows[starts[rows] + 8 * k]).view("<u8").ravel()
        words &= _LOW_BYTES[np.minimum(lengths[rows] - 8 * k, 8)]
        hashes[rows] = _mix(hashes[rows] * _POLY + words)
    return hashes


def hash_keys(batch: pa.RecordBatch | pa.Table, key_columns: list[str]) -> np.ndarray:
    """64-bit hash of each row's key tuple (nulls included, as null)."""
    combined = np.full(batch.num_rows, np.uint64(_HASH_SEED), dtype=np.uint64)
    for name in key_columns:
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        hashes = hash_values(column)
        if column.null_count:
            hashes[~column.is_valid().to_numpy(zero_copy_only=False)] = _NULL_HASH
        combined = _mix(combined * _POLY + hashes)
    return combined


# ---------------------------------------------------------------- sketches


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


# ---------------------------------------------------------------- histograms


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


# ---------------------------------------------------------------- typed parsing


def conformance(
    spec: ColumnSpec, values: pa.Array
) -> tuple[np.ndarray, np.ndarray, pa.Array | None]:
    """Check text values (no nulls) against a column spec.

    Returns (conforms, parses, typed): `conforms` means the text has the shape of the
    logical type and parses as it (dates round-trip through YYYYMMDD, so 20080231 fails),
    is in the domain and matches the pattern; `parses` only the type part; `typed` holds
    the parsed values where `parses` is true (None for id and string).
    """
    ok = np.ones(len(values), dtype=bool)
    typed = None
    type_pattern = TYPE_PATTERNS.get(spec.type)
    if type_pattern is not None:
        ok &= pc.match_substring_regex(values, type_pattern).to_numpy(zero_copy_only=False)
    if spec.type in TYPED:
        shaped = values.filter(pa.array(ok))
        if spec.type == "integer":
            parsed = pc.cast(shaped, pa.int64())
        elif spec.type == "decimal":
            parsed = pc.cast(shaped, pa.float64())
        else:
            ts = pc.strptime(shaped, format="%Y%m%d", unit="s", error_is_null=True)
            # strptime rolls 20080231 over to March 2: a real date keeps its day
            day = pc.cast(pc.utf8_slice_codeunits(shaped, 6, 8), pa.int64())
            roundtrip = pc.fill_null(pc.equal(pc.day(ts), day), False)
            valid = roundtrip.to_numpy(zero_copy_only=False)
            ok[np.flatnonzero(ok)[~valid]] = False
            parsed = pc.cast(ts, pa.date32()).filter(roundtrip)
        typed = parsed
    parses = ok.copy()
    if spec.domain is not None:
        ok &= pc.is_in(values, pa.array(spec.domain)).to_numpy(zero_copy_only=False)
    if spec.pattern is not None:
        ok &= pc.match_substring_regex(values, spec.pattern).to_numpy(zero_copy_only=False)
    return ok, parses, typed


# ---------------------------------------------------------------- results


@dataclass
class ColumnProfile:
    column: str
    logical_type: str
    nullable: bool
    count: int
    nulls: int
    null_rate: float
    distinct_estimate: int
    distinct_exact: bool
    distinct_relative_error: float
    min_text: str | None
    max_text: str | None
    min_value: int | float | str | None  # typed; dates as ISO text
    max_value: int | float | str | None
    mean: float | None
    std: float | None
    conforming: int
    nonconforming: int
    conformance_rate: float | None  # of non-null values
    nonconforming_examples: list[str]
    top_values: list[tuple[str, int]]
    top_values_exact: bool
    histogram_kind: str | None  # "log10" (numeric) or "year" (date)
    histogram: dict[int, int] = field(default_factory=dict)

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    def to_dict(self) -> dict[str, Any]:
        # a shallow copy: asdict's deep copy cost more than the rest of the report
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["nonconforming_examples"] = list(self.nonconforming_examples)
        d["top_values"] = [[v, n] for v, n in self.top_values]
        d["histogram"] = [
            {"bin": k, "lo": lo, "hi": hi, "count": n}
            for k, n in sorted(self.histogram.items())
            for lo, hi in [bin_edges(self.histogram_kind or "log10", k)]
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        d = dict(d)
        d["top_values"] = [(v, int(n)) for v, n in d["top_values"]]
        d["histogram"] = {int(h["bin"]): int(h["count"]) for h in d["histogram"]}
        return cls(**d)


@dataclass
class KeyCheck:
    """Exact duplicate keys of one file (up to 64-bit hash collisions)."""

    key_columns: list[str]
    rows: int
    distinct_keys: int
    duplicate_rows: int  # rows whose key was already seen earlier in the file
    duplicate_lines: list[int]  # first few such lines (or row positions)


@dataclass
class BatchProfile:
    table: str
    source_file: str | None
    batch_id: str | None
    rows: int
    columns: list[ColumnProfile]
    keys: KeyCheck | None = None
    profiled_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    )

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.column == name:
                return col
        raise KeyError(f"{self.table}: no column {name!r} in the profile")

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source_file": self.source_file,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "profiled_at": self.profiled_at,
            "keys": None if self.keys is None else asdict(self.keys),
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatchProfile:
        return cls(
            table=d["table"],
            source_file=d.get("source_file"),
            batch_id=d.get("batch_id"),
            rows=int(d["rows"]),
            columns=[ColumnProfile.from_dict(c) for c in d["columns"]],
            keys=None if d.get("keys") is None else KeyCheck(**d["keys"]),
            profiled_at=d["profiled_at"],
        )

    def to_arrow(self) -> pa.Table:
        """One row per column, for the profiles Delta table (see PROFILE_ROW_SCHEMA)."""
        at = dt.datetime.fromisoformat(self.profiled_at)
        rows = []
        for position, c in enumerate(self.columns):
            d = c.to_dict()
            rows.append(
                {
                    "batch_id": self.batch_id,
                    "table": self.table,
                    "source_file": self.source_file,
                    "profiled_at": at,
                    "rows": self.rows,
                    "position": position,
                    **{k: d[k] for k in _SCALAR_FIELDS},
                    "min_value": None if c.min_value is None else str(c.min_value),
                    "max_value": None if c.max_value is None else str(c.max_value),
                    "top_values_json": json.dumps(d["top_values"]),
                    "histogram_json": json.dumps(d["histogram"]),
                    "nonconforming_examples_json": json.dumps(c.nonconforming_examples),
                }
            )
        return pa.Table.from_pylist(rows, schema=PROFILE_ROW_SCHEMA)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> BatchProfile:
        """Rebuild a profile from its `to_arrow()` rows (e.g. read back from Delta)."""
        rows = sorted(table.to_pylist(), key=lambda r: r["position"])
        if not rows:
            raise ValueError("no profile rows to rebuild a profile from")
        columns = []
        for r in rows:
            d = {k: r[k] for k in _SCALAR_FIELDS}
            d["min_value"] = _typed_from_text(r["logical_type"], r["min_value"])
            d["max_value"] = _typed_from_text(r["logical_type"], r["max_value"])
            d["top_values"] = json.loads(r["top_values_json"])
            d["histogram"] = json.loads(r["histogram_json"])
            d["nonconforming_examples"] = json.loads(r["nonconforming_examples_json"])
            columns.append(ColumnProfile.from_dict(d))
        first = rows[0]
        at = first["profiled_at"]
        return cls(
            table=first["table"],
            source_file=first["source_file"],
            batch_id=first["batch_id"],
            rows=first["rows"],
            columns=columns,
            profiled_at=at.isoformat(timespec="microseconds"),
        )


_SCALAR_FIELDS = (
    "column",
    "logical_type",
    "nullable",
    "count",
    "nulls",
    "null_rate",
    "distinct_estimate",
    "distinct_exact",
    "distinct_relative_error",
    "min_text",
    "max_text",
    "mean",
    "std",
    "conforming",
    "nonconforming",
    "conformance_rate",
    "top_values_exact",
    "histogram_kind",
)

PROFILE_ROW_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("table", pa.string()),
        ("source_file", pa.string()),
        ("profiled_at", pa.timestamp("us", tz="UTC")),
        ("rows", pa.int64()),
        ("position", pa.int32()),
        ("column", pa.string()),
        ("logical_type", pa.string()),
        ("nullable", pa.bool_()),
        ("count", pa.int64()),
        ("nulls", pa.int64()),
        ("null_rate", pa.float64()),
        ("distinct_estimate", pa.int64()),
        ("distinct_exact", pa.bool_()),
        ("distinct_relative_error", pa.float64()),
        ("min_text", pa.string()),
        ("max_text", pa.string()),
        ("min_value", pa.string()),
        ("max_value", pa.string()),
        ("mean", pa.float64()),
        ("std", pa.float64()),
        ("conforming", pa.int64()),
        ("nonconforming", pa.int64()),
        ("conformance_rate", pa.float64()),
        ("top_values_exact", pa.bool_()),
        ("histogram_kind", pa.string()),
        ("top_values_json", pa.string()),
        ("histogram_json", pa.string()),
        ("nonconforming_examples_json", pa.string()),
    ]
)


def _typed_from_text(logical_type: str, text: str | None) -> int | float | str | None:
    if text is None:
        return None
    if logical_type == "integer":
        return int(text)
    if logical_type == "decimal":
        return float(text)
    return text


# ---------------------------------------------------------------- profilers


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
        self.top = TopCounter(counter_size)
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


# ---------------------------------------------------------------- expectations


@dataclass
class ExpectationFailure:
    check: str  # unique_keys | min_rows | max_rows | not_null
    column: str | None
    observed: int | float
    expected: str
    message: str


def check_expectations(profile: BatchProfile, contract: SourceContract) -> list[ExpectationFailure]:
    """The contract's expectations that the profile breaks, each with its numbers."""
    where = f"{contract.table} ({profile.source_file or 'batch ' + str(profile.batch_id)})"
    failures: list[ExpectationFailure] = []
    exp = contract.expectations
    if exp.min_rows is not None and profile.rows < exp.min_rows:
        failures.append(
            ExpectationFailure(
                "min_rows",
                None,
                profile.rows,
                f">= {exp.min_rows:,}",
                f"{where}: {profile.rows:,} rows, expected at least {exp.min_rows:,} "
                "(contract expectations.min_rows); check the file is complete",
            )
        )
    if exp.max_rows is not None and profile.rows > exp.max_rows:
        failures.append(
            ExpectationFailure(
                "max_rows",
                None,
                profile.rows,
                f"<= {exp.max_rows:,}",
                f"{where}: {profile.rows:,} rows, expected at most {exp.max_rows:,} "
                "(contract expectations.max_rows); check for a repeated or wrong file",
            )
        )
    if exp.unique_keys and contract.keys:
        failures.extend(_key_failures(profile, contract, where))
    for spec in contract.columns:
        if spec.nullable:
            continue
        try:
            col = profile.column(spec.name)
        except KeyError:
            continue
        if col.nulls:
            failures.append(
                ExpectationFailure(
                    "not_null",
                    spec.name,
                    col.nulls,
                    "0",
                    f"{where}: column {spec.name} has {col.nulls:,} empty values among "
                    f"{col.count:,} rows but is declared nullable: false",
                )
            )
    return failures


def _key_failures(
    profile: BatchProfile, contract: SourceContract, where: str
) -> list[ExpectationFailure]:
    keys = ", ".join(contract.keys)
    check = profile.keys
    if check is not None:
        if check.duplicate_rows == 0:
            return []
        lines = ", ".join(str(n) for n in check.duplicate_lines)
        return [
            ExpectationFailure(
                "unique_keys",
                keys,
                check.duplicate_rows,
                "0 duplicate keys",
                f"{where}: key ({keys}) not unique: {check.duplicate_rows:,} rows repeat a key "
                f"seen earlier among {check.rows:,} rows (lines {lines}); remove the "
                "duplicates from the file or correct `keys` in config/sources",
            )
        ]
    # no exact check was run: the distinct estimate can only hint, for a one-column key
    if len(contract.keys) != 1:
        return []
    try:
        col = profile.column(contract.keys[0])
    except KeyError:
        return []
    slack = 3 * col.distinct_relative_error * col.non_null
    if col.distinct_estimate + slack < col.non_null:
        return [
            ExpectationFailure(
                "unique_keys",
                keys,
                col.non_null - col.distinct_estimate,
                "0 duplicate keys",
                f"{where}: key ({keys}) probably not unique: about {col.distinct_estimate:,} "
                f"distinct values among {col.non_null:,} (estimate; run the exact key check)",
            )
        ]
    return []
