"""Difference report of a new bronze batch against the table's previous state.

Everything is computed from profiles (see `profiling`) and key sets, so the previous
state is read once, streaming, or not at all when its profile is stored:

- row counts before / after the batch;
- keys: `new` = keys of the batch not in the table before it (`table_keys`);
  `disappeared` = keys of the previous delivery of the same file (`previous_delivery_keys`,
  same file name or kind, chosen by the caller) that the new batch no longer has;
- per column: null-rate shift; for integer, decimal and date columns mean/std shift and
  PSI and KS statistics on the profiles' fixed-edge histograms; for text columns the
  share of top values and, for code columns whose values all fit in the top list, PSI.

Each shift past its threshold (`Thresholds`) becomes a flag on the column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract
from cms_pipeline.profiling.conformance import NUMERIC_TYPES
from cms_pipeline.profiling.profilers import KeySet, Profiler
from cms_pipeline.profiling.records import BatchProfile, ColumnProfile

if TYPE_CHECKING:  # pyarrow.dataset imports pandas: only for type hints here
    import pyarrow.dataset as ds

_EPS = 1e-4  # floor for empty bins in PSI, as usual for PSI


@dataclass(frozen=True)
class Thresholds:
    """When a shift is flagged. Defaults follow common practice (PSI 0.2 = major shift)."""

    null_rate: float = 0.05  # absolute change of the null rate (5 percentage points)
    psi: float = 0.2
    ks: float = 0.1  # max distance between the binned CDFs
    mean_shift: float = 0.25  # |mean change| in standard deviations of the previous state
    top_share: float = 0.10  # absolute change of one top value's share of non-null values


@dataclass
class ColumnShift:
    column: str
    logical_type: str
    null_rate_before: float | None
    null_rate_after: float
    mean_before: float | None = None
    mean_after: float | None = None
    std_before: float | None = None
    std_after: float | None = None
    psi: float | None = None
    ks: float | None = None
    top_share_changes: list[tuple[str, float, float]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def null_rate_change(self) -> float | None:
        if self.null_rate_before is None:
            return None
        return self.null_rate_after - self.null_rate_before

    @property
    def mean_change_pct(self) -> float | None:
        if self.mean_before is None or self.mean_after is None or self.mean_before == 0:
            return None
        return 100.0 * (self.mean_after - self.mean_before) / abs(self.mean_before)

    @property
    def top_share_change_max(self) -> float | None:
        if not self.top_share_changes:
            return None
        return max(abs(after - before) for _, before, after in self.top_share_changes)


@dataclass
class KeyChanges:
    key_columns: list[str]
    batch_keys: int  # distinct keys in the new batch
    new_keys: int | None  # not in the table before the batch (None: table keys not given)
    existing_keys: int | None  # already in the table before the batch
    previous_delivery_keys: int | None
    disappeared_keys: int | None  # in the previous delivery, not in the new batch


@dataclass
class BatchDiff:
    table: str
    source_file: str | None
    batch_id: str | None
    rows_before: int
    rows_batch: int
    baseline: str | None  # what the distributions were compared with, None on a first load
    keys: KeyChanges | None
    columns: list[ColumnShift]
    thresholds: Thresholds
    diffed_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    )

    @property
    def rows_after(self) -> int:
        return self.rows_before + self.rows_batch

    @property
    def flagged(self) -> list[ColumnShift]:
        return [c for c in self.columns if c.flags]

    def to_dict(self) -> dict[str, Any]:
        columns = []
        for c in self.columns:
            d = asdict(c)
            d["null_rate_change"] = c.null_rate_change
            d["mean_change_pct"] = c.mean_change_pct
            d["top_share_changes"] = [list(t) for t in c.top_share_changes]
            columns.append(d)
        return {
            "table": self.table,
            "source_file": self.source_file,
            "batch_id": self.batch_id,
            "diffed_at": self.diffed_at,
            "rows_before": self.rows_before,
            "rows_batch": self.rows_batch,
            "rows_after": self.rows_after,
            "baseline": self.baseline,
            "keys": None if self.keys is None else asdict(self.keys),
            "thresholds": asdict(self.thresholds),
            "flagged_columns": [c.column for c in self.flagged],
            "columns": columns,
        }

    def to_rows(self) -> pa.Table:
        """One row per column of the batch, for a Delta table (schema DIFF_ROW_SCHEMA)."""
        keys = self.keys
        at = dt.datetime.fromisoformat(self.diffed_at)
        rows = [
            {
                "batch_id": self.batch_id,
                "table": self.table,
                "source_file": self.source_file,
                "diffed_at": at,
                "rows_before": self.rows_before,
                "rows_batch": self.rows_batch,
                "rows_after": self.rows_after,
                "new_keys": None if keys is None else keys.new_keys,
                "disappeared_keys": None if keys is None else keys.disappeared_keys,
                "column": c.column,
                "logical_type": c.logical_type,
                "null_rate_before": c.null_rate_before,
                "null_rate_after": c.null_rate_after,
                "null_rate_change": c.null_rate_change,
                "mean_before": c.mean_before,
                "mean_after": c.mean_after,
                "mean_change_pct": c.mean_change_pct,
                "std_before": c.std_before,
                "std_after": c.std_after,
                "psi": c.psi,
                "ks": c.ks,
                "top_share_change_max": c.top_share_change_max,
                "flags": list(c.flags),
            }
            for c in self.columns
        ]
        return pa.Table.from_pylist(rows, schema=DIFF_ROW_SCHEMA)

    def summary_lines(self, max_columns: int = 12) -> list[str]:
        """Readable lines for the CLI: counts and keys first, then flagged columns."""
        head = (
            f"{self.table}: {self.rows_batch:+,} rows ({self.rows_before:,} -> {self.rows_after:,})"
        )
        if self.keys is not None:
            k = self.keys
            if k.new_keys is not None:
                head += f", {k.new_keys:,} new keys"
                if k.existing_keys:
                    head += f" ({k.existing_keys:,} already in the table)"
            if k.disappeared_keys is not None:
                head += (
                    f", {k.disappeared_keys:,} of {k.previous_delivery_keys:,} keys of the "
                    "previous delivery disappeared"
                )
        lines = [head]
        if self.baseline is None:
            lines.append("  first load: no earlier state to compare distributions with")
            return lines
        shown = sorted(
            self.columns, key=lambda c: (not c.flags, c.logical_type not in NUMERIC_TYPES)
        )
        listed = 0
        for c in shown:
            if listed == max_columns or (not c.flags and c.mean_change_pct is None):
                break
            lines.append(("  ! " if c.flags else "    ") + _describe(c))
            listed += 1
        rest = len(self.columns) - listed
        if rest:
            lines.append(f"    {rest} other column(s) without flagged shifts")
        return lines


def _describe(c: ColumnShift) -> str:
    parts = []
    if c.mean_before is not None and c.mean_after is not None:
        pct = c.mean_change_pct
        change = f" ({pct:+.1f}%)" if pct is not None else ""
        parts.append(f"mean {_num(c.mean_before)} -> {_num(c.mean_after)}{change}")
    nrc = c.null_rate_change
    if nrc is not None and ("null_rate" in c.flags or abs(nrc) >= 0.001):
        parts.append(
            f"null rate {c.null_rate_before:.1%} -> {c.null_rate_after:.1%} ({100 * nrc:+.1f} pp)"
        )
    if c.psi is not None:
        parts.append(f"PSI {c.psi:.3f}")
    if c.ks is not None:
        parts.append(f"KS {c.ks:.3f}")
    if c.top_share_changes and "top_share" in c.flags:
        value, before, after = max(c.top_share_changes, key=lambda t: abs(t[2] - t[1]))
        parts.append(f"'{value}' share {before:.1%} -> {after:.1%}")
    flags = f" [{', '.join(c.flags)}]" if c.flags else ""
    return f"{c.column} {', '.join(parts) or 'no change measured'}{flags}"


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


DIFF_ROW_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("table", pa.string()),
        ("source_file", pa.string()),
        ("diffed_at", pa.timestamp("us", tz="UTC")),
        ("rows_before", pa.int64()),
        ("rows_batch", pa.int64()),
        ("rows_after", pa.int64()),
        ("new_keys", pa.int64()),
        ("disappeared_keys", pa.int64()),
        ("column", pa.string()),
        ("logical_type", pa.string()),
        ("null_rate_before", pa.float64()),
        ("null_rate_after", pa.float64()),
        ("null_rate_change", pa.float64()),
        ("mean_before", pa.float64()),
        ("mean_after", pa.float64()),
        ("mean_change_pct", pa.float64()),
        ("std_before", pa.float64()),
        ("std_after", pa.float64()),
        ("psi", pa.float64()),
        ("ks", pa.float64()),
        ("top_share_change_max", pa.float64()),
        ("flags", pa.list_(pa.string())),
    ]
)


# ---------------------------------------------------------------- statistics


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


# ---------------------------------------------------------------- the report


def key_changes(
    new_keys: KeySet, table_keys: KeySet | None, previous_delivery_keys: KeySet | None
) -> KeyChanges:
    """New keys (not in `table_keys`) and disappeared ones (in the previous delivery only)."""
    new = None if table_keys is None else new_keys.minus(table_keys)
    return KeyChanges(
        key_columns=list(new_keys.key_columns),
        batch_keys=len(new_keys),
        new_keys=new,
        existing_keys=None if new is None else len(new_keys) - new,
        previous_delivery_keys=(
            None if previous_delivery_keys is None else len(previous_delivery_keys)
        ),
        disappeared_keys=(
            None if previous_delivery_keys is None else previous_delivery_keys.minus(new_keys)
        ),
    )


def diff_batch(
    new_profile: BatchProfile,
    *,
    rows_before: int,
    previous_profile: BatchProfile | None = None,
    new_keys: KeySet | None = None,
    table_keys: KeySet | None = None,
    previous_delivery_keys: KeySet | None = None,
    thresholds: Thresholds = Thresholds(),
) -> BatchDiff:
    """Compare a new batch with what came before it.

    new_profile: profile of the new batch. rows_before: rows in the table before it.
    previous_profile: profile of the table's previous state (or of the previous delivery);
        None on a first load: then only counts and keys are reported.
    new_keys: key set of the new batch (`KeyTracker.key_set()` from its profiler).
    table_keys: key set of the table before the batch -> `new_keys` count.
    previous_delivery_keys: key set of the previous delivery of the same file name or
        kind -> `disappeared_keys` count (keys there, not in the new batch).
    """
    keys = None if new_keys is None else key_changes(new_keys, table_keys, previous_delivery_keys)
    shifts = []
    baseline = None
    if previous_profile is not None and previous_profile.rows > 0:
        baseline = (
            f"{previous_profile.table} {previous_profile.source_file or ''} "
            f"batch {previous_profile.batch_id} ({previous_profile.rows:,} rows)"
        ).replace("  ", " ")
        before = {c.column: c for c in previous_profile.columns}
    else:
        before = {}
    for col in new_profile.columns:
        if col.column in before:
            shifts.append(column_shift(before[col.column], col, thresholds))
        else:
            shifts.append(
                ColumnShift(
                    col.column,
                    col.logical_type,
                    None,
                    col.null_rate,
                    mean_after=col.mean,
                    std_after=col.std,
                )
            )
    return BatchDiff(
        table=new_profile.table,
        source_file=new_profile.source_file,
        batch_id=new_profile.batch_id,
        rows_before=rows_before,
        rows_batch=new_profile.rows,
        baseline=baseline,
        keys=keys,
        columns=shifts,
        thresholds=thresholds,
    )


def profile_state(
    source: ds.Dataset | pa.Table | Iterable[pa.RecordBatch],
    contract: SourceContract,
    *,
    key_columns: list[str] | None = None,
    columns: list[str] | None = None,
    **profiler_options: Any,
) -> tuple[BatchProfile, KeySet | None]:
    """Profile and key set of a table's previous state (or a previous delivery), one pass.

    `source` is a pyarrow Dataset (e.g. `DeltaTable(uri).to_pyarrow_dataset()`, filtered
    by the caller), a Table, or any iterable of batches. Memory: the profile's bounded
    state plus 8 bytes per row for the key set.
    """
    keys = contract.keys if key_columns is None else key_columns
    if isinstance(source, pa.Table):
        batches = source.to_batches()
    elif hasattr(source, "to_batches"):  # a pyarrow Dataset
        wanted = columns or [
            n for n in source.schema.names if n in set(contract.column_names) | set(keys)
        ]
        batches = source.to_batches(columns=wanted)
    else:
        batches = source
    profiler = Profiler(contract, key_columns=keys, **profiler_options)
    for batch in batches:
        if batch.num_rows:
            profiler.update(batch)
    key_set = profiler.keys.key_set() if profiler.keys is not None else None
    return profiler.result(), key_set
