"""The layers a build makes and publishes, one typed spec each, and the names they are
built under.

Shared by every module of the package (builds, run records, publishing): what dbt selects
for each layer, which of its relations are published, the schema a build goes into, the
dbt vars that name it, and the error a build or publish raises.
"""

from __future__ import annotations

from dataclasses import dataclass

# views too: silver models on the per-batch store are views (README "Incremental silver");
# steps that are not part of a layer say `publish: false`
_PUBLISHED_MATERIALIZATIONS = ("table", "view", "incremental", "seed")


@dataclass(frozen=True)
class LayerSpec:
    """What sets one layer's builds and publishes apart from another's."""

    name: str
    select: tuple[str, ...]  # what its build selects (dbt selectors)
    # the published layer its builds read and record (`upstream_build`); None: bronze,
    # pinned to its latest committed Delta versions (cms_pipeline.bronze_catalog)
    upstream: str | None
    # its builds add to a per-batch store (cms_pipeline.publish.silver_store): they carry
    # the store's dbt vars, and a publish keeps the stores its kept builds read
    has_store: bool
    published_materializations: tuple[str, ...] = _PUBLISHED_MATERIALIZATIONS


SPECS = {
    spec.name: spec
    for spec in (
        # seeds are codebook lookups, published with silver
        LayerSpec("silver", ("path:models/silver", "path:seeds"), upstream=None, has_store=True),
        LayerSpec("gold", ("path:models/gold",), upstream="silver", has_store=False),
    )
}
LAYERS = tuple(SPECS)  # in build order
# dbt tests that the layer's Soda gate repeats on the same build schema (a key is present,
# unique, found in its parent table): a build that the gate checks next leaves them to it
# (each is a full scan of a table of millions of rows). Other builds run them.
LEFT_TO_THE_GATE = "tag:repeated_by_soda"


class PublishError(RuntimeError):
    """A build cannot be published (it failed, or nothing was recorded for it)."""


def layer_spec(layer: str) -> LayerSpec:
    if layer not in SPECS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    return SPECS[layer]


def build_schema(layer: str, build_id: str) -> str:
    return f"{layer}_build_{build_id}"


def build_vars(layer: str, build_id: str) -> dict:
    return {"build_layer": layer, "build_id": build_id}
