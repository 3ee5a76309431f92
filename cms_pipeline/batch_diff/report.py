"""The batch difference report (see the package doc) and its three forms: a dict (JSON),
one row per column for the `batch_diffs` Delta table (`DIFF_ROW_SCHEMA`), and readable
lines for the CLI (`summary_lines`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from cms_pipeline.profiling.conformance import NUMERIC_TYPES


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
