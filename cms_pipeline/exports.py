"""Exports by use (config/storage.yaml `exports`): Parquet or Delta files of the published
gold tables for analytics, and JSON documents for the web.

    LAKE/exports/analytics/<table>/                 Parquet (or Delta, via deltalake)
    LAKE/exports/web/states/<state_code>.json       one state, every year
    LAKE/exports/web/years/<year>.json              one year, every state, and prevalence
    LAKE/exports/web/beneficiaries/part-*.json      one profile per line, keyed by desynpuf_id
    LAKE/exports/web/tables/<table>.json            a small gold table whole (exports.web.tables)

Reads only the published `gold` schema, so an export never sees an ungated build.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pyarrow as pa
from deltalake import write_deltalake

from cms_pipeline.atomic import write_json_atomic
from cms_pipeline.config import ConfigError, Settings
from cms_pipeline.dbt_runner import storage_config
from cms_pipeline.publish.publishing import complete_interrupted_publish, published_build
from cms_pipeline.storage import delta_storage_options, filesystem, is_local, join

# PySpark's functions (about 0.3 s to import) are imported where a frame is built: the
# dashboard reads this module's settings (export_config, exported_build) without Spark.

PUBLISHED_SCHEMA = "gold"


@dataclass
class ExportReport:
    analytics: dict[str, str] = field(default_factory=dict)  # table -> location
    web: dict[str, str | int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"analytics": self.analytics, "web": self.web}


def export_config(settings: Settings) -> dict:
    exports = storage_config(settings).get("exports")
    if not exports or "analytics" not in exports or "web" not in exports:
        raise ConfigError("config/storage.yaml: `exports` needs `analytics` and `web` sections")
    if exports["analytics"].get("format") not in ("parquet", "delta"):
        raise ConfigError("config/storage.yaml: exports.analytics.format must be parquet or delta")
    return exports


def _spark_path(uri: str) -> str:
    return uri.replace("s3://", "s3a://", 1) if uri.startswith("s3://") else uri


def export_analytics(settings: Settings, spark, config: dict) -> dict[str, str]:
    """Each listed gold table as Parquet files (Delta: a log is written over them)."""
    base = settings.lake_path(config["path"])
    written = {}
    for name in config["tables"]:
        uri = join(base, name)
        frame = spark.table(f"{PUBLISHED_SCHEMA}.{name}")
        if config["format"] == "delta":
            _write_delta(frame, uri)
        else:
            frame.write.mode("overwrite").parquet(_spark_path(uri))
        written[name] = uri
    return written


def _write_delta(frame, uri: str) -> None:
    # Spark here has no Delta: hand Arrow batches to delta-rs, replacing the table's
    # content in one commit (earlier versions stay readable by time travel).
    table = pa.Table.from_pandas(frame.toPandas(), preserve_index=False)
    write_deltalake(
        uri,
        table,
        mode="overwrite",
        schema_mode="overwrite",
        storage_options=delta_storage_options(uri),
    )


def _plain(value):
    """JSON-friendly values: decimals as numbers, dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(spark, name: str) -> list[dict]:
    return [
        {k: _plain(v) for k, v in row.asDict().items()}
        for row in spark.table(f"{PUBLISHED_SCHEMA}.{name}").collect()
    ]


def state_documents(pmpm_rows: list[dict]) -> dict[str, dict]:
    """{state_code: {state, years: [...]}} from pmpm_by_state_year rows (pure)."""
    docs: dict[str, dict] = {}
    for row in sorted(pmpm_rows, key=lambda r: (str(r["state_code"]), r["beneficiary_year"])):
        code = row["state_code"] or "unknown"
        doc = docs.setdefault(code, {"state_code": code, "state": row.get("state"), "years": []})
        doc["years"].append({k: v for k, v in row.items() if k not in ("state_code", "state")})
    return docs


