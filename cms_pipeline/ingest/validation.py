"""Row-level checks against a contract, vectorised with pyarrow.compute.

`find_violations(batch, contract)` gives, for each row that breaks the contract, the
first column that breaks it and why. Rows are never fixed here: they go to quarantine.
Columns come dictionary-encoded from the reader (all but ids), or are encoded here and
handed back, so that the checks run once per distinct value and profiling and the
Parquet writer reuse the encoding instead of hashing every value again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import ColumnSpec, SourceContract
from cms_pipeline.profiling.conformance import TYPE_HINTS, TYPE_PATTERNS


@dataclass
class Violations:
    """Rows of one batch that break the contract (indices into the batch)."""

    rows: np.ndarray  # int64 row indices, ascending
    columns: list[str | None]
    reasons: list[str]
    # name -> encoding made here of a column the reader gave as plain text (all but ids,
    # unless its bytes had to be blanked for the checks)
    encoded: dict[str, pa.DictionaryArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def _checks(spec: ColumnSpec):
    """(mask function, reason) pairs on a column's present values, in the order they
    are reported (a missing value is checked apart: see `find_violations`)."""
    if spec.type in TYPE_PATTERNS:
        pattern = TYPE_PATTERNS[spec.type]
        yield (
            (lambda a, p=pattern: pc.invert(pc.fill_null(pc.match_substring_regex(a, p), True))),
            f"expected {TYPE_HINTS[spec.type]}",
        )
    if spec.type == "date":
        yield _bad_calendar_date, "not a calendar date (YYYYMMDD)"
    if spec.domain is not None:
        domain = pa.array(spec.domain, pa.string())
        yield (
            (lambda a, d=domain: pc.invert(pc.fill_null(pc.is_in(a, value_set=d), True))),
            f"not in the codebook domain {spec.domain}",
        )
    if spec.pattern is not None:
        yield (
            (
                lambda a, p=spec.pattern: pc.invert(
                    pc.fill_null(pc.match_substring_regex(a, p), True)
                )
            ),
            f"does not match the pattern {spec.pattern}",
        )


MISSING = "required value is missing"
# ids are nearly all distinct: checking them value by value is cheaper than encoding them
_CHECKED_ROW_BY_ROW = ("id",)


def encodes(spec: ColumnSpec | None) -> bool:
    """Whether a column is dictionary-encoded for the checks (all but ids)."""
    return spec is None or spec.type not in _CHECKED_ROW_BY_ROW


def _distinct(column: pa.Array, encoded: pa.DictionaryArray | None):
    """The values to check and a function that maps a mask over them back to rows.

    Codes, dates and amounts repeat a lot, so their checks run once per distinct value
    of the batch and the verdict is spread back to the rows through the dictionary.
    """
    if encoded is None:
        return column, lambda mask: mask
    # a null row points one past the dictionary, at a slot that is never bad
    index = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return encoded.dictionary, lambda mask: np.append(mask, False)[index]


def _bad_calendar_date(a: pa.Array) -> pa.Array:
    parsed = pc.strptime(a, format="%Y%m%d", unit="s", error_is_null=True)
    return pc.and_(pc.is_valid(a), pc.is_null(parsed))


def plain(column: pa.Array) -> pa.Array:
    """The column as plain text (a dictionary-encoded one decoded)."""
    return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column


def invalid_utf8_rows(column: pa.Array) -> np.ndarray:
    """Row indices whose bytes are not UTF-8 (the reader keeps bytes unchecked for speed)."""
    # A reader-encoded column's bytes are all in its dictionary; its indices come from
    # the parser, so checking them too (what a full validation of the column does) is waste.
    values = column.dictionary if pa.types.is_dictionary(column.type) else column
    try:
        values.validate(full=True)
        return np.empty(0, dtype=np.int64)
    except pa.ArrowInvalid:
        values = plain(column).cast(pa.binary()).to_pylist()
        bad = []
        for i, v in enumerate(values):
            if v is None:
                continue
            try:
                v.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(i)
        return np.array(bad, dtype=np.int64)


def find_violations(
    batch: pa.RecordBatch, contract: SourceContract, check_utf8: bool = True
) -> Violations:
    n = batch.num_rows
    first_col = np.full(n, -1, dtype=np.int32)
    reason_of = np.full(n, -1, dtype=np.int32)
    names: list[str] = []
    reasons: list[str] = []

    def mark(rows_mask: np.ndarray, column: str, reason: str) -> None:
        new = rows_mask & (first_col < 0)
        if new.any():
            names.append(column)
            reasons.append(reason)
            first_col[new] = len(names) - 1
            reason_of[new] = len(reasons) - 1

    specs = {c.name: c for c in contract.columns}
    encodings: dict[str, pa.DictionaryArray] = {}
    for name in batch.schema.names:
        column = batch.column(name)
        spec = specs.get(name)
        bad_utf8 = invalid_utf8_rows(column) if check_utf8 else ()
        if len(bad_utf8):
            mask = np.zeros(n, dtype=bool)
            mask[bad_utf8] = True
            mark(mask, name, f"bytes are not valid {contract.encoding}")
            # Regex kernels need valid UTF-8: blank out the bad values, check the rest.
            column = plain(column)
            column = pc.if_else(pa.array(mask), pa.scalar(None, column.type), column)
        if pa.types.is_dictionary(column.type):  # encoded by the reader
            encoded = column
        elif encodes(spec):
            encoded = pc.dictionary_encode(column)
            if not len(bad_utf8):
                encodings[name] = encoded
        else:
            encoded = None
        if spec is None:
            continue
        if not spec.nullable and column.null_count:
            mark(pc.is_null(column).to_numpy(zero_copy_only=False), name, MISSING)
        checks = list(_checks(spec))
        if not checks or column.null_count == n:
            continue
        values, to_rows = _distinct(column, encoded)
        for fn, reason in checks:
            bad = fn(values).to_numpy(zero_copy_only=False)
            if bad.any():
                mark(to_rows(bad), name, reason)
    rows = np.flatnonzero(first_col >= 0)
    return Violations(
        rows=rows,
        columns=[names[first_col[i]] for i in rows],
        reasons=[reasons[reason_of[i]] for i in rows],
        encoded=encodings,
    )
