"""dbt runner, publishing records and export documents: the parts that need no JVM."""

from __future__ import annotations

import json

import pytest

from cms_pipeline.dbt_runner import (
    DbtRun,
    NodeResult,
    _takes_vars,
    describe_problems,
    profiles,
    short_error,
    table_file_format,
)
from cms_pipeline.exports import state_documents, year_documents
from cms_pipeline.publish.layers import PublishError
from cms_pipeline.publish.publishing import promote
from cms_pipeline.publish.records import BuildResult, record_run
from cms_pipeline.spark import spark_conf


def test_local_profile_uses_the_pipeline_spark_conf(settings):
    local = profiles(settings)["cms_pipeline"]["outputs"]["local"]
    assert local["method"] == "session"
    assert local["server_side_parameters"] == spark_conf(settings)


def test_tables_are_parquet_without_native_delta(settings):
    assert settings.spark.native_delta is False
    assert table_file_format(settings) == "parquet"


def test_short_error_drops_plans_and_stack_traces():
    raw = (
        "Runtime Error in model x (models/gold/x.sql)\n"
        "  [UNRESOLVED_COLUMN] A column `y` cannot be resolved.; line 3 pos 8;\n"
        "'CreateTable `gold`.`x`, ErrorIfExists\n"
        "+- 'Project [*]\n"
        "\tat org.apache.spark.sql.Foo\n"
    )
    assert short_error(raw) == (
        "Runtime Error in model x (models/gold/x.sql)\n"
        "  [UNRESOLVED_COLUMN] A column `y` cannot be resolved.; line 3 pos 8;"
    )


def test_short_error_drops_terminal_colours():
    # a failing dbt unit test's message: its diff of actual and expected rows, coloured
    raw = "\x1b[32mactual\x1b[0m differs from \x1b[31mexpected\x1b[0m:\n\x1b[0;1m@@\x1b[0m,claim_count"
    assert short_error(raw) == "actual differs from expected:\n@@,claim_count"


def test_vars_only_for_commands_that_take_them():
    assert _takes_vars(["build", "-s", "x"])
    assert _takes_vars(["docs", "generate"])
    assert _takes_vars(["docs", "serve"])  # it parses the project, which needs the vars
    assert not _takes_vars(["clean"])


def test_problems_name_model_test_and_stored_rows():
    run = DbtRun(
        ["build"],
        False,
        1.0,
        [
            NodeResult("model.p.x", "x", "model", "error", "boom", relation="gold_build_1.x"),
            NodeResult(
                "test.p.t", "t", "test", "fail", "", 3, "gold_build_1_audit.t", attached_to="x"
            ),
            NodeResult("test.p.e", "e", "test", "error", "Table not found", attached_to="x"),
            NodeResult("model.p.ok", "ok", "model", "success"),
        ],
    )
    text = describe_problems(run)
    assert "test e on model x could not run: Table not found" in text
    assert "model x (gold_build_1.x) failed: boom" in text
    assert (
        "test t on model x: 3 failing row(s); rows to look at: select * from gold_build_1_audit.t"
        in text
    )
    assert "ok" not in text.replace("look", "")


def test_promote_refuses_a_failed_build(settings):
    failed = BuildResult("silver", "b1", "silver_build_b1", False, error="test x failed")
    record_run(settings, failed, None)
    with pytest.raises(PublishError, match="published silver schema is unchanged"):
        promote(settings, None, "silver", "b1")


def test_promote_refuses_an_unknown_build(settings):
    with pytest.raises(PublishError, match="no run record"):
        promote(settings, None, "gold", "nope")


def test_run_records_are_json_and_delta(settings):
    from deltalake import DeltaTable

    ok = BuildResult("gold", "b2", "gold_build_b2", True, models=["fct_claims"])
    path = record_run(settings, ok, None)
    assert json.loads(path.read_text())["models"] == ["fct_claims"]
    rows = DeltaTable(settings.lake_path("_meta", "dbt_runs")).to_pyarrow_table().to_pylist()
    assert [(r["build_id"], r["success"]) for r in rows] == [("b2", True)]


PMPM = [
    {"state_code": "05", "state": "CA", "beneficiary_year": 2009, "claims_pmpm": 10.0},
    {"state_code": "05", "state": "CA", "beneficiary_year": 2008, "claims_pmpm": 8.0},
    {"state_code": "10", "state": "FL", "beneficiary_year": 2008, "claims_pmpm": 9.0},
]


def test_state_documents_hold_every_year_in_order():
    docs = state_documents(PMPM)
    assert sorted(docs) == ["05", "10"]
    assert [y["beneficiary_year"] for y in docs["05"]["years"]] == [2008, 2009]
    assert docs["05"]["state"] == "CA"


def test_year_documents_hold_states_and_prevalence():
    prevalence = [{"beneficiary_year": 2008, "condition_code": "CHF", "prevalence": 0.2}]
    docs = year_documents(PMPM, prevalence)
    assert sorted(docs) == [2008, 2009]
    assert [s["state_code"] for s in docs[2008]["states"]] == ["05", "10"]
    assert docs[2008]["chronic_conditions"][0]["condition_code"] == "CHF"
    assert docs[2009]["chronic_conditions"] == []


def test_cli_registers_transform_commands():
    from typer.testing import CliRunner

    from cms_pipeline.cli import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("transform", "unit-test", "dbt", "docs", "export"):
        assert command in result.output
    docs = CliRunner().invoke(app, ["docs", "--help"])
    assert "generate" in docs.output and "serve" in docs.output


def test_promote_refuses_a_gated_build_that_its_gate_has_not_passed(settings):
    # a gated build left the dbt tests its Soda gate repeats to that gate
    gated = BuildResult("silver", "b3", "silver_build_b3", True, models=["x"], gated=True)
    record_run(settings, gated, None)
    with pytest.raises(PublishError, match="has not passed it"):
        promote(settings, None, "silver", "b3")
