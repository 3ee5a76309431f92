"""Metrics compared with the previous scan (row count, missing share, mean).

Soda Core keeps no history, so a check file names the previous values it needs as scan
variables: `${prev_row_count}`, `${prev_missing_pct__COLUMN}`, `${prev_avg__COLUMN}`.
This module finds those names, computes the current values of the same metrics (one
Spark aggregation per table, a single row back), and turns the stored values of the last
passing scan into variables. A metric with no previous value becomes SQL NULL, which the
checks treat as "no change".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VARIABLE = re.compile(r"\$\{\s*prev_(row_count|missing_pct|avg)(?:__([A-Za-z0-9_]+))?\s*\}")


@dataclass(frozen=True)
class Metric:
    kind: str  # row_count | missing_pct | avg
    column: str | None = None

    @property
    def variable(self) -> str:
        return f"prev_{self.kind}" + (f"__{self.column}" if self.column else "")

    @property
    def key(self) -> str:
        return self.kind + (f"({self.column})" if self.column else "")


def wanted_metrics(sodacl: str) -> list[Metric]:
    """Row count, then the previous-scan metrics a check file refers to, in order of use."""
    found: dict[Metric, None] = {Metric("row_count"): None}  # always: history and sizing
    for kind, column in _VARIABLE.findall(sodacl):
        found.setdefault(Metric(kind, column or None), None)
    return list(found)


def compute(df, metrics: list[Metric]) -> dict[Metric, float | None]:
    """Current values of `metrics` on a Spark DataFrame (one aggregation, one row)."""
    if not metrics:
        return {}
    from pyspark.sql import functions as F

    exprs = []
    for i, m in enumerate(metrics):
        if m.kind == "row_count":
            expr = F.count(F.lit(1))
        elif m.kind == "missing_pct":
            expr = 100.0 * F.sum(F.col(m.column).isNull().cast("int")) / F.count(F.lit(1))
        else:
            expr = F.avg(F.col(m.column).cast("double"))
        exprs.append(expr.alias(f"m{i}"))
    row = df.agg(*exprs).collect()[0]
    return {m: (None if row[i] is None else float(row[i])) for i, m in enumerate(metrics)}


def previous_variables(metrics: list[Metric], previous: dict[str, float | None]) -> dict[str, str]:
    """Scan variables from stored values keyed by `Metric.key`; NULL when unknown."""
    out = {}
    for m in metrics:
        value = previous.get(m.key)
        out[m.variable] = "NULL" if value is None else repr(float(value))
    return out
