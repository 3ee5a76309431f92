"""Metrics compared with an earlier scan (row count, missing share, mean).

Soda Core keeps no history, so a check file names the earlier values it needs as scan
variables, and this module computes the current values of the same metrics (one Spark
aggregation per table, a single row back) so that they can be stored for the next scan.

Two scopes:

* `${prev_row_count}`, `${prev_missing_pct__COLUMN}`, `${prev_avg__COLUMN}`: the whole
  table, compared with the last passing scan of that table (silver and gold builds, and
  bronze's "never shrinks").
* `${prev_batch_row_count}`, `${prev_batch_missing_pct__COLUMN}`, `${prev_batch_avg__COLUMN}`:
  bronze's newest arrival only (the rows of its newest `_batch_id`s, see `batches`),
  compared with the arrival before it.

A metric with no earlier value becomes SQL NULL, which the checks treat as "no change".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VARIABLE = re.compile(
    r"\$\{\s*prev_(batch_)?(row_count|missing_pct|avg)(?:__([A-Za-z0-9_]+))?\s*\}"
)
TABLE, BATCH = "table", "batch"
BATCH_COLUMN = "_batch_id"  # written by ingestion on every bronze row


@dataclass(frozen=True)
class Metric:
    kind: str  # row_count | missing_pct | avg
    column: str | None = None
    scope: str = TABLE  # table | batch (the newest arrival's rows)

    @property
    def variable(self) -> str:
        scope = "batch_" if self.scope == BATCH else ""
        return f"prev_{scope}{self.kind}" + (f"__{self.column}" if self.column else "")

    @property
    def key(self) -> str:
        """Name in the stored metrics: `avg(CLM_PMT_AMT)`, `batch_avg(CLM_PMT_AMT)`."""
        scope = "batch_" if self.scope == BATCH else ""
        return scope + self.kind + (f"({self.column})" if self.column else "")


def wanted_metrics(sodacl: str) -> list[Metric]:
    """Row count, then the earlier-scan metrics a check file refers to, in order of use."""
    found: dict[Metric, None] = {Metric("row_count"): None}  # always: history and sizing
    for batch, kind, column in _VARIABLE.findall(sodacl):
        found.setdefault(Metric(kind, column or None, BATCH if batch else TABLE), None)
    return list(found)


def uses_batches(metrics: list[Metric]) -> bool:
    return any(m.scope == BATCH for m in metrics)


def compute(df, metrics: list[Metric]) -> dict[Metric, float | None]:
    """Current values of the table-scope `metrics` on a Spark DataFrame (one aggregation,
    one row). Batch-scope metrics come from `batches.batch_partials`."""
    metrics = [m for m in metrics if m.scope == TABLE]
    if not metrics:
        return {}
    # PySpark (about 0.3 s) only here: the rest is pure, and `check --history` loads it
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
