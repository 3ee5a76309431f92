"""A layer's dbt unit tests run once per code version: a later build of the same code
takes the passing results of the earlier one (publish.unit_tests_passed)."""

from __future__ import annotations

import json

import pytest

from cms_pipeline.dbt_runner import DbtRun, NodeResult
from cms_pipeline.publish.builds import unit_tests_passed
from cms_pipeline.publish.records import BuildResult, run_record_path


def node(name, resource_type="unit_test", status="pass"):
    return NodeResult(f"{resource_type}.cms_pipeline.{name}", name, resource_type, status)


def record(settings, build_id, code="c1", nodes=None, **fields):
    """A gold build's run record as builds.py writes it (BuildResult and its dbt run)."""
    nodes = nodes if nodes is not None else [node("a"), node("b"), node("m", "model", "success")]
    build = BuildResult(
        "gold", build_id, f"gold_build_{build_id}", True, code_sha256=code, **fields
    )
    run = DbtRun(["build"], True, 1.0, nodes)
    body = {**build.to_dict(), "dbt": run.to_dict()}
    run_record_path(settings, "gold", build_id).write_text(json.dumps(body))


def test_the_latest_passing_build_of_the_same_code_covers_the_next(settings):
    record(settings, "20261201t000000_aaaaaa", nodes=[node("a")])
    record(settings, "20261202t000000_bbbbbb")
    record(settings, "20261203t000000_cccccc", code="other")
    covered = unit_tests_passed(settings, "gold", "c1")
    assert [n.name for n in covered.nodes] == ["a", "b"]  # unit tests only, of build bbbbbb
    assert all(n.status == "pass" and "bbbbbb" in n.message for n in covered.nodes)
    assert covered.success and "bbbbbb" in " ".join(covered.args)


@pytest.mark.parametrize(
    "nodes, fields",
    [
        ([node("a"), node("b", status="fail")], {}),  # one failed
        ([node("m", "model", "success")], {}),  # the build stopped before its unit tests
        (None, {"select": ["fct_claims"]}),  # ran some of them only
        (None, {"exclude": ["tag:x"]}),
        (None, {"vars": {"transfer_gap_days": 0}}),  # models changed by a var
    ],
)
def test_no_cover_unless_every_unit_test_ran_and_passed(settings, nodes, fields):
    record(settings, "20261202t000000_bbbbbb", nodes=nodes, **fields)
    assert unit_tests_passed(settings, "gold", "c1") is None


def test_no_cover_for_other_code_or_another_layer(settings):
    record(settings, "20261202t000000_bbbbbb")
    assert unit_tests_passed(settings, "gold", "c2") is None
    assert unit_tests_passed(settings, "silver", "c1") is None
