"""Verdict logic without a JVM: Soda outcomes -> check results -> gate, stored rows, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cms_pipeline.quality import store
from cms_pipeline.quality.history import check_trends, summarize_runs
from cms_pipeline.quality.metrics import Metric, previous_variables, wanted_metrics
from cms_pipeline.quality.results import GateFailed, GateResult, from_scan, require_pass
from cms_pipeline.quality.sampler import keep_columns


def soda_check(name, outcome, value=None, line=1, definition="", **diagnostics):
    """A check as it appears in Soda's `get_scan_results()['checks']`."""
    return {
        "name": name,
        "definition": definition,
        "table": "inpatient_claims",
        "outcome": outcome,
        "location": {"filePath": "soda_checks/bronze/inpatient_claims.yml", "line": line},
        "diagnostics": {"value": value, **diagnostics},
    }


def gate_of(*checks, samples=None, errors=""):
    results = from_scan(
        "bronze", "inpatient_claims", {"checks": list(checks)}, samples or {}, errors
    )
    return GateResult("bronze", "bronze", "run1", "b1", datetime.now(UTC), results)


def test_only_warnings_pass_the_gate_and_are_kept():
    gate = gate_of(soda_check("ok", "pass", 0), soda_check("negatives", "warn", 8))
    assert gate.passed
    assert [c.check for c in gate.warnings] == ["negatives"]
    assert require_pass(gate) is gate


def test_severity_is_what_the_thresholds_declare():
    gate = gate_of(
        soda_check("negatives", "warn", 1, definition="- failed rows:\n    warn: when > 0\n"),
        soda_check("shift", "warn", 12, definition="warn: when > 10\n  fail: when > 50\n"),
        soda_check("dupes", "pass", 0, definition="- duplicate_count(a) = 0\n"),
    )
    assert [c.severity for c in gate.checks] == ["warn", "fail", "fail"]


def test_a_failure_stops_the_gate_and_explains_value_and_location():
    gate = gate_of(soda_check("ok", "pass", 0), soda_check("dates in range", "fail", 3, line=42))
    assert not gate.passed
    with pytest.raises(GateFailed) as err:
        require_pass(gate)
    text = str(err.value)
    assert "dates in range" in text and "measured 3" in text
    assert "soda_checks/bronze/inpatient_claims.yml:42" in text


def test_a_check_soda_could_not_evaluate_is_an_error_that_stops_the_gate():
    gate = gate_of(soda_check("bad sql", None))
    assert gate.checks[0].outcome == "error"
    assert not gate.passed


def test_scan_errors_become_a_failing_check():
    gate = gate_of(soda_check("ok", "pass", 0), errors="Query error: column X not found")
    assert not gate.passed
    assert "column X not found" in gate.failures[0].message


def test_failed_row_samples_attach_to_warn_and_fail_not_pass():
    rows = [{"CLM_ID": "1", "CLM_PMT_AMT": "-5"}]
    gate = gate_of(
        soda_check("negatives", "warn", 1),
        soda_check("ok", "pass", 0),
        samples={"negatives": rows, "ok": rows},
    )
    assert gate.checks[0].failed_rows == rows
    assert gate.checks[1].failed_rows == []


def test_non_numeric_measurements_are_not_values():
    gate = gate_of(soda_check("schema", "fail", None, missing_column_names=["CLM_ID"]))
    assert gate.checks[0].value is None
    assert "CLM_ID" in gate.checks[0].message


def test_previous_scan_variables_are_null_when_unknown():
    text = "x: ${prev_row_count} ${prev_avg__CLM_PMT_AMT} ${ prev_missing_pct__CLM_FROM_DT }"
    wanted = wanted_metrics(text)
    assert [m.key for m in wanted] == ["row_count", "avg(CLM_PMT_AMT)", "missing_pct(CLM_FROM_DT)"]
    variables = previous_variables(wanted, {"row_count": 10.0})
    assert variables == {
        "prev_row_count": "10.0",
        "prev_avg__CLM_PMT_AMT": "NULL",
        "prev_missing_pct__CLM_FROM_DT": "NULL",
    }
    assert wanted_metrics("no variables here") == [Metric("row_count")]
    assert Metric("avg", "A").variable == "prev_avg__A"


