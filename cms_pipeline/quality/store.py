"""Where gate results live: three small Delta tables under LAKE/_meta (delta-rs).

check_results   one row per check per run: layer, table, table version checked,
                check, outcome, measured value, time, and the run's verdict
check_metrics   the metrics later scans compare with (row count, missing %, mean): of the
                whole table, and for bronze of the newest arrival (`batch` = its
                `_batch_id`s, see quality.batches)
failed_rows     a bounded sample of failing rows per check per run, as JSON
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_writer import append_rows, open_table
from cms_pipeline.lake import meta_uri
from cms_pipeline.quality.results import GateResult

_TS = pa.timestamp("us", tz="UTC")
_RUN = [
    ("run_id", pa.string()),
    ("layer", pa.string()),
    ("schema", pa.string()),
    ("table", pa.string()),
]

RESULTS_SCHEMA = pa.schema(
    [
        *_RUN,
        ("table_version", pa.string()),
        ("batch_id", pa.string()),
        ("check", pa.string()),
        ("outcome", pa.string()),
        ("severity", pa.string()),
        ("value", pa.float64()),
        ("location", pa.string()),
        ("message", pa.string()),
        ("gate_passed", pa.bool_()),
        ("checked_at", _TS),
    ]
)
METRICS_SCHEMA = pa.schema(
    [
        *_RUN,
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("gate_passed", pa.bool_()),
        ("checked_at", _TS),
        ("batch", pa.string()),  # batch_* metrics: the arrival's batch ids, comma-separated
    ]
)
FAILED_ROWS_SCHEMA = pa.schema(
    [
        *_RUN,
        ("check", pa.string()),
        ("row_number", pa.int32()),
        ("row", pa.string()),
        ("checked_at", _TS),
    ]
)


def results_uri(settings: Settings) -> str:
    return meta_uri(settings, "check_results")


def metrics_uri(settings: Settings) -> str:
    return meta_uri(settings, "check_metrics")


def failed_rows_uri(settings: Settings) -> str:
    return meta_uri(settings, "failed_rows")


def result_rows(gate: GateResult) -> list[dict]:
    return [
        {
            "run_id": gate.run_id,
            "layer": gate.layer,
            "schema": gate.schema,
            "table": c.table,
            "table_version": gate.table_versions.get(c.table),
            "batch_id": gate.batch_id,
            "check": c.check,
            "outcome": c.outcome,
            "severity": c.severity,
            "value": c.value,
            "location": c.location,
            "message": c.message,
            "gate_passed": gate.passed,
            "checked_at": gate.checked_at,
        }
        for c in gate.checks
    ]


def metric_rows(
    gate: GateResult,
    metrics: dict[str, dict[str, float | None]],
    arrivals: dict[str, str] | None = None,
) -> list[dict]:
    """One row per table and metric; batch_* metrics carry the arrival label of the table."""
    arrivals = arrivals or {}
    return [
        {
            "run_id": gate.run_id,
            "layer": gate.layer,
            "schema": gate.schema,
            "table": table,
            "metric": key,
            "value": value,
            "gate_passed": gate.passed,
            "checked_at": gate.checked_at,
            "batch": arrivals.get(table) if key.startswith("batch_") else None,
        }
        for table, values in metrics.items()
        for key, value in values.items()
    ]


def failed_row_rows(gate: GateResult) -> list[dict]:
    return [
        {
            "run_id": gate.run_id,
            "layer": gate.layer,
            "schema": gate.schema,
            "table": c.table,
            "check": c.check,
            "row_number": i,
            "row": json.dumps(row, default=str),
            "checked_at": gate.checked_at,
        }
        for c in gate.checks
        for i, row in enumerate(c.failed_rows)
    ]


def save(
    settings: Settings,
    gate: GateResult,
    metrics: dict[str, dict[str, float | None]],
    arrivals: dict[str, str] | None = None,
) -> None:
    """Append this run's results, metrics and failed-row samples."""
    for uri, rows, schema in (
        (results_uri(settings), result_rows(gate), RESULTS_SCHEMA),
        (metrics_uri(settings), metric_rows(gate, metrics, arrivals), METRICS_SCHEMA),
        (failed_rows_uri(settings), failed_row_rows(gate), FAILED_ROWS_SCHEMA),
    ):
        if rows:
            append_rows(uri, pa.Table.from_pylist(rows, schema=schema))


def _read(uri: str, schema: pa.Schema) -> pa.Table:
    dt = open_table(uri)
    return schema.empty_table() if dt is None else dt.to_pyarrow_table()


def read_results(settings: Settings, layer: str | None = None) -> pa.Table:
    table = _read(results_uri(settings), RESULTS_SCHEMA)
    return table if layer is None else table.filter(pc.equal(table["layer"], layer))


def read_failed_rows(settings: Settings, run_id: str | None = None) -> pa.Table:
    table = _read(failed_rows_uri(settings), FAILED_ROWS_SCHEMA)
    return table if run_id is None else table.filter(pc.equal(table["run_id"], run_id))


def read_metrics(settings: Settings, layer: str) -> list[dict]:
    """Stored metric rows of a layer (tables written before `batch` existed read it as None)."""
    table = _read(metrics_uri(settings), METRICS_SCHEMA)
    rows = table.filter(pc.equal(table["layer"], layer)).to_pylist()
    return [{"batch": None, **r} for r in rows]


def previous_metrics(settings: Settings, layer: str) -> dict[str, dict[str, float | None]]:
    """Per table, the whole-table metrics of its latest scan in a passing run of this layer."""
    return latest_passing(read_metrics(settings, layer), layer)


def latest_passing(rows: list[dict], layer: str) -> dict[str, dict[str, float | None]]:
    """Whole-table metrics only: batch_* metrics are compared arrival to arrival (batches)."""
    rows = [r for r in rows if not r["metric"].startswith("batch_")]
    latest: dict[str, tuple] = {}
    for r in rows:
        if r["layer"] != layer or not r["gate_passed"]:
            continue
        stamp = (r["checked_at"], r["run_id"])
        if r["table"] not in latest or stamp > latest[r["table"]]:
            latest[r["table"]] = stamp
    out: dict[str, dict[str, float | None]] = {}
    for r in rows:
        if r["layer"] == layer and latest.get(r["table"]) == (r["checked_at"], r["run_id"]):
            out.setdefault(r["table"], {})[r["metric"]] = r["value"]
    return out
