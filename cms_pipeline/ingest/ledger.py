"""The file ledger: one Delta row per ingestion outcome, keyed by content hash.

A file is done when the ledger holds a `loaded` (or `recovered`) row for its hash; the
same bytes again are then a no-op. Bytes refused by their contract get one `rejected`
row and are not read again, until `cms-pipeline landing retry` adds a `retry` row for
them. An `unsettled` row (a file still being copied) decides nothing: it is read again.
A `retracted` row (`cms-pipeline bronze retract`) takes a loaded delivery's batch out:
its bytes are not read again either, until a `retry` row.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import Settings
from cms_pipeline.ingest.delta_files import read_table
from cms_pipeline.ingest.delta_writer import append_rows, open_table
from cms_pipeline.lake import meta_uri

DONE = ("loaded", "recovered")
REJECTED = "rejected"
RETRY = "retry"
UNSETTLED = "unsettled"
RETRACTED = "retracted"
# The statuses that decide whether a hash is read again; the latest of them counts.
DECISIVE = (*DONE, REJECTED, RETRY, RETRACTED)

SCHEMA = pa.schema(
    [
        ("sha256", pa.string()),
        ("file_name", pa.string()),
        ("source_file", pa.string()),
        ("size_bytes", pa.int64()),
        ("source", pa.string()),
        ("table", pa.string()),
        ("batch_id", pa.string()),
        ("status", pa.string()),
        ("rows_read", pa.int64()),
        ("rows_bronze", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("bronze_version", pa.int64()),
        ("changed_delivery", pa.bool_()),
        ("warnings", pa.string()),
        ("error", pa.string()),
        ("seconds", pa.float64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


def ledger_uri(settings: Settings) -> str:
    return meta_uri(settings, "file_ledger")


def read_ledger(settings: Settings) -> pa.Table:
    dt = open_table(ledger_uri(settings))
    table = None if dt is None else read_table(dt)
    if table is None:  # not Schema.empty_table(), which imports pandas (0.4 s at start-up)
        return pa.Table.from_batches([], schema=SCHEMA)
    return table.select(SCHEMA.names).cast(SCHEMA)


def retracted_batches(ledger: pa.Table) -> set[str]:
    mask = pc.equal(ledger.column("status"), RETRACTED)
    return {b for b in ledger.filter(mask).column("batch_id").to_pylist() if b}


def live(ledger: pa.Table) -> pa.Table:
    """Loaded (or recovered) rows whose batch is still in bronze (not retracted)."""
    mask = pc.is_in(ledger.column("status"), value_set=pa.array(DONE))
    gone = retracted_batches(ledger)
    if gone:
        out = pc.fill_null(pc.is_in(ledger.column("batch_id"), pa.array(list(gone))), False)
        mask = pc.and_(mask, pc.invert(out))
    return ledger.filter(mask)


def delivered_tables(settings: Settings) -> set[str]:
    """Bronze tables at least one live delivery reached (the others are "not delivered")."""
    return set(live(read_ledger(settings)).column("table").to_pylist())


def done_hashes(ledger: pa.Table) -> set[str]:
    """Bytes loaded and still in bronze: the same bytes again are a no-op."""
    return set(live(ledger).column("sha256").to_pylist())


def _latest_decisive(ledger: pa.Table, hashes: pa.Array) -> dict[str, dict]:
    mask = pc.and_(
        pc.is_in(ledger.column("sha256"), value_set=hashes),
        pc.is_in(ledger.column("status"), value_set=pa.array(DECISIVE)),
    )
    latest: dict[str, dict] = {}
    # ingested_at orders the rows (Delta files come back in no set order); the sort is
    # stable, so rows of one instant keep their order.
    for row in ledger.filter(mask).sort_by([("ingested_at", "ascending")]).to_pylist():
        latest[row["sha256"]] = row
    return latest


def retractions(ledger: pa.Table) -> dict[str, dict]:
    """Hashes whose latest decisive row is a retraction (not retried since), with it."""
    gone = ledger.filter(pc.equal(ledger.column("status"), RETRACTED)).column("sha256")
    if not len(gone):
        return {}
    latest = _latest_decisive(ledger, gone.combine_chunks())
    return {sha: row for sha, row in latest.items() if row["status"] == RETRACTED}


def rejections(ledger: pa.Table) -> dict[str, dict]:
    """Hashes whose latest decisive row is a rejection, with that row (its `error` parsed:
    kind, file, line, column, problem, hint)."""
    refused = ledger.filter(pc.equal(ledger.column("status"), REJECTED)).column("sha256")
    if not len(refused):
        return {}
    latest = _latest_decisive(ledger, refused.combine_chunks())
    found = {}
    for sha, row in latest.items():
        if row["status"] == REJECTED:
            error = json.loads(row["error"]) if row["error"] else {}
            error.setdefault("kind", "invalid")  # rows written before errors had kinds
            found[sha] = {**row, "error": error}
    return found


def rejected_hashes(ledger: pa.Table) -> set[str]:
    """Bytes refused before and not retried since: not read again."""
    return set(rejections(ledger))


def done_under_name(ledger: pa.Table, file_name: str) -> pa.Table:
    """Live deliveries under this file name (retracted ones are no earlier delivery)."""
    rows = live(ledger)
    return rows.filter(pc.equal(rows.column("file_name"), file_name))


def hashes_seen_for(ledger: pa.Table, file_name: str) -> set[str]:
    """Hashes already loaded under this file name (a different one means a changed delivery)."""
    return set(done_under_name(ledger, file_name).column("sha256").to_pylist())


def batches_for(ledger: pa.Table, file_name: str) -> list[str]:
    """Bronze batches of earlier loads of this file name (the previous deliveries)."""
    return [b for b in done_under_name(ledger, file_name).column("batch_id").to_pylist() if b]


def record(settings: Settings, rows: list[dict]) -> None:
    if rows:
        append_rows(ledger_uri(settings), pa.Table.from_pylist(rows, schema=SCHEMA))
