"""Run a layer's Soda checks on the pipeline's SparkSession and return the gate verdict.

One Soda scan per check file (`soda_checks/<layer>/<table>.yml`), so each scan gets the
previous-scan metrics of its own table as variables. The tables of the scanned schema
(a build schema such as `silver_build_<id>`, or the published one) are registered as
temp views named like the table, so the same check files serve any schema; checks that
look upstream use `${bronze_schema}.<table>` / `${silver_schema}.<table>`. Bronze scans
also see the ingestion file ledger as the view `file_ledger`.

Distribution checks (soda_checks/README.md): silver and gold builds compare the whole
table with the last passing scan; bronze compares its newest arrival of `_batch_id`s with
the arrival before it (`batches`), through `${newest_batch_ids}` and `${prev_batch_*}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cms_pipeline.bronze_catalog import bronze_tables
from cms_pipeline.config import PROJECT_ROOT, Settings
from cms_pipeline.dbt_lineage import fed_by_nothing, read_manifest, upstream_sources
from cms_pipeline.dbt_runner import dbt_dir
from cms_pipeline.ingest.delta_writer import open_table
from cms_pipeline.ingest.ledger import delivered_tables, ledger_uri, read_ledger
from cms_pipeline.ingest.retract import RETRACTED
from cms_pipeline.quality import batches, store
from cms_pipeline.quality import metrics as qmetrics
from cms_pipeline.quality.results import (
    ERROR,
    NOT_DELIVERED,
    CheckResult,
    GateResult,
    from_scan,
)
from cms_pipeline.quality.sampler import BoundedSampler
from cms_pipeline.quality.spark_cursor import use_one_pass_cursor
from cms_pipeline.sql import statement

# Soda (about 0.5 s to import) is imported where a scan runs: the gate's history and
# `cms-pipeline check --history` import this package without scanning.

CHECKS_DIR = PROJECT_ROOT / "soda_checks"
LAYERS = ("bronze", "silver", "gold")
LEDGER_VIEW = "file_ledger"
SCAN_THREADS = 2  # tables scanned at once


def check_files(
    layer: str, tables: Iterable[str] | None = None, checks_dir: Path | None = None
) -> dict[str, Path]:
    """Check file per table of a layer; `tables` narrows the set (unknown names are an error)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer '{layer}': expected one of {', '.join(LAYERS)}")
    folder = (checks_dir or CHECKS_DIR) / layer
    files = {p.stem: p for p in sorted(folder.glob("*.yml")) if not p.stem.startswith("_")}
    if tables is None:
        return files
    wanted = list(tables)
    unknown = [t for t in wanted if t not in files]
    if unknown:
        raise ValueError(
            f"no check file for {unknown} in {folder}; expected one of {sorted(files)}"
        )
    return {t: files[t] for t in wanted}


def run_checks(
    spark,
    settings: Settings,
    layer: str,
    schema: str | None = None,
    batch_id: str | None = None,
    tables: Iterable[str] | None = None,
    upstream: dict[str, str] | None = None,
    checks_dir: Path | None = None,
    save: bool = True,
) -> GateResult:
    """Scan `schema` (default: the published layer) with the layer's checks.

    `upstream` maps layer -> schema for checks that reconcile with an earlier layer
    (default: the published `bronze` and `silver`). Results, metrics and failed-row
    samples are stored under LAKE/_meta unless `save=False`.
    """
    schema = schema or layer
    files = check_files(layer, tables, checks_dir)
    upstream = {"bronze": "bronze", "silver": "silver", **(upstream or {})}
    run_id = uuid.uuid4().hex[:12]
    checked_at = datetime.now(UTC)
    stored = store.read_metrics(settings, layer)
    previous = store.latest_passing(stored, layer)
    present = _tables_in(spark, schema)
    views = _register_views(spark, settings, layer, schema, present)
    present |= set(views)
    checks: list[CheckResult] = []
    measured: dict[str, dict[str, float | None]] = {}
    arrivals: dict[str, str] = {}  # table -> label of the newest arrival measured
    versions: dict[str, str] = {}
    upstream_vars = {
        "bronze_schema": upstream["bronze"],
        "silver_schema": upstream["silver"],
        "batch_id": batch_id or "",
    }

    missing_inputs = _not_delivered(spark, settings, layer, schema, files, present)
    retracted = _retracted_since_passing(settings, stored, layer) if layer == "bronze" else {}

    def check_table(table: str, path: Path) -> _TableChecks:
        if table in missing_inputs:
            return _TableChecks([_not_delivered_result(layer, table, path, missing_inputs[table])])
        if table not in present:
            return _TableChecks([_missing_table(layer, table, schema, path)])
        version = _table_version(spark, settings, schema, table)
        table_vars = {**upstream_vars, "retracted_rows": str(retracted.get(table, 0))}
        return _check_table(spark, layer, table, path, stored, previous, table_vars, version)

    try:
        # Tables are scanned side by side: on small tables a scan mostly waits for Spark
        # to plan and schedule each of its queries, and Spark runs queries concurrently.
        with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
            done = pool.map(lambda item: (item[0], check_table(*item)), files.items())
            for table, result in done:  # in file order, so results read the same each run
                checks.extend(result.checks)
                if result.version is not None:
                    versions[table] = result.version
                    measured[table] = result.measured
                if result.arrival is not None:
                    arrivals[table] = result.arrival
    finally:
        for view in views:
            spark.catalog.dropTempView(view)
    gate = GateResult(layer, schema, run_id, batch_id, checked_at, checks, versions)
    if save:
        store.save(settings, gate, measured, arrivals)
    return gate


