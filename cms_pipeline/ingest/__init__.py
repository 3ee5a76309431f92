"""Landing -> bronze: discover deliveries, load each exactly once, account for every row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cms_pipeline.config import Settings
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.discovery import Delivery, discover
from cms_pipeline.ingest.load import FileResult, load_delivery


@dataclass
class IngestReport:
    source: str
    files: list[FileResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status in ledger.DONE]

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "loaded": len(self.loaded),
            "duplicates": sum(f.status == "duplicate" for f in self.files),
            "rejected": len(self.rejected),
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_bronze": sum(f.rows_bronze for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
        }

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "totals": self.totals(),
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
    deliveries, ignored = discover(settings, source)
    if on_start:
        on_start(deliveries)
    report = IngestReport(source, ignored=ignored)
    current = ledger.read_ledger(settings)
    for delivery in deliveries:
        result = load_delivery(settings, delivery, current)
        report.files.append(result)
        if on_file:
            on_file(delivery, result)
    return report
