"""Bronze's newest arrival vs the previous arrival, and the promotion decision (pure, no JVM)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cms_pipeline.publish.records import BuildResult
from cms_pipeline.quality import batches, store
from cms_pipeline.quality.metrics import BATCH, Metric, previous_variables, wanted_metrics
from cms_pipeline.quality.promotion import refusal
from cms_pipeline.quality.results import CheckResult, GateResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AVG = Metric("avg", "CLM_PMT_AMT", BATCH)
ROWS = Metric("row_count", scope=BATCH)
MISSING = Metric("missing_pct", "CLM_FROM_DT", BATCH)


def metric_row(run: str, hours: int, batch: str, metric: str, value: float, passed=True):
    return {
        "run_id": run,
        "layer": "bronze",
        "table": "inpatient_claims",
        "metric": metric,
        "value": value,
        "gate_passed": passed,
        "checked_at": T0 + timedelta(hours=hours),
        "batch": batch,
    }


def test_batch_variables_are_named_apart_from_whole_table_ones():
    text = "${prev_row_count} ${prev_batch_row_count} ${prev_batch_avg__CLM_PMT_AMT}"
    assert wanted_metrics(text) == [Metric("row_count"), ROWS, AVG]
    assert (ROWS.variable, AVG.variable) == ("prev_batch_row_count", "prev_batch_avg__CLM_PMT_AMT")
    assert AVG.key == "batch_avg(CLM_PMT_AMT)"
    assert previous_variables([AVG], {"avg(CLM_PMT_AMT)": 5.0}) == {AVG.variable: "NULL"}


def test_the_first_scan_sees_every_batch_as_new_and_has_nothing_to_compare_with():
    newest = batches.newest_arrival({"f1", "f2"}, [])
    assert newest == {"f1", "f2"}
    assert batches.previous_arrival([], newest) == {}


def test_a_new_batch_is_compared_with_the_arrival_before_it_not_the_whole_table():
    rows = [
        metric_row("r1", 0, "f1,f2", AVG.key, 100.0),
        metric_row("r2", 1, "f3", AVG.key, 110.0),
        metric_row("r3", 2, "f4", AVG.key, 999.0, passed=False),  # a failed scan: no baseline
    ]
    past = batches.passing_arrivals(rows, "bronze", "inpatient_claims")
    assert [a.batch_ids for a in past] == [{"f3"}, {"f1", "f2"}]
    newest = batches.newest_arrival({"f1", "f2", "f3", "f4"}, past)
    assert newest == {"f4"}  # still new: its scan failed
    assert batches.previous_arrival(past, newest) == {AVG.key: 110.0}


def test_scanning_the_same_bronze_again_repeats_the_same_comparison():
    rows = [metric_row("r1", 0, "f1", AVG.key, 100.0), metric_row("r2", 1, "f2", AVG.key, 90.0)]
    past = batches.passing_arrivals(rows, "bronze", "inpatient_claims")
    newest = batches.newest_arrival({"f1", "f2"}, past)
    assert newest == {"f2"}
    assert batches.previous_arrival(past, newest) == {AVG.key: 100.0}


def test_partials_combine_into_the_metrics_of_the_arrival():
    partials = {
        "f1": {ROWS: (4.0, 1.0), MISSING: (100.0, 4.0), AVG: (40.0, 4.0)},
        "f2": {ROWS: (6.0, 1.0), MISSING: (300.0, 6.0), AVG: (30.0, 3.0)},
        "f3": {ROWS: (1.0, 1.0), MISSING: (0.0, 1.0), AVG: (0.0, 0.0)},
    }
    both = batches.combine(partials, {"f1", "f2"})
    assert both[ROWS] == 10.0
    assert both[MISSING] == pytest.approx(40.0)  # 4 missing of 10 rows
    assert both[AVG] == pytest.approx(70.0 / 7)  # mean of the 7 present values
    assert batches.combine(partials, {"f3"})[AVG] is None  # no value to average
    assert batches.combine(partials, set()) == {}


def test_batch_ids_become_a_quoted_sql_list_or_null():
    assert batches.sql_list({"b", "a'x"}) == "'a''x','b'"
    assert batches.sql_list(set()) == "NULL"
    assert batches.label({"f2", "f1"}) == "f1,f2"


def test_stored_batch_metrics_carry_the_arrival_and_never_feed_whole_table_comparisons():
    gate = GateResult("bronze", "bronze", "r1", None, T0, [CheckResult("bronze", "t", "c", "pass")])
    rows = store.metric_rows(
        gate, {"t": {"row_count": 10.0, AVG.key: 5.0}}, arrivals={"t": "f1,f2"}
    )
    assert [(r["metric"], r["batch"]) for r in rows] == [("row_count", None), (AVG.key, "f1,f2")]
    assert store.latest_passing(rows, "bronze") == {"t": {"row_count": 10.0}}


def _build(**kw) -> BuildResult:
    base = {"layer": "silver", "build_id": "b2", "schema": "silver_build_b2", "success": True}
    return BuildResult(**(base | kw))


def _gate(schema="silver_build_b2", outcome="pass") -> GateResult:
    check = CheckResult("silver", "t", "One row per key", outcome, value=3.0)
    return GateResult("silver", schema, "r", "b2", T0, [check])


def test_only_a_successful_build_whose_own_gate_passed_may_be_promoted():
    assert refusal(_build(), _gate()) is None
    assert "failed" in refusal(_build(success=False, error="model x broke"), None)
    assert "never checked" in refusal(_build(), None)
    assert "checked silver_build_b1, not silver_build_b2" in refusal(
        _build(), _gate("silver_build_b1")
    )
    reason = refusal(_build(), _gate(outcome="fail"))
    assert "One row per key (measured 3)" in reason