@dataclass
class _TableChecks:
    checks: list[CheckResult]
    version: str | None = None
    measured: dict[str, float | None] = field(default_factory=dict)
    arrival: str | None = None  # label of the newest bronze arrival measured


def _check_table(
    spark, layer, table, path: Path, stored, previous, upstream_vars, version
) -> _TableChecks:
    """One table: its metrics (and its newest arrival's), then its Soda scan."""
    text = path.read_text()
    wanted = qmetrics.wanted_metrics(text)
    frame = spark.table(table)
    current = qmetrics.compute(frame, wanted)
    earlier = dict(previous.get(table, {}))
    newest: frozenset[str] = frozenset()
    arrival = None
    if qmetrics.uses_batches(wanted) and qmetrics.BATCH_COLUMN in frame.columns:
        newest, batch_now, batch_before = _newest_arrival(frame, wanted, stored, layer, table)
        current |= batch_now
        earlier |= batch_before
        arrival = batches.label(newest)
    variables = {
        **qmetrics.previous_variables(wanted, earlier),
        "newest_batch_ids": batches.sql_list(newest),
        **upstream_vars,
    }
    # Not cached for its queries: caching builds every column in memory while each query
    # reads a few from Parquet (gates at scale 0.1, warm: 88 s with tables under 10M cells
    # cached, 56 s without).
    checks = _scan(spark, layer, table, path, variables)
    return _TableChecks(checks, version, {m.key: v for m, v in current.items()}, arrival)


def _newest_arrival(frame, wanted, stored: list[dict], layer: str, table: str):
    """The newest arrival's batch ids, its metrics, and the previous arrival's metrics."""
    partials = batches.batch_partials(frame, wanted)
    past = batches.passing_arrivals(stored, layer, table)
    newest = batches.newest_arrival(partials, past)
    now = batches.combine(partials, newest)
    batch_metrics = [m for m in wanted if m.scope == qmetrics.BATCH]
    current = {m: now.get(m) for m in batch_metrics}
    return newest, current, batches.previous_arrival(past, newest)


def _scan(
    spark, layer: str, table: str, path: Path, variables: dict[str, str]
) -> list[CheckResult]:
    from soda.scan import Scan

    sampler = BoundedSampler()
    scan = Scan()
    scan.set_scan_definition_name(f"{layer}.{table}")
    scan.set_data_source_name("spark_df")
    scan.add_spark_session(spark, data_source_name="spark_df")
    use_one_pass_cursor(scan, "spark_df")
    scan.add_variables(variables)  # before the file: Soda resolves ${...} while parsing
    scan.add_sodacl_yaml_file(str(path))
    scan.sampler = sampler
    scan.execute()
    errors = scan.get_error_logs_text() if scan.has_error_logs() else ""
    results = from_scan(layer, table, scan.get_scan_results(), sampler.samples, errors or "")
    for r in results:  # soda_checks/... reads better than an absolute path
        r.location = r.location.replace(f"{PROJECT_ROOT}/", "")
    return results


