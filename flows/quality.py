"""Flow: run a layer's Soda checks and stop on error-level failures."""

from __future__ import annotations

from prefect import flow, task
from prefect.utilities.annotations import quote  # tasks get the settings unwalked (below)

from cms_pipeline.config import Settings, load_settings
from cms_pipeline.lease import writes_lake
from cms_pipeline.quality.gate import run_checks
from cms_pipeline.quality.results import require_pass
from cms_pipeline.spark import get_spark
from flows import artifacts
from flows.naming import run_name


@task(name="quality gate")
def gate(settings: Settings, layer: str, schema: str | None = None, batch_id: str | None = None):
    result = run_checks(get_spark(settings), settings, layer, schema=schema, batch_id=batch_id)
    artifacts.gate_results(result)
    return result


@flow(name="quality", log_prints=True, flow_run_name=run_name("quality gate {layer}"))
@writes_lake("prefect flow quality")
def quality_flow(layer: str, lake: str | None = None) -> dict:
    result = gate(quote(load_settings(lake=lake)), layer)
    require_pass(result)
    return result.to_dict()
