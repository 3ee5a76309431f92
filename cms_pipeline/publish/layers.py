"""The layers a build makes and publishes, and the names they are built under.

Shared by every module of the package (builds, run records, publishing): what dbt selects
for each layer, which of its relations are published, the schema a build goes into, the
dbt vars that name it, and the error a build or publish raises.
"""

from __future__ import annotations

LAYERS = ("silver", "gold")
# what each layer's build selects (seeds are codebook lookups, published with silver)
SELECT = {"silver": ["path:models/silver", "path:seeds"], "gold": ["path:models/gold"]}
# views too: silver models on the per-batch store are views (README "Incremental silver");
# steps that are not part of a layer say `publish: false`
PUBLISHED_MATERIALIZATIONS = ("table", "view", "incremental", "seed")
# dbt tests that the layer's Soda gate repeats on the same build schema (a key is present,
# unique, found in its parent table): a build that the gate checks next leaves them to it
# (each is a full scan of a table of millions of rows). Other builds run them.
LEFT_TO_THE_GATE = "tag:repeated_by_soda"


class PublishError(RuntimeError):
    """A build cannot be published (it failed, or nothing was recorded for it)."""


def build_schema(layer: str, build_id: str) -> str:
    return f"{layer}_build_{build_id}"


def check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")


def build_vars(layer: str, build_id: str) -> dict:
    return {"build_layer": layer, "build_id": build_id}
