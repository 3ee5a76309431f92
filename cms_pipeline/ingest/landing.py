"""Rejected files of the landing area: list them, read one again on request.

A refused file's bytes are skipped by every later ingestion (ledger.rejections); a
`retry` ledger row lifts that for those bytes, and the file is then loaded like any
delivery (and refused again, with a new row, if it still breaks its contract).
"""

from __future__ import annotations

from cms_pipeline.config import Settings
from cms_pipeline.ingest import ledger
from cms_pipeline.ingest.discovery import Delivery, discover
from cms_pipeline.ingest.file_result import FileResult
from cms_pipeline.ingest.load import ledger_row, load_delivery
from cms_pipeline.ingest.reader import sha256_of
from cms_pipeline.storage import filesystem


class LandingError(LookupError):
    """The file asked for is not a delivery of the landing area."""


def rejected_files(settings: Settings) -> list[dict]:
    """Bytes rejected and not retried since, newest first: file, reason, what to do.
    A rejection is left out once other bytes of that file name were loaded after it."""
    current = ledger.read_ledger(settings)
    rows = [
        {
            "file": row["source_file"],
            "table": row["table"],
            "sha256": row["sha256"],
            "size_bytes": row["size_bytes"],
            "rejected_at": row["ingested_at"],
            **{k: row["error"].get(k) for k in ("kind", "line", "column", "problem", "hint")},
        }
        for row in ledger.rejections(current).values()
        if not _loaded_since(current, row["file_name"], row["ingested_at"])
    ]
    return sorted(rows, key=lambda r: r["rejected_at"], reverse=True)


def _loaded_since(current, file_name: str, when) -> bool:
    return any(
        r["ingested_at"] > when
        for r in ledger.done_under_name(current, file_name).select(["ingested_at"]).to_pylist()
    )


def find_delivery(settings: Settings, file: str, source: str | None = None) -> Delivery:
    """The delivery `file` names: a path or URI, or a name (or path below the landing
    root) in `source` (default: the configured landing area)."""
    fs, path = filesystem(file)
    if fs.isfile(path):
        found, _ignored = discover(settings, file)
        if not found:
            raise LandingError(
                f"{file}: no contract in config/sources matches this file name; "
                "name it as CMS does (e.g. DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv)"
            )
        return found[0]
    source = source or settings.landing
    found, _ignored = discover(settings, source)
    matches = [d for d in found if file in (d.relative, d.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise LandingError(f"{file}: no such delivery in {source} (give its path or its name)")
    names = ", ".join(d.relative for d in matches)
    raise LandingError(f"{file}: {len(matches)} deliveries have this name ({names}): give one")


def retry(settings: Settings, delivery: Delivery) -> FileResult:
    """Read `delivery` again even if its bytes were refused (or retracted) before."""
    sha, size = sha256_of(delivery.uri)
    current = ledger.read_ledger(settings)
    if sha in ledger.rejected_hashes(current) or sha in ledger.retractions(current):
        mark = FileResult(delivery.relative, delivery.contract.table, ledger.RETRY, sha, size)
        mark.warnings.append("read again on request (cms-pipeline landing retry)")
        ledger.record(settings, [ledger_row(delivery, mark)])
    return load_delivery(settings, delivery)
