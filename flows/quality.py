"""Flow: run a layer's Soda checks and stop on error-level failures."""

from __future__ import annotations

from prefect import flow, task

from cms_pipeline.config import load_settings
from cms_pipeline.lease import writes_lake
from flows import artifacts


@task(name="quality gate")
def gate(lake: str | None, layer: str, schema: str | None = None, batch_id: str | None = None):
    settings = load_settings(lake=lake)
    from cms_pipeline.quality.gate import run_checks
    from cms_pipeline.spark import get_spark

    result = run_checks(get_spark(settings), settings, layer, schema=schema, batch_id=batch_id)
    artifacts.gate_results(result)
    return result


@flow(name="quality", log_prints=True)
@writes_lake("prefect flow quality")
def quality_flow(layer: str, lake: str | None = None) -> dict:
    from cms_pipeline.quality.results import require_pass

    result = gate(lake, layer)
    require_pass(result)
    return result.to_dict()