def _tables_in(spark, schema: str) -> set[str]:
    if not spark.catalog.databaseExists(schema):
        return set()
    return {t.name for t in spark.catalog.listTables(schema) if not t.isTemporary}


def _register_views(
    spark, settings: Settings, layer: str, schema: str, present: set[str]
) -> list[str]:
    """Temp views named like the tables of `schema` (plus the ledger for bronze)."""
    views = []
    for table in sorted(present):
        spark.table(f"{schema}.{table}").createOrReplaceTempView(table)
        views.append(table)
    if layer == "bronze":
        _ledger_frame(spark, settings).createOrReplaceTempView(LEDGER_VIEW)
        views.append(LEDGER_VIEW)
    return views


_LEDGER_COLUMNS = (
    "sha256 string, file_name string, `table` string, batch_id string, status string, "
    "rows_read bigint, rows_bronze bigint, rows_quarantined bigint"
)


def _ledger_frame(spark, settings: Settings):
    names = [
        "sha256",
        "file_name",
        "table",
        "batch_id",
        "status",
        "rows_read",
        "rows_bronze",
        "rows_quarantined",
    ]
    rows = read_ledger(settings).select(names).to_pylist()
    return spark.createDataFrame([tuple(r[n] for n in names) for r in rows], _LEDGER_COLUMNS)


def _table_version(spark, settings: Settings, schema: str, table: str) -> str:
    """The bronze Delta version the catalog points at, else the schema (build) name."""
    if table == LEDGER_VIEW:
        dt = open_table(ledger_uri(settings))
        return "none" if dt is None else f"delta v{dt.version()}"
    sql = statement("show_table_properties", database=schema, table=table)
    props = {r[0]: r[1] for r in spark.sql(sql).collect()}
    version = props.get("cms.delta_version")
    return f"delta v{version}" if version is not None else schema


def _not_delivered(
    spark, settings: Settings, layer: str, schema: str, files: dict[str, Path], present: set[str]
) -> dict[str, str]:
    """{table: why} for tables with nothing in them because no file feeds them yet: the
    table is absent or empty in `schema`, and no live delivery (ledger: loaded, not
    retracted) reached it (bronze) or any bronze table upstream of it (silver and gold,
    from dbt's manifest). A table with rows is always checked, and so is an empty one
    whose files were delivered (rows lost)."""
    delivered = delivered_tables(settings)
    if layer == "bronze":
        why = "no file of this kind delivered yet"
        candidates = {t: why for t in files if t in bronze_tables(settings) and t not in delivered}
    else:
        manifest = read_manifest(dbt_dir(settings) / "target" / "manifest.json")
        candidates = {
            t: f"fed by {', '.join(sorted(upstream_sources(manifest, t)))}: none delivered yet"
            for t in files
            if fed_by_nothing(manifest, t, delivered)
        }
    return {
        t: why
        for t, why in candidates.items()
        if t not in present or not spark.table(f"{schema}.{t}").limit(1).count()
    }


def _retracted_since_passing(settings: Settings, stored: list[dict], layer: str) -> dict[str, int]:
    """{table: rows retracted since its last passing scan}: the only way bronze may shrink
    (`${retracted_rows}` in the "does not shrink" checks)."""
    passed: dict[str, datetime] = {}
    for r in stored:
        if r["layer"] == layer and r["gate_passed"]:
            passed[r["table"]] = max(passed.get(r["table"], r["checked_at"]), r["checked_at"])
    out: dict[str, int] = {}
    for r in read_ledger(settings).to_pylist():
        since = passed.get(r["table"])
        if r["status"] == RETRACTED and since is not None and r["ingested_at"] > since:
            out[r["table"]] = out.get(r["table"], 0) + (r["rows_bronze"] or 0)
    return out


def _location(path: Path) -> str:
    return f"{path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}:1"


def _not_delivered_result(layer: str, table: str, path: Path, why: str) -> CheckResult:
    return CheckResult(
        layer,
        table,
        "Delivered",
        NOT_DELIVERED,
        location=_location(path),
        severity="warn",
        message=f"checks not run: {why}",
    )


def _missing_table(layer: str, table: str, schema: str, path: Path) -> CheckResult:
    """A missing table stops the gate: an unchecked table is never published."""
    return CheckResult(
        layer=layer,
        table=table,
        check="Table exists",
        outcome=ERROR,
        location=_location(path),
        message=f"{schema}.{table} not found: build it before checking, or pass tables=[...]",
    )
