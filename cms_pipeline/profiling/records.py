"""The results of profiling: one `ColumnProfile` per column, the file's `KeyCheck`, and
the `BatchProfile` that holds them, with their dict, JSON and Arrow forms (one row per
column, as stored in the profiles Delta table).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

from cms_pipeline.profiling.histograms import bin_edges


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
    # rows by which a count in top_values may fall short of the true count (0: exact);
    # None in profiles stored before the counts had a bound
    top_values_max_error: int | None = None

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
            d = {k: r.get(k) for k in _SCALAR_FIELDS}  # a field added later is missing
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
    "top_values_max_error",
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
        ("top_values_max_error", pa.int64()),
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