def test_previous_metrics_come_from_the_latest_passing_run():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "run_id": "r1",
            "layer": "gold",
            "table": "t",
            "metric": "row_count",
            "value": 10.0,
            "gate_passed": True,
            "checked_at": t0,
        },
        {
            "run_id": "r2",
            "layer": "gold",
            "table": "t",
            "metric": "row_count",
            "value": 20.0,
            "gate_passed": True,
            "checked_at": t0 + timedelta(hours=1),
        },
        {
            "run_id": "r3",
            "layer": "gold",
            "table": "t",
            "metric": "row_count",
            "value": 99.0,
            "gate_passed": False,
            "checked_at": t0 + timedelta(hours=2),
        },
        {
            "run_id": "r4",
            "layer": "silver",
            "table": "t",
            "metric": "row_count",
            "value": 5.0,
            "gate_passed": True,
            "checked_at": t0 + timedelta(hours=3),
        },
    ]
    assert store.latest_passing(rows, "gold") == {"t": {"row_count": 20.0}}


def test_stored_rows_carry_run_verdict_and_bounded_samples():
    gate = gate_of(
        soda_check("negatives", "warn", 2),
        soda_check("dupes", "fail", 1),
        samples={"negatives": [{"a": 1}, {"a": 2}]},
    )
    gate.table_versions["inpatient_claims"] = "delta v3"
    rows = store.result_rows(gate)
    assert {r["table_version"] for r in rows} == {"delta v3"}
    assert {r["gate_passed"] for r in rows} == {False}
    failed = store.failed_row_rows(gate)
    assert [(r["check"], r["row_number"]) for r in failed] == [("negatives", 0), ("negatives", 1)]


def test_history_summarizes_runs_newest_first_with_check_series():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i, outcome in enumerate(["pass", "fail"]):
        rows.append(
            {
                "run_id": f"r{i}",
                "layer": "gold",
                "schema": "gold",
                "batch_id": None,
                "table": "t",
                "check": "c",
                "outcome": outcome,
                "value": float(i),
                "gate_passed": outcome == "pass",
                "checked_at": t0 + timedelta(hours=i),
            }
        )
    runs = summarize_runs(rows)
    assert [r["run_id"] for r in runs] == ["r1", "r0"]
    assert runs[0]["fail"] == 1 and runs[1]["pass"] == 1
    (trend,) = check_trends(rows, [r["run_id"] for r in runs])
    assert [s["value"] for s in trend["series"]] == [0.0, 1.0]


def test_samples_of_wide_rows_keep_locators_and_mentioned_columns_only():
    columns = (
        ["DESYNPUF_ID", "CLM_ID"]
        + [f"HCPCS_CD_{n}" for n in range(1, 46)]
        + ["CLM_PMT_AMT", "_source_file", "_source_line"]
    )
    kept = keep_columns(columns, "SELECT * FROM t WHERE CAST(CLM_PMT_AMT AS DOUBLE) < 0", 16)
    assert kept == ["DESYNPUF_ID", "CLM_ID", "_source_file", "_source_line", "CLM_PMT_AMT"]
    assert keep_columns(columns[:5], "anything", 16) == columns[:5]
    assert len(keep_columns(columns, " ".join(columns), 16)) == 16


def test_a_missing_table_stops_the_gate_and_an_undelivered_one_is_named(settings):
    from cms_pipeline.ingest.ledger import delivered_tables
    from cms_pipeline.quality.gate import _missing_table, _not_delivered_result, check_files

    path = check_files("bronze")["carrier_claims"]
    assert "carrier_claims" not in delivered_tables(settings)  # empty lake: nothing loaded
    never_loaded = _not_delivered_result("bronze", "carrier_claims", path, "no file yet")
    assert (never_loaded.outcome, never_loaded.location, never_loaded.stops) == (
        "not delivered",
        "soda_checks/bronze/carrier_claims.yml:1",
        False,
    )
    lost = _missing_table("silver", "carrier_claims", "silver_build_x", path)
    assert lost.stops and "silver_build_x.carrier_claims not found" in lost.message


def test_the_check_command_shows_every_outcome_not_delivered_included(capsys):
    """`cms-pipeline check` renders a gate whose tables wait for their files (it raised
    KeyError on the outcome 'not delivered')."""
    from cms_pipeline.cli.quality import render_gate
    from cms_pipeline.quality.results import NOT_DELIVERED, CheckResult

    checks = [
        CheckResult("bronze", "carrier_claims", "Table has rows", NOT_DELIVERED),
        CheckResult("bronze", "inpatient_claims", "Table has rows", "pass", 5.0),
        CheckResult("bronze", "inpatient_claims", "Dates in range", "warn", 2.0),
    ]
    gate = GateResult("bronze", "bronze", "r1", None, datetime.now(UTC), checks)
    render_gate(gate.to_dict())
    shown = capsys.readouterr().out
    assert all(outcome in shown for outcome in (NOT_DELIVERED, "pass", "warn"))
    assert "bronze gate" in shown and "passed" in shown
