"""Where each table lives in the lake. Every module asks here, never builds paths itself.

LAKE/bronze/<table>          Delta, append-only, partitioned by _batch_id
LAKE/quarantine/rows         Delta, rejected rows with file, line, column, reason
LAKE/_meta/<name>            Delta, pipeline metadata (file ledger, batch reports,
                             profiles, check results)
METADATA/...                 local-only state: Derby metastore, Spark warehouse,
                             MLflow store, HTML/JSON reports
"""

from __future__ import annotations

from cms_pipeline.config import Settings

LINEAGE_COLUMNS = ["_source_file", "_source_sha256", "_source_line", "_batch_id", "_ingested_at"]
FILE_ATTRIBUTE_COLUMNS = ["sample", "year", "part"]


def bronze_uri(settings: Settings, table: str) -> str:
    return settings.lake_path("bronze", table)


def quarantine_uri(settings: Settings) -> str:
    return settings.lake_path("quarantine", "rows")


def meta_uri(settings: Settings, name: str) -> str:
    return settings.lake_path("_meta", name)


def reports_dir(settings: Settings, *parts: str):
    path = settings.metadata_path("reports", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
