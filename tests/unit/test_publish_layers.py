"""The layer specs (cms_pipeline.publish.layers): what sets silver's builds and publishes
apart from gold's, and which relations of a build are published."""

from __future__ import annotations

import json

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


def test_a_gold_build_reads_the_published_silver_and_selects_only_gold(settings, monkeypatch):
    from cms_pipeline.publish import builds

    calls, recorded = [], []

    def fake_dbt(settings, args, spark=None, vars=None):
        calls.append((args, vars))
        nodes = [_node("fct", "table")] if args[0] == "build" else []
        return DbtRun(args=args, success=True, elapsed=0.5, nodes=nodes)

    silver = {"build_id": "s1", "bronze_versions": {"inpatient_claims": 4}}
    monkeypatch.setattr(builds, "run_dbt", fake_dbt)
    monkeypatch.setattr(builds, "complete_interrupted_publish", lambda settings, spark: [])
    monkeypatch.setattr(
        builds, "published_build", lambda settings, layer: {"silver": silver}[layer]
    )
    monkeypatch.setattr(builds, "record_run", lambda s, result, run: recorded.append(result))
    result = builds.build_layer(settings, None, "gold", "g1")
    assert result.success and result.models == ["fct"]
    assert (result.upstream_build, result.bronze_versions) == ("s1", {"inpatient_claims": 4})
    assert result.silver_store is None and result.bronze_batches == {}
    assert recorded == [result]
    built, tested = calls
    assert built[0][:4] == ["build", "--select", "path:models/gold", "--indirect-selection"]
    assert tested[0][:3] == ["test", "--select", "path:models/gold"]
    assert built[1] == {"build_layer": "gold", "build_id": "g1"}  # no store vars


def test_gold_unit_tests_alone_need_no_store(settings, monkeypatch):
    from cms_pipeline.publish import builds

    calls = []

    def fake_dbt(settings, args, spark=None, vars=None):
        calls.append((args, vars))
        return DbtRun(args=args, success=True, elapsed=0.1)

    monkeypatch.setattr(builds, "run_dbt", fake_dbt)
    builds.unit_test_layer(settings, None, "gold")
    (build, _), (test, _), (drop, vars) = calls
    assert build[:3] == ["build", "--select", "path:models/gold"] and "--empty" in build
    assert test[:3] == ["test", "--select", "path:models/gold"]
    schemas = json.loads(drop[drop.index("--args") + 1])["schemas"]
    assert schemas == [f"gold_build_{vars['build_id']}"]  # the scratch build, no store
