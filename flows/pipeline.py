"""The whole gated pipeline: ingest -> bronze gate -> silver -> gate -> gold -> gate ->
exports -> training where no champion exists yet -> scoring.

A failed gate stops everything after it and leaves the published layers untouched. A
file refused by its contract does not: it is recorded and the run goes on with the rest,
ending "published, with rejections" (`status`), which a scheduler can tell apart from
"clean" and from "failed".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow
from prefect.utilities.annotations import quote  # tasks get the settings unwalked

from cms_pipeline.config import load_settings
from cms_pipeline.exports import exported_build
from cms_pipeline.lease import writes_lake
from cms_pipeline.publish.builds import current_layers, new_build_id
from cms_pipeline.publish.publishing import published_build
from cms_pipeline.spark import start_in_background
from cms_pipeline.stages import StageLog
from flows.ingest import ingest_files, sync_bronze_tables
from flows.models import (
    export_gold,
    has_champion,
    lineage,
    score_use_case,
    skip_reason,
    train_use_case,
    use_cases,
)
from flows.naming import run_name
from flows.quality import gate
from flows.transform import LayerNotPublished, gated_layer
from models_ml.h2o_cluster import stop_local_h2o

CLEAN, WITH_REJECTIONS, FAILED = "clean", "published with rejections", "failed"


@dataclass
class PipelineSummary:
    ok: bool = True
    stopped_at: str | None = None
    reason: str | None = None
    rejected_files: list = field(default_factory=list)  # refused (now or before), or unsettled
    not_delivered: list = field(default_factory=list)  # bronze tables no file has reached
    skipped: dict = field(default_factory=dict)  # use case -> why it did not train or score
    ingest: dict = field(default_factory=dict)
    bronze_versions: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    exports: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    scoring: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)

    def stop(self, stage: str, reason: str) -> PipelineSummary:
        self.ok, self.stopped_at, self.reason = False, stage, reason
        return self

    @property
    def status(self) -> str:
        if not self.ok:
            return FAILED
        return WITH_REJECTIONS if self.rejected_files else CLEAN

    def to_dict(self) -> dict:
        return {"status": self.status, **self.__dict__}


@flow(
    name="pipeline",
    log_prints=True,
    flow_run_name=run_name("pipeline {source} -> bronze, silver, gold, models"),
)
@writes_lake("prefect flow pipeline")
def pipeline_flow(
    source: str | None = None,
    lake: str | None = None,
    train: str = "missing",
    rebuild: bool = False,
) -> dict:
    """`train`: 'missing' (only use cases without a champion), 'always' or 'never'.
    `rebuild`: build silver and gold even when the published ones are current."""
    settings = load_settings(lake=lake)
    log = StageLog()
    summary = PipelineSummary()
    try:
        _run(settings, source, train, rebuild, log, summary, new_build_id())
    finally:
        summary.stages = log.to_list()
    return summary.to_dict()


def _run(settings, source, train, rebuild, log, summary: PipelineSummary, build_id: str):
    # the JVM starts while ingestion keeps to Python; its heap counts what is to come
    start_in_background(settings, source or settings.landing)
    with log.stage("ingest"):
        report = ingest_files(quote(settings), source)
    summary.ingest = report.to_dict()
    # refused now or before, or still being copied in: the rest goes on without them
    summary.rejected_files = [_rejection(f) for f in report.problems]
    if any(f.expectation_failures for f in report.files):
        return summary.stop("ingest", "a file broke its contract's expectations")
    with log.stage("bronze sync"):
        summary.bronze_versions = sync_bronze_tables(quote(settings))
    with log.stage("bronze gate"):
        bronze = gate(quote(settings), "bronze", batch_id=build_id)
    summary.gates["bronze"] = bronze.to_dict()
    summary.not_delivered = bronze.not_delivered
    if not bronze.passed:
        return summary.stop("bronze gate", bronze.explain())
    current = None if rebuild else current_layers(settings, summary.bronze_versions)
    for layer in ("silver", "gold"):
        if current:  # nothing new since the published builds: same inputs, same code
            summary.layers[layer] = {"up_to_date": True, "published": current[layer]}
            continue
        try:
            summary.layers[layer] = gated_layer(settings, layer, build_id, log)
        except LayerNotPublished as exc:
            return summary.stop(layer, str(exc))
        summary.gates[layer] = summary.layers[layer]["gate"]
    if not current or _exports_stale(settings):  # e.g. a run killed during its export
        with log.stage("export"):
            summary.exports = export_gold(settings.lake)
    names = []
    for name in use_cases(settings):
        if why := skip_reason(settings, name):
            summary.skipped[name] = why
        else:
            names.append(name)
    wanted = {
        "always": names,
        "never": [],
        "missing": [n for n in names if not has_champion(settings, n)],
    }[train]
    inputs = lineage(settings, build_id=build_id)
    for name in wanted:
        try:
            with log.stage(f"train {name}"):
                summary.training[name] = train_use_case(settings.lake, name, inputs)
        except Exception as exc:  # published data is fine; say which use case failed and why
            return summary.stop(f"train {name}", f"{type(exc).__name__}: {exc}")
    if wanted:  # scoring runs MOJOs: the idle H2O JVM would hold its heap through it
        stop_local_h2o()
    for name in names:
        if has_champion(settings, name):
            with log.stage(f"score {name}"):
                summary.scoring[name] = score_use_case(settings.lake, name)
    return summary


def _exports_stale(settings) -> bool:
    gold = published_build(settings, "gold")
    return gold is not None and exported_build(settings) != gold["build_id"]


def _rejection(result) -> dict:
    """What the summary says of a refused file: which, and why (file, line, what to do)."""
    error = result.error or {}
    return {
        "file": result.file,
        "status": result.status,
        "kind": error.get("kind"),
        "problem": error.get("problem"),
        "line": error.get("line"),
        "hint": error.get("hint"),
    }
