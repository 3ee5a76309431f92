"""After a file is committed: its profile, its difference from the table's previous
state, and the reports a person reads (Delta rows, JSON and HTML per batch)."""

from __future__ import annotations

import pyarrow.compute as pc

from cms_pipeline.batch_diff.compare import diff_batch
from cms_pipeline.config import Settings, SourceContract
from cms_pipeline.ingest.delta_files import committed_rows, read_batches, read_table
from cms_pipeline.ingest.delta_writer import append_rows, open_table
from cms_pipeline.ingest.expectations import check_expectations
from cms_pipeline.lake import bronze_uri, meta_uri, reports_dir
from cms_pipeline.profiling.profilers import KeySet, Profiler
from cms_pipeline.profiling.records import BatchProfile
from cms_pipeline.reports import write_batch_report


def new_profiler(contract: SourceContract, source_file: str, batch_id: str) -> Profiler:
    # Keys that are file attributes (the beneficiary year) are checked within one file,
    # where they are constant, so only the source columns of the key are tracked.
    keys = [k for k in contract.keys if k in contract.column_names]
    return Profiler(contract, source_file=source_file, batch_id=batch_id, key_columns=keys)


def previous_profile(settings: Settings, table: str) -> BatchProfile | None:
    dt = open_table(meta_uri(settings, "profiles"))
    if dt is None:
        return None
    rows = read_table(dt)
    rows = rows.filter(pc.equal(rows["table"], table)) if rows is not None else None
    if rows is None or rows.num_rows == 0:
        return None
    latest = pc.max(rows["profiled_at"])
    return BatchProfile.from_arrow(rows.filter(pc.equal(rows["profiled_at"], latest)))


def _keys(dt, key_columns: list[str], batch_ids: list[str] | None = None) -> KeySet:
    return KeySet.from_batches(read_batches(dt, key_columns, batch_ids), key_columns)


def write_reports(
    settings: Settings,
    contract: SourceContract,
    profiler: Profiler,
    version_before: int | None,
    previous_batches: list[str],
) -> dict:
    """Store the batch's profile and difference report; returns the readable summary."""
    profile = profiler.result()
    failures = check_expectations(profile, contract)
    before = (
        open_table(bronze_uri(settings, contract.table), version_before)
        if version_before is not None
        else None
    )
    key_columns = profiler.keys.key_columns if profiler.keys else []
    table_keys = prev_delivery = None
    rows_before = 0
    if before is not None:
        rows_before = committed_rows(before)
        if key_columns:
            table_keys = _keys(before, key_columns)
            if previous_batches:
                prev_delivery = _keys(before, key_columns, previous_batches)
    diff = diff_batch(
        profile,
        rows_before=rows_before,
        previous_profile=previous_profile(settings, contract.table),
        new_keys=profiler.keys.key_set() if profiler.keys else None,
        table_keys=table_keys,
        previous_delivery_keys=prev_delivery,
    )
    append_rows(meta_uri(settings, "profiles"), profile.to_arrow())
    append_rows(meta_uri(settings, "batch_diffs"), diff.to_rows())
    paths = write_batch_report(reports_dir(settings, "ingest"), profile, diff, failures)
    return {
        "summary": diff.summary_lines(),
        "expectation_failures": [f.message for f in failures],
        "report_html": str(paths["html"]),
    }
