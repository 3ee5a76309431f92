"""The promotion decision: a build is published only when it was built and its own gate passed.

    build = build_layer(settings, spark, "silver", build_id)       # -> silver_build_<id>
    gate = run_checks(spark, settings, "silver", schema=build.schema, batch_id=build_id)
    promote_if_passed(settings, spark, build, gate)                 # or LayerNotPublished

`build_gate_publish` is that sequence, once: `cms-pipeline transform` runs it with plain
calls (`direct_steps`), the flows with Prefect tasks, so the CLI publishes exactly what a
flow would. A refusal never touches the published schema: its views keep pointing at the
last good build, and the error names that build and each failing check with its value.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from cms_pipeline.config import Settings
from cms_pipeline.publish.builds import build_layer
from cms_pipeline.publish.publishing import promote, published_build
from cms_pipeline.publish.records import BuildResult
from cms_pipeline.quality.gate import run_checks
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


@dataclass(frozen=True)
class LayerSteps:
    """How each step runs (plain calls, or Prefect tasks in the flows); their order and the
    rule between them belong to `build_gate_publish` alone."""

    build: Callable[[str, str], BuildResult]  # (layer, build_id): never publishes
    gate: Callable[[BuildResult], GateResult]  # the layer's Soda checks on that build
    publish: Callable[[BuildResult, GateResult | None], dict | None]  # or LayerNotPublished


def direct_steps(settings: Settings, spark, full_refresh: bool = False, publish: bool = True):
    """The steps as plain calls on `spark`; `publish=False` builds and gates only, and still
    refuses (LayerNotPublished) what could not have been published."""

    def check_only(build: BuildResult, gate: GateResult | None) -> None:
        if reason := refusal(build, gate):
            raise LayerNotPublished(reason)

    return LayerSteps(
        build=lambda layer, build_id: build_layer(
            settings, spark, layer, build_id, gated=True, full_refresh=full_refresh
        ),
        gate=lambda build: run_checks(
            spark, settings, build.layer, schema=build.schema, batch_id=build.build_id
        ),
        publish=(lambda build, gate: promote_if_passed(settings, spark, build, gate))
        if publish
        else check_only,
    )


@dataclass
class GatedLayer:
    """One layer's build, its gate (None when the build failed) and what became of it."""

    build: BuildResult
    gate: GateResult | None
    published: dict | None = None
    refused: str | None = None  # why it was not published (LayerNotPublished's message)

    def to_dict(self) -> dict:
        return {
            "build": self.build.to_dict(),
            "gate": self.gate.to_dict() if self.gate else None,
            "published": self.published,
            "refused": self.refused,
        }


def build_gate_publish(
    layer: str,
    build_id: str,
    steps: LayerSteps,
    stage: Callable[[str], AbstractContextManager] = lambda name: nullcontext(),
) -> GatedLayer:
    """dbt build into `<layer>_build_<id>`, its Soda gate, then publish only if both pass.
    `stage` times each step (StageLog.stage)."""
    with stage(layer):
        build = steps.build(layer, build_id)
    outcome = GatedLayer(build, None)
    if build.success:  # a failed build is never checked: nothing of it is published
        with stage(f"{layer} gate"):
            outcome.gate = steps.gate(build)
    try:
        outcome.published = steps.publish(build, outcome.gate)
    except LayerNotPublished as exc:
        outcome.refused = str(exc)
    return outcome
