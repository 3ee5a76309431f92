"""Run records: what a build did, kept so that a publish can check it and later builds
can reuse it.

Each build (cms_pipeline.publish.builds) ends in a BuildResult, recorded in full as JSON
under METADATA/dbt_runs/<layer>_<build id>.json (with its dbt run) and as one row appended
to the Delta table LAKE/_meta/dbt_runs (a queryable index of the builds). The JSON is read
back here only, as a typed RunRecord. `promote` publishes only a build whose record says
it succeeded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from cms_pipeline.atomic import write_json_atomic
from cms_pipeline.config import Settings
from cms_pipeline.dbt_runner import DbtRun
from cms_pipeline.lake import meta_uri
from cms_pipeline.publish.layers import PublishError


@dataclass
class BuildResult:
    layer: str
    build_id: str
    schema: str
    success: bool
    models: list[str] = field(default_factory=list)  # relations to publish (tables, seeds)
    tests: list[dict] = field(default_factory=list)  # one dict per data or unit test
    bronze_versions: dict[str, int] = field(default_factory=dict)
    upstream_build: str | None = None  # gold: the silver build it read
    select: list[str] | None = None  # part of the layer only (never published)
    exclude: list[str] | None = None  # what it left out (never published)
    gated: bool = False  # the dbt tests its Soda gate repeats were left to the gate
    vars: dict = field(default_factory=dict)  # dbt vars given over dbt_project.yml's
    bronze_batches: dict[str, list[str]] = field(default_factory=dict)  # silver: the snapshot
    silver_store: str | None = None  # silver: the per-batch store it read and added to
    store_fingerprint: str = ""  # the code that shaped the store's rows
    stored_batches: dict[str, dict[str, int]] = field(default_factory=dict)  # what it added
    code_sha256: str = ""  # the transformation and check code it was built with
    started_at: str = ""
    elapsed: float = 0.0
    error: str | None = None

    @property
    def failed_tests(self) -> list[dict]:
        return [t for t in self.tests if t["status"] in ("fail", "error")]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BuildResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def raise_for_failure(self) -> None:
        if not self.success:
            raise PublishError(f"{self.layer} build {self.build_id} failed:\n{self.error}")


def runs_dir(settings: Settings) -> Path:
    path = settings.metadata_path("dbt_runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_record_path(settings: Settings, layer: str, build_id: str) -> Path:
    return runs_dir(settings) / f"{layer}_{build_id}.json"


def record_run(settings: Settings, result: BuildResult, run: DbtRun | None) -> Path:
    """JSON record (full detail) and one row in the Delta table LAKE/_meta/dbt_runs."""
    path = run_record_path(settings, result.layer, result.build_id)
    body = {**result.to_dict(), "dbt": run.to_dict() if run else None}
    write_json_atomic(path, body, indent=2, default=str)
    _append_run_row(settings, result)
    return path


def _append_run_row(settings: Settings, result: BuildResult) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from cms_pipeline.storage import delta_storage_options

    row = {
        "build_id": result.build_id,
        "layer": result.layer,
        "schema": result.schema,
        "success": result.success,
        "started_at": result.started_at,
        "elapsed_s": float(result.elapsed),
        "models": json.dumps(result.models),
        "tests_failed": len(result.failed_tests),
        "tests_total": len(result.tests),
        "bronze_versions": json.dumps(result.bronze_versions, sort_keys=True),
        "upstream_build": result.upstream_build,
        "error": result.error,
    }
    uri = meta_uri(settings, "dbt_runs")
    write_deltalake(
        uri,
        pa.Table.from_pylist([row]),
        mode="append",
        storage_options=delta_storage_options(uri),
        schema_mode="merge",
    )


@dataclass(frozen=True)
class RunRecord:
    """A build's stored record: what it did, and the dbt run behind it (None when dbt never
    ran, e.g. the build's inputs could not be read)."""

    build: BuildResult
    dbt: DbtRun | None


def _parse(path: Path) -> RunRecord:
    data = json.loads(path.read_text())
    dbt = data.pop("dbt", None)
    return RunRecord(BuildResult.from_dict(data), DbtRun.from_dict(dbt) if dbt else None)


def read_run_record(settings: Settings, layer: str, build_id: str) -> RunRecord:
    path = run_record_path(settings, layer, build_id)
    if not path.exists():
        raise PublishError(f"{path}: no run record for {layer} build {build_id}; build it first")
    return _parse(path)


def run_records(settings: Settings, layer: str) -> list[RunRecord]:
    """Every recorded build of `layer`, newest first (build ids begin with their time)."""
    paths = sorted(runs_dir(settings).glob(f"{layer}_*.json"), reverse=True)
    return [_parse(path) for path in paths]
