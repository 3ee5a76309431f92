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
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import Settings, SourceContract
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.batch_report import new_profiler, write_reports
from cms_pipeline.ingest.claims import claim
from cms_pipeline.ingest.counting import LineCountingReader
from cms_pipeline.ingest.delta_writer import (
    PARTITION,
    Background,
    BackgroundWriter,
    BatchWriter,
    batches_in_table,
    commit_batch,
    open_table,
    table_lock,
)
from cms_pipeline.ingest.discovery import Delivery
from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.ingest.header import HeaderCheck, check_header
from cms_pipeline.ingest.reader import (
    LineBatch,
    NeedsExactPass,
    ParseFailure,
    decode_line,
    first_unclosed_quote,
    multiline_error,
    open_delivery,
    read_header,
    sha256_of,
    stream_batches,
)
from cms_pipeline.ingest.settle import FileState, check_unchanged, gone, settled_state
from cms_pipeline.ingest.validation import encodes, find_violations, plain
from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS, bronze_uri, meta_uri, quarantine_uri
from cms_pipeline.storage import filesystem, join

QUARANTINE_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("_source_file", pa.string()),
        ("_source_sha256", pa.string()),
        ("_source_line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("raw_line", pa.string()),
        ("_ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


REJECTED_BEFORE = "rejected_before"  # a FileResult status, never a ledger row's
RETRACTED_BEFORE = "retracted_before"  # bytes taken out by `bronze retract`: not read again


@dataclass
class FileResult:
    file: str
    table: str
    # loaded | recovered | duplicate: the bytes are in bronze;
    # rejected (now) | rejected_before (skipped, refused by an earlier run) | unsettled
    status: str
    sha256: str = ""
    size_bytes: int = 0
    batch_id: str | None = None
    rows_read: int = 0
    rows_bronze: int = 0
    rows_quarantined: int = 0
    bronze_version: int | None = None
    changed_delivery: bool = False
    warnings: list[str] = field(default_factory=list)
    error: dict | None = None  # IngestError.to_dict(): kind, file, line, column, problem, hint
    expectation_failures: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # difference from the table's previous state
    report_html: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def bronze_schema(source_columns: list[str]) -> pa.Schema:
    """Bronze data columns: source values as text, file attributes, lineage."""
    return pa.schema(
        [pa.field(c, pa.string()) for c in source_columns]
        + [pa.field(c, pa.string()) for c in FILE_ATTRIBUTE_COLUMNS]
        + [
            pa.field("_source_file", pa.string()),
            pa.field("_source_sha256", pa.string()),
            pa.field("_source_line", pa.int64()),
            pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
        ]
    )


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
        attempt = _read(settings, delivery, result, attempts[-1], exact=False)
    except NeedsExactPass:
        # A row the fast pass cannot place: read again, row by row. The first attempt's
        # files are in a batch folder no commit will ever name (deleted after).
        result.rows_read = 0
        attempts.append(_batch_id(result))
        attempt = _read(settings, delivery, result, attempts[-1], exact=True)
        result.warnings = list(dict.fromkeys(result.warnings))  # the header was read twice
    writer, quarantine, physical, profiler = attempt
    batch_id = quarantine.batch_id
    contract = delivery.contract
    # The bytes read must be the bytes hashed (a copy still going on changes them).
    check_unchanged(delivery.uri, delivery.relative, state)
    if physical != result.rows_read:
        raise _row_count_error(delivery, physical, result.rows_read)
    result.rows_quarantined = quarantine.rows
    result.rows_bronze = writer.rows if writer else 0
    _reject_empty(delivery, result)
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


def _row_count_error(delivery: Delivery, physical: int, rows: int) -> IngestError:
    """Why the rows differ from the lines: most often a quoted value with a line break
    (one row over two lines), found by one more pass over the lines."""
    counts = f"the file has {physical} data lines but the reader returned {rows} rows"
    with open_delivery(delivery.uri, delivery.relative) as (raw, _member):
        line = first_unclosed_quote(raw)
    if line is not None:
        return multiline_error(delivery.relative, line, counts)
    return IngestError(
        delivery.relative,
        counts,
        "Check the file's line ends and quoting; nothing was stored.",
        kind="row_count_mismatch",
    )


def _read(settings: Settings, delivery: Delivery, result: FileResult, batch_id: str, exact: bool):
    """Stream the file into (uncommitted) bronze and quarantine batch folders."""
    contract = delivery.contract
    ingested_at = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    quarantine = BatchWriter(quarantine_uri(settings), batch_id, QUARANTINE_SCHEMA)
    failures: list[ParseFailure] | None = [] if exact else None
    with open_delivery(delivery.uri, delivery.relative) as (raw, _member):
        stream = LineCountingReader(raw)
        header = _header(stream, delivery)
        columns, policy_reason = _apply_policy(delivery, header, result)
        writer = None
        profiler = new_profiler(contract, delivery.relative, batch_id)
        if policy_reason is None:
            columns = _output_columns(contract, header)
            writer = BackgroundWriter(
                BatchWriter(
                    bronze_uri(settings, contract.table),
                    batch_id,
                    bronze_schema(columns),
                    target_file_rows=settings.ingest.target_file_rows,
                    dictionary_columns=dictionary_columns(contract, columns),
                ),
                on_batch=profiler.update,  # profiled in a thread of its own, off the parse path
            )
        lineage = _Lineage(delivery, result.sha256, ingested_at)
        specs = {c.name: c for c in contract.columns}

        def route(lb: LineBatch) -> None:
            good, bad = _split(lb, contract)
            writer.write(lineage.bronze(good.batch, good.lines, columns))
            if bad is not None:
                quarantine.write(lineage.quarantine(*bad))

        # The checks run in a thread of their own too: this one only parses.
        checks = Background(route) if writer is not None else None
        try:
            encoded = [c for c in header.names if encodes(specs.get(c))]
            batches = stream_batches(
                stream,
                header.names,
                contract.delimiter,
                failures,
                encoded=encoded,
                name=delivery.relative,
            )
            for lb in batches:
                result.rows_read += lb.batch.num_rows
                if checks is None:
                    _quarantine_all(quarantine, lb, lineage, contract, policy_reason)
                    continue
                checks.put(lb)
        finally:
            try:
                if checks is not None:
                    checks.close()  # every batch routed before the writer stops
            finally:
                if writer is not None:
                    writer.close()
        if failures:
            result.rows_read += len(failures)
            quarantine.write(lineage.parse_failures(failures))
        physical = stream.lines - 1  # without the header
    return writer, quarantine, physical, profiler


def _header(stream: LineCountingReader, delivery: Delivery) -> HeaderCheck:
    """The first line, compared with the contract: refused when there is none, or when
    it is the whole file (no line end) and not the header."""
    contract = delivery.contract
    first_line = read_header(stream, delivery.relative)
    if not first_line.strip(b"\xef\xbb\xbf\r\n\t "):
        raise IngestError(
            delivery.relative,
            "the file is empty (no header row)",
            "Land the complete file; an empty delivery is not loaded.",
            line=1,
            kind="empty",
        )
    header = check_header(first_line, contract.column_names, contract.delimiter, contract.encoding)
    if not first_line.endswith(b"\n") and not header.matches:
        raise IngestError(
            delivery.relative,
            f"the whole file is one line of {len(first_line):,} bytes without a line end, "
            "and not the contract's header",
            "Land the file as CMS ships it (one row per line, LF or CRLF line ends); "
            "nothing was stored.",
            line=1,
            kind="no_line_end",
        )
    return header


def _apply_policy(delivery: Delivery, header: HeaderCheck, result: FileResult):
    """(columns, quarantine reason): reason set when every row must go to quarantine."""
    contract = delivery.contract
    if header.matches:
        return contract.column_names, None
    where = f"config/sources: {contract.name}.on_schema_change"
    if header.problem or contract.on_schema_change == "reject":
        hint = (
            "Fix the file and land it again"
            if header.problem
            else f"Fix the file, or set {where} to 'quarantine' or 'evolve'"
        ) + "; nothing was stored."
        raise IngestError(
            delivery.relative,
            f"header does not match the contract: {header.describe()}",
            hint,
            line=1,
            kind="header_mismatch",
        )
    if contract.on_schema_change == "quarantine":
        result.warnings.append(f"header differs ({header.describe()}): all rows quarantined")
        return header.names, f"header differs from the contract: {header.describe()}"
    result.warnings.append(f"schema evolved: {header.describe()}")
    return header.names, None


def _output_columns(contract: SourceContract, header: HeaderCheck) -> list[str]:
    """Contract columns in contract order, then columns only the file has (evolution)."""
    return contract.column_names + [n for n in header.names if n not in contract.column_names]


def _split(lb: LineBatch, contract: SourceContract):
    violations = find_violations(lb.batch, contract)
    if not len(violations):
        # the checks' dictionary encodings go on to profiling and the Parquet writer
        batch = lb.batch
        arrays = [violations.encoded.get(c, batch.column(c)) for c in batch.schema.names]
        return LineBatch(
            pa.RecordBatch.from_arrays(arrays, names=batch.schema.names), lb.lines
        ), None
    # Rows leave the batch: the plain values go on, so that no dictionary carries a
    # quarantined value into bronze (the writer encodes them itself).
    lb = LineBatch(_plain(lb.batch), lb.lines)
    keep = np.ones(lb.batch.num_rows, dtype=bool)
    keep[violations.rows] = False
    good = LineBatch(lb.batch.filter(pa.array(keep)), lb.lines[keep])
    bad_batch = lb.batch.take(pa.array(violations.rows))
    return good, (bad_batch, lb.lines[violations.rows], violations.columns, violations.reasons)


def _quarantine_all(writer: BatchWriter, lb: LineBatch, lineage, contract, reason: str) -> None:
    n = lb.batch.num_rows
    writer.write(lineage.quarantine(_plain(lb.batch), lb.lines, [None] * n, [reason] * n))


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with every column as plain text."""
    return pa.RecordBatch.from_arrays([plain(c) for c in batch.columns], names=batch.schema.names)


def _reject_empty(delivery: Delivery, result: FileResult) -> None:
    if result.rows_read == 0:
        raise IngestError(
            delivery.relative,
            "the file has a header but no data rows",
            "Land the complete file; an empty delivery is not loaded.",
            line=2,
            kind="empty",
        )


@dataclass
class _Lineage:
    delivery: Delivery
    sha256: str
    ingested_at: pa.Scalar

    def bronze(self, batch: pa.RecordBatch, lines: np.ndarray, columns: list[str]) -> pa.Table:
        """Bronze rows: text columns plain or dictionary-encoded (the writer's choice)."""
        n = batch.num_rows
        have = set(batch.schema.names)
        arrays = [batch.column(c) if c in have else pa.nulls(n, pa.string()) for c in columns]
        attrs = [_constant(self.delivery.attributes.get(c), n) for c in FILE_ATTRIBUTE_COLUMNS]
        lineage = [
            _constant(self.delivery.relative, n),
            _constant(self.sha256, n),
            pa.array(lines, pa.int64()),
            pa.repeat(self.ingested_at, n),
        ]
        return pa.Table.from_arrays(arrays + attrs + lineage, names=bronze_schema(columns).names)

    def quarantine(self, batch, lines, columns, reasons) -> pa.Table:
        n = batch.num_rows
        raw = _raw_lines(batch, self.delivery.contract.delimiter)
        return pa.Table.from_arrays(
            [
                pa.repeat(pa.scalar(self.delivery.contract.table), n),
                pa.repeat(pa.scalar(self.delivery.relative), n),
                pa.repeat(pa.scalar(self.sha256), n),
                pa.array(lines, pa.int64()),
                pa.array(columns, pa.string()),
                pa.array(reasons, pa.string()),
                pa.array(raw, pa.string()),
                pa.repeat(self.ingested_at, n),
            ],
            schema=QUARANTINE_SCHEMA,
        )

    def parse_failures(self, failures: list[ParseFailure]) -> pa.Table:
        n = len(failures)
        return pa.Table.from_arrays(
            [
                pa.repeat(pa.scalar(self.delivery.contract.table), n),
                pa.repeat(pa.scalar(self.delivery.relative), n),
                pa.repeat(pa.scalar(self.sha256), n),
                pa.array([f.line for f in failures], pa.int64()),
                pa.nulls(n, pa.string()),
                pa.array([f"expected {f.expected} fields, found {f.actual}" for f in failures]),
                pa.array([decode_line(f.text) for f in failures], pa.string()),
                pa.repeat(self.ingested_at, n),
            ],
            schema=QUARANTINE_SCHEMA,
        )


def _constant(value: str | None, n: int) -> pa.Array:
    """A text column holding one value: encoded as such, so nothing hashes it per row."""
    if value is None:
        indices = pa.nulls(n, pa.int32())
    else:
        indices = pa.array(np.zeros(n, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value] if value else [], pa.string()))


def dictionary_columns(contract: SourceContract, columns: list[str]) -> list[str]:
    """Bronze text columns stored dictionary-encoded: all but ids (nearly all distinct),
    matching what validation encodes, so the writer takes its encodings as they are."""
    ids = {c.name for c in contract.columns if not encodes(c)}
    text = [*columns, *FILE_ATTRIBUTE_COLUMNS, "_source_file", "_source_sha256"]
    return [c for c in text if c not in ids]


def _raw_lines(batch: pa.RecordBatch, delimiter: str) -> list[str]:
    """The row as it stood in the file, rebuilt from its fields (CMS files quote no values)."""
    binary = [batch.column(i).cast(pa.binary()) for i in range(batch.num_columns)]
    joined = pc.binary_join_element_wise(
        *binary,
        pa.scalar(delimiter.encode(), pa.binary()),
        null_handling="replace",
        null_replacement=b"",
    )
    return [decode_line(v) for v in joined.to_pylist()]


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