def year_documents(pmpm_rows: list[dict], prevalence_rows: list[dict]) -> dict[int, dict]:
    """{year: {states: [...], chronic_conditions: [...]}} (pure)."""
    docs: dict[int, dict] = defaultdict(lambda: {"states": [], "chronic_conditions": []})
    for row in sorted(pmpm_rows, key=lambda r: str(r["state_code"])):
        docs[row["beneficiary_year"]]["states"].append(
            {k: v for k, v in row.items() if k != "beneficiary_year"}
        )
    for row in sorted(prevalence_rows, key=lambda r: r["condition_code"]):
        docs[row["beneficiary_year"]]["chronic_conditions"].append(
            {k: v for k, v in row.items() if k != "beneficiary_year"}
        )
    return {year: {"year": year, **doc} for year, doc in docs.items()}


def _write_json_documents(base: str, docs: dict) -> int:
    """One file per document, each replaced whole: a reader (a web server) gets the old
    document or the new one. Locally a rename (cms_pipeline.atomic); on object storage a
    PUT is atomic already."""
    fs, root = filesystem(base)
    fs.makedirs(root, exist_ok=True)
    for key, doc in docs.items():
        if is_local(base):
            write_json_atomic(f"{root}/{key}.json", doc, indent=1, sort_keys=True)
        else:
            fs.pipe_file(f"{root}/{key}.json", json.dumps(doc, indent=1, sort_keys=True).encode())
    return len(docs)


def export_web(settings: Settings, spark, config: dict) -> dict[str, str | int]:
    base = settings.lake_path(config["path"])
    pmpm = _rows(spark, "pmpm_by_state_year")
    prevalence = _rows(spark, "chronic_condition_prevalence")
    states_uri = join(base, config["state_summaries"])
    years_uri = join(base, config["year_summaries"])
    profiles_uri = join(base, config["beneficiary_profiles"])
    n_states = _write_json_documents(states_uri, state_documents(pmpm))
    n_years = _write_json_documents(years_uri, year_documents(pmpm, prevalence))
    _write_profiles(spark, profiles_uri)
    tables_uri = join(base, config.get("table_documents", "tables"))
    names = config.get("tables", [])  # small gold tables the dashboard shows whole
    tables = {name: {"table": name, "rows": _rows(spark, name)} for name in names}
    n_tables = _write_json_documents(tables_uri, tables)
    return {
        "states": states_uri,
        "state_documents": n_states,
        "years": years_uri,
        "year_documents": n_years,
        "beneficiaries": profiles_uri,
        "tables": tables_uri,
        "table_documents": n_tables,
    }


def _write_profiles(spark, uri: str) -> None:
    # One JSON object per beneficiary and line: the dim row plus its years, nested; built
    # by Spark so it scales with the data (DataFrame API, no SQL text).
    from pyspark.sql import functions as F

    people = spark.table(f"{PUBLISHED_SCHEMA}.dim_beneficiary")
    years = spark.table(f"{PUBLISHED_SCHEMA}.beneficiary_year")
    year_struct = F.struct(*[c for c in years.columns if c != "desynpuf_id"])
    nested = years.groupBy("desynpuf_id").agg(
        F.sort_array(F.collect_list(year_struct)).alias("years")
    )
    profiles = people.join(nested, "desynpuf_id", "left")
    profiles.write.mode("overwrite").json(_spark_path(uri))


def export_all(settings: Settings, spark) -> ExportReport:
    """Every export of the published gold; recorded (`exported_build`) once all are
    written, so an export killed half way is not taken for a finished one."""
    config = export_config(settings)
    complete_interrupted_publish(settings, spark)  # export a whole published gold
    gold = published_build(settings, "gold") or {}
    report = ExportReport()
    report.analytics = export_analytics(settings, spark, config["analytics"])
    report.web = export_web(settings, spark, config["web"])
    record = {"gold_build": gold.get("build_id"), **report.to_dict()}
    write_json_atomic(_export_record_path(settings), record, indent=2)
    return report


def _export_record_path(settings: Settings):
    return settings.metadata_path("exports", "last_export.json")


def exported_build(settings: Settings) -> str | None:
    """The gold build the last finished export wrote, or None (never, or not finished).
    When it is not the published gold build (a run killed after its publish, or during
    its export), the exports are stale: export again."""
    path = _export_record_path(settings)
    return json.loads(path.read_text()).get("gold_build") if path.exists() else None
