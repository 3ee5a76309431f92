"""The promotion decision: a build is published only when it was built and its own gate passed.

    build = build_layer(settings, spark, "silver", build_id)       # -> silver_build_<id>
    gate = run_checks(spark, settings, "silver", schema=build.schema, batch_id=build_id)
    promote_if_passed(settings, spark, build, gate)                 # or LayerNotPublished

The transform flow and the tests call this same function, so what is tested is what the
pipeline does. A refusal never touches the published schema: its views keep pointing at
the last good build, and the error names that build and each failing check with its value.
"""

from __future__ import annotations

from cms_pipeline.config import Settings
from cms_pipeline.publish.publishing import promote, published_build
from cms_pipeline.publish.records import BuildResult
from cms_pipeline.quality.results import GateResult


class LayerNotPublished(RuntimeError):
    """A build or its gate failed; the published layer is unchanged."""


def refusal(build: BuildResult, gate: GateResult | None) -> str | None:
    """Why `build` must not be published after `gate`, or None when it may be (pure)."""
    if not build.success:
        return f"{build.layer} build {build.build_id} failed:\n{build.error}"
    if gate is None:
        return f"{build.layer} build {build.build_id} was never checked: run its gate first"
    if (gate.layer, gate.schema) != (build.layer, build.schema):
        return (
            f"the {gate.layer} gate checked {gate.schema}, not {build.schema}: "
            f"run the {build.layer} gate on the build being published"
        )
    if not gate.passed:
        return gate.explain()
    return None


def promote_if_passed(
    settings: Settings, spark, build: BuildResult, gate: GateResult | None
) -> dict:
    """Publish `build` when `refusal` finds nothing; else raise LayerNotPublished."""
    reason = refusal(build, gate)
    if reason is None:
        return promote(settings, spark, build.layer, build.build_id, build.models, gate_passed=True)
    current = published_build(settings, build.layer)
    kept = (
        f"published {build.layer} unchanged: still build {current['build_id']}"
        if current
        else f"nothing is published as {build.layer} yet"
    )
    raise LayerNotPublished(f"{reason}\n{kept}")
