"""Bronze distribution checks compare the newest arrival with the arrival before it.

Bronze is append-only and every loaded file is its own `_batch_id`, so whole-table metrics
dilute a bad delivery in years of good ones. Instead:

* the newest arrival = the `_batch_id`s in the table that no passing scan has seen yet;
  when none is new (the same bronze scanned again), the arrival the last passing scan saw;
* its metrics (row count, missing %, mean) come from one GROUP BY `_batch_id` aggregation
  (`batch_partials`), combined here for the arrival's batches;
* they are compared with the metrics stored for the previous arrival: the latest passing
  scan whose arrival was a different set of batches.

A failed scan is no baseline: its batches stay "new" until a scan of them passes.
Stored metric rows (store.METRICS_SCHEMA) carry the arrival's batch ids in `batch`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cms_pipeline.quality.metrics import BATCH, BATCH_COLUMN, Metric


@dataclass(frozen=True)
class Arrival:
    batch_ids: frozenset[str]
    metrics: dict[str, float | None]  # keyed by Metric.key (batch_...)


def label(batch_ids: Iterable[str]) -> str:
    """How an arrival is stored: its batch ids, sorted, comma-separated."""
    return ",".join(sorted(batch_ids))


def sql_list(batch_ids: Iterable[str]) -> str:
    """`'a','b'` for `_batch_id IN (${newest_batch_ids})`; NULL (matches nothing) when empty."""
    quoted = ["'" + b.replace("'", "''") + "'" for b in sorted(batch_ids)]
    return ",".join(quoted) or "NULL"


def passing_arrivals(rows: list[dict], layer: str, table: str) -> list[Arrival]:
    """Arrivals of passing scans of `table`, newest scan first."""
    runs: dict[str, dict] = {}
    for r in rows:
        if r["layer"] != layer or r["table"] != table or not r["gate_passed"] or not r.get("batch"):
            continue
        run = runs.setdefault(r["run_id"], {"at": r["checked_at"], "batch": r["batch"], "m": {}})
        run["m"][r["metric"]] = r["value"]
    ordered = sorted(runs.items(), key=lambda kv: (kv[1]["at"], kv[0]), reverse=True)
    return [Arrival(frozenset(run["batch"].split(",")), run["m"]) for _, run in ordered]


def newest_arrival(present: Iterable[str], past: list[Arrival]) -> frozenset[str]:
    """Batches no passing scan has seen; else those the last passing scan saw (still present)."""
    present = frozenset(present)
    seen = frozenset().union(*(a.batch_ids for a in past))
    new = present - seen
    if new or not past:
        return new
    return past[0].batch_ids & present


def previous_arrival(past: list[Arrival], newest: frozenset[str]) -> dict[str, float | None]:
    """Stored metrics of the latest passing arrival other than `newest`; {} when none."""
    return next((a.metrics for a in past if a.batch_ids != newest), {})


def batch_partials(df, metrics: list[Metric]) -> dict[str, dict[Metric, tuple[float, float]]]:
    """Per `_batch_id`, each batch metric as (numerator, denominator): one Spark GROUP BY."""
    # PySpark (about 0.3 s) only here: the rest is pure, and `check --history` loads it
    from pyspark.sql import functions as F

    wanted = [m for m in metrics if m.scope == BATCH]
    exprs = [F.count(F.lit(1)).alias("n")]
    for i, m in enumerate(wanted):
        if m.kind == "missing_pct":
            exprs.append(F.count(F.when(F.col(m.column).isNull(), 1)).alias(f"x{i}"))
        elif m.kind == "avg":
            value = F.col(m.column).cast("double")
            exprs += [F.sum(value).alias(f"x{i}"), F.count(value).alias(f"d{i}")]
    out = {}
    for row in df.groupBy(BATCH_COLUMN).agg(*exprs).collect():
        parts = {}
        for i, m in enumerate(wanted):
            if m.kind == "row_count":
                parts[m] = (float(row["n"]), 1.0)
            elif m.kind == "missing_pct":
                parts[m] = (100.0 * row[f"x{i}"], float(row["n"]))
            else:
                parts[m] = (float(row[f"x{i}"] or 0.0), float(row[f"d{i}"]))
        out[row[BATCH_COLUMN]] = parts
    return out


def combine(
    partials: dict[str, dict[Metric, tuple[float, float]]], batch_ids: Iterable[str]
) -> dict[Metric, float | None]:
    """Metrics of the rows of `batch_ids` together, from per-batch partials (pure)."""
    chosen = [partials[b] for b in batch_ids if b in partials]
    metrics = {m for parts in chosen for m in parts}
    out: dict[Metric, float | None] = {}
    for m in metrics:
        num = sum(p[m][0] for p in chosen)
        den = sum(p[m][1] for p in chosen)
        out[m] = num if m.kind == "row_count" else (num / den if den else None)
    return out


__all__ = [
    "Arrival",
    "BATCH_COLUMN",
    "batch_partials",
    "combine",
    "label",
    "newest_arrival",
    "passing_arrivals",
    "previous_arrival",
    "sql_list",
]
