"""Rendering drawn events as CMS text (Arrow columns): amounts, dates, codes, contract order.

Nothing here draws random numbers. Columns are named as in the contracts of
`config/sources/synpuf.yaml`; `table` puts them in the contract's order and leaves the
contract's other columns empty, and `numbered` reads a block's width (ICD9_DGNS_CD_1..N)
from the contract instead of a constant.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import SourceContract
from cms_pipeline.synth.draws import DAY0, Codes, Segment2

# YYYYMMDD for every day from DAY0 on: dates are day offsets until written
_DAYS = np.arange(DAY0, np.datetime64("2011-03-01", "D"))
YMD = np.array([int(str(d).replace("-", "")) for d in _DAYS], dtype=np.int32)

_MONEY_LOW, _MONEY_HIGH = -100_000, 1_000_000
_MONEY_POOL: list[pa.Array] = []
# "0.00", "10.00", ...: carrier line amounts are whole tens of dollars
MONEY_TENS = pa.array([f"{10 * v}.00" for v in range(100_000)], pa.string())


def money(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Whole-dollar amounts as CMS writes them: "26000.00"; masked entries empty.

    Amounts repeat a lot, so each value's text is made once per process and taken.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < _MONEY_LOW or values.max() > _MONEY_HIGH):
        uniq, inverse = np.unique(values, return_inverse=True)
        pool = pa.array([f"{v}.00" for v in uniq.tolist()], pa.string())
        return take(pool, inverse.ravel(), mask)
    if not _MONEY_POOL:
        _MONEY_POOL.append(
            pa.array([f"{v}.00" for v in range(_MONEY_LOW, _MONEY_HIGH + 1)], pa.string())
        )
    return take(_MONEY_POOL[0], values - _MONEY_LOW, mask)


def with_null(pool: pa.Array) -> pa.Array:
    """The pool plus a trailing null: index len(pool) gives an empty field."""
    return pa.concat_arrays([pool, pa.nulls(1, pool.type)])


def integer(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), mask=mask)


def date(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """YYYYMMDD of day offsets from DAY0."""
    days = np.asarray(days, dtype=np.int64)
    safe = np.clip(days, 0, len(YMD) - 1)
    return pa.array(YMD[safe], mask=mask)


def take(pool: pa.Array, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pc.take(pool, pa.array(np.asarray(idx, dtype=np.int64), mask=mask))


def text(values: np.ndarray) -> pa.Array:
    """Values drawn as text (amounts such as "1024.00") as they are."""
    return pa.array(values, pa.string())


def people_ids(ids: list[str], person: np.ndarray) -> pa.Array:
    """DESYNPUF_ID of each row from the chunk's beneficiary index."""
    return pa.array(ids).take(pa.array(person))


def numbered(contract: SourceContract, prefix: str) -> list[str]:
    """The contract's columns PREFIX1..PREFIXn in order, e.g. numbered(c, "ICD9_DGNS_CD_")."""
    pattern = re.compile(re.escape(prefix) + r"\d+")
    names = [c for c in contract.column_names if pattern.fullmatch(c)]
    if not names:
        raise KeyError(f"{contract.name}: no columns {prefix}1..n in the contract")
    return names


def code_columns(names: list[str], pool: pa.Array, codes: Codes) -> dict[str, pa.Array]:
    """One column per code slot; empty slots are empty fields."""
    return {name: take(pool, codes.index[:, j], codes.empty[:, j]) for j, name in enumerate(names)}


def table(contract: SourceContract, n_rows: int, cols: dict[str, pa.Array]) -> pa.Table:
    """The columns in the contract's order; the contract's other columns empty."""
    unknown = set(cols) - set(contract.column_names)
    if unknown:
        raise KeyError(f"{contract.name}: columns not in the contract: {sorted(unknown)}")
    empty = pa.nulls(n_rows, pa.string())
    arrays = [cols.get(c, empty) for c in contract.column_names]
    return pa.table(arrays, names=contract.column_names)


# a SEGMENT 2 row repeats these and the amounts; other fields are empty
_SEGMENT2_KEEPS = {"DESYNPUF_ID", "CLM_ID", "PRVDR_NUM", "CLM_ADMSN_DT", "NCH_BENE_DSCHRG_DT"}


def with_segment2(claims: pa.Table, segment2: Segment2, drg_text: pa.Array | None) -> pa.Table:
    """Claims continued on a SEGMENT 2 row (same claim, dates and codes left empty), each
    placed right after its first segment."""
    k, pick = claims.num_rows, segment2.rows
    if len(pick) == 0:
        return claims
    seg = {}
    for name in claims.column_names:
        col = claims.column(name).take(pa.array(pick))
        if name in _SEGMENT2_KEEPS:
            seg[name] = col
        elif name == "SEGMENT":
            seg[name] = pa.array(np.full(len(pick), 2, dtype=np.int64))
        elif name == "CLM_DRG_CD" and segment2.drg is not None:
            seg[name] = take(drg_text, segment2.drg)
        elif name.endswith(("_AMT", "_AM")):
            seg[name] = col
        else:
            seg[name] = pa.nulls(len(pick), col.type)
    both = pa.concat_tables([claims, pa.table(seg, schema=claims.schema)])
    pos = np.concatenate([np.arange(k) * 2, pick * 2 + 1])
    return both.take(pa.array(np.argsort(pos, kind="stable")))
