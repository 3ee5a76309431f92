"""Flow: build silver then gold with dbt, each gated by Soda before it is published."""

from __future__ import annotations

from prefect import flow, task
from prefect.utilities.annotations import quote  # tasks get the settings unwalked (below)

from cms_pipeline.config import Settings, load_settings
from cms_pipeline.lease import writes_lake
from cms_pipeline.publish.builds import build_layer, new_build_id
from cms_pipeline.quality.promotion import (
    LayerNotPublished,
    LayerSteps,
    build_gate_publish,
    promote_if_passed,
)
from cms_pipeline.spark import get_spark
from cms_pipeline.stages import StageLog
from flows import artifacts
from flows.naming import run_name
from flows.quality import gate


@task(name="dbt build layer", timeout_seconds=4 * 3600)
def build(settings: Settings, layer: str, build_id: str):
    # the Soda gate checks this build next (build_gate_publish)
    return build_layer(settings, get_spark(settings), layer, build_id, gated=True)


@task(name="publish layer")
def publish(settings: Settings, result, checked) -> dict:
    """Promote the build only if it succeeded and its gate passed (else LayerNotPublished)."""
    return promote_if_passed(settings, get_spark(settings), result, checked)


def task_steps(settings: Settings) -> LayerSteps:
    """The promotion's steps as this project's Prefect tasks (states, timeouts, artifacts)."""
    return LayerSteps(
        build=lambda layer, build_id: build(quote(settings), layer, build_id),
        gate=lambda result: gate(
            quote(settings), result.layer, schema=result.schema, batch_id=result.build_id
        ),
        publish=lambda result, checked: publish(quote(settings), result, checked),
    )


def gated_layer(settings: Settings, layer: str, build_id: str, log=None) -> dict:
    """`build_gate_publish` with the tasks; raises LayerNotPublished when it refused."""
    stage = (log or StageLog()).stage  # a throwaway log when the caller keeps none
    outcome = build_gate_publish(layer, build_id, task_steps(settings), stage)
    if outcome.refused:
        raise LayerNotPublished(outcome.refused)
    result = outcome.build
    artifacts.markdown(
        f"{layer}-published",
        f"**{layer}** build `{build_id}` published: {len(result.models)} tables, "
        f"{len(result.tests)} dbt tests ({len(result.failed_tests)} failed), "
        f"bronze versions {result.bronze_versions}.",
    )
    return outcome.to_dict()


@flow(name="transform", log_prints=True, flow_run_name=run_name("transform silver, gold"))
@writes_lake("prefect flow transform")
def transform_flow(lake: str | None = None, build_id: str | None = None) -> dict:
    settings = load_settings(lake=lake)
    build_id = build_id or new_build_id()
    return {layer: gated_layer(settings, layer, build_id) for layer in ("silver", "gold")}
