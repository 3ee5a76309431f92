"""Flow: landing files -> Delta bronze -> bronze tables in Spark."""

from __future__ import annotations

from prefect import flow, task
from prefect.utilities.annotations import quote  # tasks get the settings unwalked (below)

from cms_pipeline.bronze_catalog import sync_bronze
from cms_pipeline.config import Settings, load_settings
from cms_pipeline.ingest import IngestReport, ingest
from cms_pipeline.lease import writes_lake
from cms_pipeline.spark import get_spark
from flows import artifacts
from flows.naming import run_name

# A flow resolves its settings once and hands them to its tasks inside `quote`: Prefect
# then passes the object as it is instead of walking it (its walk of pydantic models calls
# dict() on each, which a contract's `keys` field breaks).


@task(name="ingest files", retries=2, retry_delay_seconds=[5, 30], timeout_seconds=6 * 3600)
def ingest_files(settings: Settings, source: str | None) -> IngestReport:
    # Safe to retry: the ledger makes a reloaded file a no-op.
    report = ingest(settings, source)
    artifacts.row_accounting(report)
    return report


@task(name="sync bronze tables", retries=1, retry_delay_seconds=10)
def sync_bronze_tables(settings: Settings) -> dict[str, int]:
    return sync_bronze(get_spark(settings), settings)


@flow(name="ingest", log_prints=True, flow_run_name=run_name("ingest {source} -> bronze"))
@writes_lake("prefect flow ingest")
def ingest_flow(source: str | None = None, lake: str | None = None) -> dict:
    settings = load_settings(lake=lake)
    report = ingest_files(quote(settings), source)
    versions = sync_bronze_tables(quote(settings))
    return {"ingest": report.to_dict(), "bronze_versions": versions}
