"""What ingestion did with one delivery (FileResult), and the statuses a FileResult has
that no ledger row has."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
