"""One pass over a delivery: its header checked against the contract (and its
`on_schema_change` policy), its rows checked and written into bronze and quarantine batch
folders that no commit names yet. Committing them is load.py's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from cms_pipeline.config import Settings, SourceContract
from cms_pipeline.ingest.batch_report import new_profiler
from cms_pipeline.ingest.counting import LineCountingReader
from cms_pipeline.ingest.delta_writer import Background, BackgroundWriter, BatchWriter
from cms_pipeline.ingest.discovery import Delivery
from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.ingest.file_result import FileResult
from cms_pipeline.ingest.header import HeaderCheck, check_header
from cms_pipeline.ingest.reader import (
    LineBatch,
    ParseFailure,
    first_unclosed_quote,
    multiline_error,
    open_delivery,
    read_header,
    stream_batches,
)
from cms_pipeline.ingest.rows import QUARANTINE_SCHEMA, Lineage, bronze_schema, dictionary_columns
from cms_pipeline.ingest.validation import encodes, find_violations, plain
from cms_pipeline.lake import bronze_uri, quarantine_uri
from cms_pipeline.profiling.profilers import Profiler


class ReadPass(NamedTuple):
    """What a pass wrote, not committed yet."""

    writer: BackgroundWriter | None  # the bronze rows; None when all rows are quarantined
    quarantine: BatchWriter
    physical: int  # the file's data lines (without the header)
    profiler: Profiler


def read_pass(
    settings: Settings, delivery: Delivery, result: FileResult, batch_id: str, exact: bool
) -> ReadPass:
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
        lineage = Lineage(delivery, result.sha256, ingested_at)
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
    return ReadPass(writer, quarantine, physical, profiler)


def row_count_error(delivery: Delivery, physical: int, rows: int) -> IngestError:
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


def reject_empty(delivery: Delivery, result: FileResult) -> None:
    if result.rows_read == 0:
        raise IngestError(
            delivery.relative,
            "the file has a header but no data rows",
            "Land the complete file; an empty delivery is not loaded.",
            line=2,
            kind="empty",
        )


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
