"""Take a committed delivery back out of bronze: `cms-pipeline bronze retract BATCH|FILE`.

A delivery that passed its contract can still be wrong (it fails the bronze gate, or a
supplier withdraws it). Retracting it removes its rows from the current bronze version in
one Delta commit (earlier versions still read it: time travel and the run records of
builds that used it stay true), removes its quarantined rows the same way, and records a
`retracted` row in the file ledger. The next transform reads the new bronze version, so
silver and gold are built again without it; the bronze gate reconciles the ledger less
its retractions with what is left.

Order of commits, so that a process killed anywhere can run the command again: bronze,
then quarantine, then the ledger row. A delivery already gone from bronze but with no
ledger row is only recorded. The retracted bytes are not read again when they land again
(they are in the ledger); `cms-pipeline landing retry FILE` reads them on request.

Compaction may have merged the delivery's batch with others: those batches are rewritten
without its rows into a new batch folder (never changing a committed folder).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import Settings
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.delta_files import committed_files
from cms_pipeline.ingest.delta_writer import (
    PARTITION,
    BatchWriter,
    commit_rewrite,
    open_table,
    remove_actions,
    table_lock,
)
from cms_pipeline.lake import bronze_uri, quarantine_uri
from cms_pipeline.storage import filesystem

RETRACTED = ledger.RETRACTED
OPERATION = "retract"


class RetractError(ValueError):
    """The target names no committed delivery, or more than one: says what to name."""


@dataclass
class Retraction:
    source_file: str
    table: str
    sha256: str
    batch_id: str
    rows_bronze: int = 0
    rows_quarantined: int = 0
    bronze_version: int | None = None
    status: str = RETRACTED  # retracted | recorded (bronze had lost it already)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def live_deliveries(ledger_table: pa.Table) -> list[dict]:
    """Committed deliveries (loaded or recovered) not retracted since."""
    return ledger.live(ledger_table).to_pylist()


def find_deliveries(ledger_table: pa.Table, target: str) -> list[dict]:
    """The one live delivery `target` names: a batch id, a content hash (or its first 12+
    characters), a path below the landing area, or a file name."""
    live = live_deliveries(ledger_table)
    name = target.rsplit("/", 1)[-1]
    named = (
        [r for r in live if target in (r["batch_id"], r["sha256"])]
        or [r for r in live if len(target) >= 12 and r["sha256"].startswith(target)]
        or [r for r in live if r["source_file"] == target]
        or [r for r in live if r["file_name"] == name]
    )
    if not named:
        if any(
            r["status"] == RETRACTED
            and target in (r["batch_id"], r["sha256"], r["source_file"], r["file_name"])
            for r in ledger_table.to_pylist()
        ):
            raise RetractError(f"{target} is retracted already; nothing to do.")
        raise RetractError(
            f"no committed delivery is named {target!r}. Name a batch id, a file as listed "
            "by `cms-pipeline catalog` or the ingest summary, or a content hash."
        )
    if len(named) > 1:
        listed = "; ".join(f"{r['source_file']} (batch {r['batch_id']})" for r in named)
        raise RetractError(
            f"{target} names {len(named)} deliveries: {listed}. Name one by its batch id."
        )
    return named


def retract(settings: Settings, target: str) -> list[Retraction]:
    """Retract every delivery `target` names (see `find_deliveries`)."""
    deliveries = find_deliveries(ledger.read_ledger(settings), target)
    return [_retract_one(settings, row) for row in deliveries]


def _retract_one(settings: Settings, row: dict) -> Retraction:
    result = Retraction(row["file_name"], row["table"], row["sha256"], row["batch_id"])
    meta = {
        "cms.operation": OPERATION,
        "batch_id": row["batch_id"],
        "source_file": row["source_file"],
        "sha256": row["sha256"],
    }
    bronze = bronze_uri(settings, row["table"])
    result.rows_bronze, result.bronze_version = _remove_rows(bronze, row, meta)
    result.rows_quarantined, _ = _remove_rows(quarantine_uri(settings), row, meta)
    if result.rows_bronze == 0 and row["rows_bronze"]:
        # killed after an earlier attempt's bronze commit: only the ledger row is missing
        result.status, result.rows_bronze = "recorded", row["rows_bronze"]
        result.rows_quarantined = row["rows_quarantined"]
        result.notes.append("bronze no longer held it (an earlier retraction): recorded now")
    ledger.record(settings, [_ledger_row(row, result)])
    return result


def _remove_rows(uri: str, row: dict, meta: dict) -> tuple[int, int | None]:
    """Remove the delivery's rows from the table's current version in one commit:
    (rows removed, new version). Its own batch folder goes whole; a compacted batch that
    holds some of its rows is rewritten without them."""
    with table_lock(uri):
        dt = open_table(uri)
        if dt is None:
            return 0, None
        actions = pa.table(dt.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return 0, dt.version()
        batches = actions.column(f"partition.{PARTITION}")
        own = actions.filter(pc.equal(batches, row["batch_id"]))
        removed = int(pc.sum(own.column("num_records")).as_py() or 0)
        removes = remove_actions(own, data_change=True)
        adds = []
        compacted = actions.filter(pc.starts_with(batches, "compact-"))
        if compacted.num_rows:
            more_adds, more_removes, more_rows = _rewrite_without(dt, uri, compacted, row["sha256"])
            adds, removes, removed = more_adds, removes + more_removes, removed + more_rows
        if not removes:
            return 0, dt.version()
        return removed, commit_rewrite(dt, adds, removes, meta)


def _rewrite_without(dt, uri: str, compacted: pa.Table, sha256: str):
    """Compacted batches holding rows of `sha256`, rewritten without them into one new
    batch: (adds, removes, rows removed)."""
    import pyarrow.parquet as pq

    data_schema = pa.schema([f for f in pa.schema(dt.schema().to_arrow()) if f.name != PARTITION])
    batch_ids = set(compacted.column(f"partition.{PARTITION}").to_pylist())
    touched, kept, removed = set(), [], 0
    for file_uri in committed_files(dt, batch_ids):
        fs, path = filesystem(file_uri)
        with fs.open(path, "rb") as f:
            data = pq.read_table(f)
        hit = pc.equal(data.column("_source_sha256"), sha256)
        if n := int(pc.sum(hit).as_py() or 0):
            touched.add(file_uri)
            removed += n
            kept.append(data.filter(pc.invert(hit)))
    if not touched:
        return [], [], 0
    writer = BatchWriter(uri, f"compact-{uuid.uuid4().hex[:12]}", data_schema)
    for table in kept:
        writer.write(table.select(data_schema.names))
    paths = compacted.column("path").to_pylist()
    hits = pa.array([any(u.endswith(p) for u in touched) for p in paths])
    return writer.finish(), remove_actions(compacted.filter(hits), data_change=True), removed


def _ledger_row(row: dict, result: Retraction) -> dict:
    return {
        **{k: row[k] for k in ("sha256", "file_name", "source_file", "size_bytes", "source")},
        "table": row["table"],
        "batch_id": row["batch_id"],
        "status": RETRACTED,
        "rows_read": row["rows_read"],
        "rows_bronze": result.rows_bronze,
        "rows_quarantined": result.rows_quarantined,
        "bronze_version": result.bronze_version,
        "changed_delivery": False,
        "warnings": json.dumps(result.notes),
        "error": None,
        "seconds": 0.0,
        "ingested_at": datetime.now(UTC),
    }
