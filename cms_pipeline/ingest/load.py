"""Load one delivery into its bronze table, exactly once, losing no row.

Order of commits, chosen so that a process killed anywhere can be rerun safely:
1. quarantine rows (own batch folder, one Delta commit),
2. bronze rows (own batch folder, one Delta commit),
3. the ledger row (the file is done).
A rerun that finds the bronze batch committed but no ledger row only writes the ledger
row (counts taken from the committed batches); one that finds no bronze batch drops the
quarantine leftovers of the earlier attempt and loads the file again.

A file refused by its contract (IngestError) commits nothing and gets one `rejected`
ledger row; the same bytes are then skipped as `rejected_before` until retried. A file
still being copied in is `unsettled`: skipped, and read again next run.

Reading the file into batch folders that no commit names yet is read_pass.py's; what
its rows are (schemas, lineage) is rows.py's.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import Settings
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.batch_report import write_reports
from cms_pipeline.ingest.claims import claim
from cms_pipeline.ingest.delta_writer import (
    PARTITION,
    batches_in_table,
    commit_batch,
    open_table,
    table_lock,
)
from cms_pipeline.ingest.discovery import Delivery
from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.ingest.file_result import REJECTED_BEFORE, RETRACTED_BEFORE, FileResult
from cms_pipeline.ingest.read_pass import read_pass, reject_empty, row_count_error
from cms_pipeline.ingest.reader import NeedsExactPass, sha256_of
from cms_pipeline.ingest.rows import QUARANTINE_SCHEMA
from cms_pipeline.ingest.settle import FileState, check_unchanged, gone, settled_state
from cms_pipeline.lake import bronze_uri, meta_uri, quarantine_uri
from cms_pipeline.storage import filesystem, join


def load_delivery(
    settings: Settings, delivery: Delivery, ledger_table: pa.Table | None = None
) -> FileResult:
    started = time.monotonic()
    contract = delivery.contract
    result = FileResult(delivery.relative, contract.table, "duplicate")
    try:
        state = settled_state(
            delivery.uri, delivery.relative, settings.ingest.settle_seconds, delivery.found_as
        )
        result.sha256, result.size_bytes = sha256_of(delivery.uri)
        check_unchanged(delivery.uri, delivery.relative, state, when="while it was hashed")
    except (IngestError, FileNotFoundError) as exc:  # being copied in, or gone: put off
        _refuse(result, exc if isinstance(exc, IngestError) else gone(delivery.relative))
        result.seconds = round(time.monotonic() - started, 3)
        ledger.record(settings, [ledger_row(delivery, result)])
        return result
    sha = result.sha256
    current = ledger_table if ledger_table is not None else ledger.read_ledger(settings)
    if _known(current, result):
        return result
    with claim(meta_uri(settings, "claims"), sha):
        current = ledger.read_ledger(settings)  # another process may have finished it
        if _known(current, result):
            return result
        seen = ledger.hashes_seen_for(current, delivery.name)
        result.changed_delivery = bool(seen - {sha})
        if result.changed_delivery:
            result.warnings.append(
                f"changed delivery: {delivery.name} was loaded before with other bytes"
            )
        recovered = _recover(settings, delivery, result)
        if recovered is None:
            attempts: list[str] = []  # batch folders this attempt wrote
            try:
                previous = ledger.batches_for(current, delivery.name)
                _load(settings, delivery, result, previous, state, attempts)
                _discard(settings, contract.table, attempts[:-1])  # a fast pass given up
            except IngestError as exc:
                _refuse(result, exc)
                _discard(settings, contract.table, attempts)
        result.seconds = round(time.monotonic() - started, 3)
        ledger.record(settings, [ledger_row(delivery, result)])
    return result


def _known(current: pa.Table, result: FileResult) -> bool:
    """True when the ledger already decided these bytes: loaded, or refused before."""
    if result.sha256 in ledger.done_hashes(current):
        return True  # result.status is "duplicate"
    if (gone := ledger.retractions(current).get(result.sha256)) is not None:
        result.status, result.batch_id = RETRACTED_BEFORE, gone["batch_id"]
        result.warnings.append(
            f"retracted on {gone['ingested_at']:%Y-%m-%d %H:%M} UTC and not read again; "
            f"`cms-pipeline landing retry {result.file}` reads these bytes again"
        )
        return True
    earlier = ledger.rejections(current).get(result.sha256)
    if earlier is None:
        return False
    result.status, result.error = REJECTED_BEFORE, earlier["error"]
    when = earlier["ingested_at"]
    result.warnings.append(
        f"refused on {when:%Y-%m-%d %H:%M} UTC and not read again; land corrected bytes, "
        f"or `cms-pipeline landing retry {result.file}` to read these again"
    )
    return True


def _refuse(result: FileResult, exc: IngestError) -> None:
    """The file is refused (or, unsettled, put off): nothing of it was stored."""
    result.status = ledger.UNSETTLED if exc.kind == "unsettled" else ledger.REJECTED
    result.error = exc.to_dict()
    result.rows_read = result.rows_bronze = result.rows_quarantined = 0
    result.batch_id = result.bronze_version = None


def _discard(settings: Settings, table: str, batch_ids: list[str]) -> None:
    """Delete the batch folders of a refused attempt: no commit names them (their ids are
    new to this attempt), so no table version can ever read them."""
    for uri in (bronze_uri(settings, table), quarantine_uri(settings)):
        fs, base = filesystem(uri)
        for batch_id in batch_ids:
            folder = join(base, f"{PARTITION}={batch_id}")
            if fs.exists(folder):
                fs.rm(folder, recursive=True)


def _recover(settings: Settings, delivery: Delivery, result: FileResult) -> FileResult | None:
    """Finish an attempt that committed bronze but died before its ledger row."""
    prefix = result.sha256[:16]
    bronze = open_table(bronze_uri(settings, delivery.contract.table))
    committed = sorted(b for b in batches_in_table(bronze) if b.startswith(prefix))
    quarantine = open_table(quarantine_uri(settings))
    leftovers = [b for b in batches_in_table(quarantine) if b.startswith(prefix)]
    if not committed:
        if leftovers:  # quarantine rows of an attempt whose bronze never committed
            with table_lock(quarantine_uri(settings)):
                quarantine.delete(" OR ".join(f"{PARTITION} = '{b}'" for b in leftovers))
        return None
    batch_id = committed[-1]
    result.status, result.batch_id = "recovered", batch_id
    result.rows_bronze = _rows_in_batch(bronze, batch_id)
    result.rows_quarantined = _rows_in_batch(quarantine, batch_id) if batch_id in leftovers else 0
    result.rows_read = result.rows_bronze + result.rows_quarantined
    result.bronze_version = bronze.version()
    result.warnings.append(
        "an earlier run committed this file but not its ledger row: recorded now"
    )
    return result


def _rows_in_batch(dt, batch_id: str) -> int:
    actions = pa.table(dt.get_add_actions(flatten=True))
    mask = pc.equal(actions.column(f"partition.{PARTITION}"), batch_id)
    return int(pc.sum(actions.filter(mask).column("num_records")).as_py() or 0)


def _load(
    settings: Settings,
    delivery: Delivery,
    result: FileResult,
    previous_batches: list[str],
    state: FileState,
    attempts: list[str],
) -> None:
    """Read and commit the file; `attempts` gets each batch id written, committed or not."""
    try:
        attempts.append(_batch_id(result))
        attempt = read_pass(settings, delivery, result, attempts[-1], exact=False)
    except NeedsExactPass:
        # A row the fast pass cannot place: read again, row by row. The first attempt's
        # files are in a batch folder no commit will ever name (deleted after).
        result.rows_read = 0
        attempts.append(_batch_id(result))
        attempt = read_pass(settings, delivery, result, attempts[-1], exact=True)
        result.warnings = list(dict.fromkeys(result.warnings))  # the header was read twice
    writer, quarantine, physical, profiler = attempt
    batch_id = quarantine.batch_id
    contract = delivery.contract
    # The bytes read must be the bytes hashed (a copy still going on changes them).
    check_unchanged(delivery.uri, delivery.relative, state)
    if physical != result.rows_read:
        raise row_count_error(delivery, physical, result.rows_read)
    result.rows_quarantined = quarantine.rows
    result.rows_bronze = writer.rows if writer else 0
    reject_empty(delivery, result)
    meta = {"batch_id": batch_id, "source_file": delivery.relative, "sha256": result.sha256}
    q_adds = quarantine.finish()
    if q_adds:
        commit_batch(quarantine_uri(settings), QUARANTINE_SCHEMA, q_adds, meta)
    before = open_table(bronze_uri(settings, contract.table))
    if writer is not None and (adds := writer.finish()):
        result.bronze_version = commit_batch(
            bronze_uri(settings, contract.table), writer.schema, adds, meta
        )
    result.status, result.batch_id = "loaded", batch_id
    assert result.rows_read == result.rows_bronze + result.rows_quarantined
    if writer is not None:
        report = write_reports(
            settings, contract, profiler, before.version() if before else None, previous_batches
        )
        result.changes = report["summary"]
        result.expectation_failures = report["expectation_failures"]
        result.report_html = report["report_html"]


def _batch_id(result: FileResult) -> str:
    return f"{result.sha256[:16]}-{uuid.uuid4().hex[:8]}"


def ledger_row(delivery: Delivery, result: FileResult) -> dict:
    return {
        "sha256": result.sha256,
        "file_name": delivery.name,
        "source_file": delivery.relative,
        "size_bytes": result.size_bytes,
        "source": delivery.contract.name,
        "table": delivery.contract.table,
        "batch_id": result.batch_id,
        "status": result.status,
        "rows_read": result.rows_read,
        "rows_bronze": result.rows_bronze,
        "rows_quarantined": result.rows_quarantined,
        "bronze_version": result.bronze_version,
        "changed_delivery": result.changed_delivery,
        "warnings": json.dumps(result.warnings),
        "error": json.dumps(result.error) if result.error else None,
        "seconds": result.seconds,
        "ingested_at": datetime.now(UTC),
    }
