"""The layer specs (cms_pipeline.publish.layers): what sets silver's builds and publishes
apart from gold's, and which relations of a build are published."""

from __future__ import annotations

import pytest

from cms_pipeline.dbt_runner import DbtRun, NodeResult
from cms_pipeline.publish.builds import _published_relations
from cms_pipeline.publish.layers import LAYERS, layer_spec


def test_silver_reads_bronze_into_a_store_and_gold_reads_silver():
    assert LAYERS == ("silver", "gold")  # build order
    silver, gold = layer_spec("silver"), layer_spec("gold")
    assert (silver.upstream, silver.has_store) == (None, True)
    assert (gold.upstream, gold.has_store) == ("silver", False)
    assert silver.select == ("path:models/silver", "path:seeds")
    assert gold.select == ("path:models/gold",)


def test_an_unknown_layer_is_refused():
    with pytest.raises(ValueError, match="layer must be one of"):
        layer_spec("bronze")


def _node(name: str, materialized: str, status: str = "success", publish: bool = True):
    return NodeResult(
        unique_id=f"model.cms.{name}",
        name=name,
        resource_type="model",
        status=status,
        materialized=materialized,
        publish=publish,
    )


def test_published_relations_follow_the_spec():
    run = DbtRun(
        args=["build"],
        success=False,
        elapsed=1.0,
        nodes=[
            _node("t", "table"),
            _node("v", "view"),
            _node("e", "ephemeral"),
            _node("failed", "table", status="error"),
            _node("step", "table", publish=False),
        ],
    )
    assert _published_relations(run, layer_spec("silver")) == ["t", "v"]
    assert _published_relations(None, layer_spec("gold")) == []
