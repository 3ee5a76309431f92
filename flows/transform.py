"""Flow: build silver then gold with dbt, each gated by Soda before it is published."""

from __future__ import annotations

from prefect import flow, task
from prefect.utilities.annotations import quote  # tasks get the settings unwalked (below)

from cms_pipeline.config import Settings, load_settings
from cms_pipeline.lease import writes_lake
from cms_pipeline.quality.promotion import LayerNotPublished  # noqa: F401 (flows.pipeline catches it)
from cms_pipeline.stages import StageLog
from flows import artifacts
from flows.naming import run_name
from flows.quality import gate


@task(name="dbt build layer", timeout_seconds=4 * 3600)
def build(settings: Settings, layer: str, build_id: str):
    from cms_pipeline.publish.builds import build_layer
    from cms_pipeline.spark import get_spark

    # the Soda gate checks this build next (build_gate_publish)
    return build_layer(settings, get_spark(settings), layer, build_id, gated=True)


@task(name="publish layer")
def publish(settings: Settings, result, checked) -> dict:
    """Promote the build only if it succeeded and its gate passed (else LayerNotPublished)."""
    from cms_pipeline.quality.promotion import promote_if_passed
    from cms_pipeline.spark import get_spark

    return promote_if_passed(settings, get_spark(settings), result, checked)


def build_gate_publish(settings: Settings, layer: str, build_id: str, log=None) -> dict:
    """dbt build into `<layer>_build_<id>`, Soda gate on it, publish only if both pass."""
    stage = (log or StageLog()).stage  # a throwaway log when the caller keeps none
    with stage(layer):
        result = build(quote(settings), layer, build_id)
    checked = None
    if result.success:
        with stage(f"{layer} gate"):
            checked = gate(quote(settings), layer, schema=result.schema, batch_id=build_id)
    entry = publish(quote(settings), result, checked)
    artifacts.markdown(
        f"{layer}-published",
        f"**{layer}** build `{build_id}` published: {len(result.models)} tables, "
        f"{len(result.tests)} dbt tests ({len(result.failed_tests)} failed), "
        f"bronze versions {result.bronze_versions}.",
    )
    return {"build": result.to_dict(), "gate": checked.to_dict(), "published": entry}


@flow(name="transform", log_prints=True, flow_run_name=run_name("transform silver, gold"))
@writes_lake("prefect flow transform")
def transform_flow(lake: str | None = None, build_id: str | None = None) -> dict:
    from cms_pipeline.publish.builds import new_build_id

    settings = load_settings(lake=lake)
    build_id = build_id or new_build_id()
    return {layer: build_gate_publish(settings, layer, build_id) for layer in ("silver", "gold")}
