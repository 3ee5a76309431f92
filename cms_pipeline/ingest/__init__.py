"""Landing -> bronze: discover deliveries, load each exactly once, account for every row.

`ingest()` (here) loads every delivery found, tables side by side; the package, by idea:

    discovery     the deliveries of a landing area, each with its contract
    settle        whether a file is complete or still being copied in
    reader        the streaming CSV/ZIP reader, hashing, decoding (counting: line ends)
    header        a file's header compared with its contract
    validation    row-level checks against the contract
    rows          bronze and quarantine rows: their schemas and lineage columns
    read_pass     one pass over a file into batch folders that no commit names yet
    load          the exactly-once protocol of one delivery: quarantine, bronze and
                  ledger commits in that order, recovery of a killed attempt
    file_result   what ingestion did with one file (FileResult)
    ledger        the file ledger, keyed by content hash; claims: one process per file
    delta_writer  append-only Delta writes, one batch folder each (delta_files: reads)
    batch_report  after a commit: profile, difference, expectations, reports
    expectations  the contract's file-level expectations
    errors        errors that name file, line, column and what to do
    landing       rejected files: list them, read one again; retract: take one out
    maintenance   checkpoints and compaction of bronze
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cms_pipeline.config import Settings
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.discovery import Delivery, discover
from cms_pipeline.ingest.file_result import REJECTED_BEFORE, RETRACTED_BEFORE, FileResult
from cms_pipeline.ingest.load import load_delivery

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What one ingestion did with each file found.

    File statuses: loaded, recovered, duplicate (the bytes are in bronze); rejected (refused
    by its contract this run), rejected_before (the same bytes were refused by an earlier
    run: not read again), unsettled (still being copied in: read again next run),
    retracted_before (bytes taken out of bronze on purpose: not read again, no problem). Refused
    and unsettled files carry `error` (IngestError.to_dict(), with its `kind`).
    """

    source: str
    files: list[FileResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[FileResult]:
        return self._with(*ledger.DONE)

    @property
    def rejected(self) -> list[FileResult]:
        """Files refused by their contract in this run (recorded in the ledger now)."""
        return self._with(ledger.REJECTED)

    @property
    def rejected_before(self) -> list[FileResult]:
        """Files whose bytes an earlier run refused: skipped, still in the landing area."""
        return self._with(REJECTED_BEFORE)

    @property
    def unsettled(self) -> list[FileResult]:
        """Files still changing (being copied in): skipped, read again on the next run."""
        return self._with(ledger.UNSETTLED)

    @property
    def problems(self) -> list[FileResult]:
        """Every file not in bronze and needing someone's attention, new or not."""
        return self.rejected + self.rejected_before + self.unsettled

    @property
    def clean(self) -> bool:
        """No file refused (now or before) and none put off."""
        return not self.problems

    def _with(self, *statuses: str) -> list[FileResult]:
        return [f for f in self.files if f.status in statuses]

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "loaded": len(self.loaded),
            "duplicates": sum(f.status == "duplicate" for f in self.files),
            "rejected": len(self.rejected),
            "rejected_before": len(self.rejected_before),
            "unsettled": len(self.unsettled),
            "retracted_before": len(self._with(RETRACTED_BEFORE)),
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_bronze": sum(f.rows_bronze for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
        }

    def problem_kinds(self) -> dict[str, int]:
        """Files per error kind (errors.KINDS) among rejected, rejected_before, unsettled."""
        return dict(Counter(f.error["kind"] for f in self.problems))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "totals": self.totals(),
            "problem_kinds": self.problem_kinds(),
            "files": [f.to_dict() for f in self.files],
            "ignored": self.ignored,
        }


def ingest(
    settings: Settings,
    source: str | None = None,
    on_file: Callable[[Delivery, FileResult], None] | None = None,
    on_start: Callable[[list[Delivery]], None] | None = None,
) -> IngestReport:
    """Load every delivery found under `source` (default: the configured landing area)."""
    source = source or settings.landing
    # What is alive now (modules, config) lives for the whole run: freezing it spares every
    # garbage collection during the load from walking it (measured: a few % of the CPU).
    gc.freeze()
    deliveries, ignored = discover(settings, source)
    log.info("%d files to ingest from %s", len(deliveries), source)
    for name in ignored:
        log.info("ignored %s: no contract in config/sources matches its name", name)
    if on_start:
        on_start(deliveries)
    report = IngestReport(source, ignored=ignored)
    current = ledger.read_ledger(settings)
    results: dict[int, FileResult] = {}
    reported = threading.Lock()

    def load_in_order(queue: list[tuple[int, Delivery]]) -> None:
        for position, delivery in queue:
            result = load_delivery(settings, delivery, current)
            results[position] = result
            log_result(result)
            if on_file:
                with reported:
                    on_file(delivery, result)

    # Deliveries of different tables load side by side: one file's parse, checks and
    # writes use under two cores. One table's deliveries load in order, so each is compared
    # with the state the one before it left.
    queues: dict[str, list[tuple[int, Delivery]]] = {}
    for position, delivery in enumerate(deliveries):
        queues.setdefault(delivery.contract.table, []).append((position, delivery))
    with ThreadPoolExecutor(max_workers=settings.ingest.parallel_tables) as pool:
        for done in [pool.submit(load_in_order, q) for q in queues.values()]:
            done.result()  # an unexpected error stops the run, as it did one file at a time
    report.files = [results[i] for i in sorted(results)]
    return report


def log_result(f: FileResult) -> None:
    """One record per file (its numbers as fields for log shippers), one per warning."""
    fields = {"file": f.file, "table": f.table, "status": f.status, "sha256": f.sha256}
    if f.status in ledger.DONE:
        fields.update(rows_read=f.rows_read, rows_bronze=f.rows_bronze)
        fields.update(rows_quarantined=f.rows_quarantined, bronze_version=f.bronze_version)
        log.info(
            "%s %s into bronze.%s v%s: %s rows read = %s bronze + %s quarantined (%.1f s)",
            f.status,
            f.file,
            f.table,
            f.bronze_version,
            f"{f.rows_read:,}",
            f"{f.rows_bronze:,}",
            f"{f.rows_quarantined:,}",
            f.seconds,
            extra=fields,
        )
    elif f.status == "duplicate":
        log.info("%s: already in bronze.%s (same bytes), skipped", f.file, f.table, extra=fields)
    elif f.error:
        e = f.error
        where = f", line {e['line']}" if e.get("line") else ""
        log.warning(
            "%s %s%s: %s [%s]. %s",
            f.status.replace("_", " "),
            f.file,
            where,
            e.get("problem"),
            e.get("kind"),
            e.get("hint") or "",
            extra=fields,
        )
    for warning in f.warnings:
        log.warning("%s: %s", f.file, warning, extra=fields)
    for failure in f.expectation_failures:
        log.error("%s: expectation failed: %s", f.file, failure, extra=fields)
