"""The whole gated pipeline, for real (Prefect, Spark, dbt, Soda, H2O), on the bundled
real CMS rows; then a second run (nothing new), then a run stopped by a failed gate.

The first run is the session's `first_run` (tests/integration/conftest.py), whose
published layers test_pipeline_layers.py checks as well."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from cms_pipeline.ingest import ledger
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration


def test_first_run_passes_every_gate_and_publishes(first_run, spark, spark_settings):
    assert first_run["ok"], first_run["reason"]
    assert {"bronze", "silver", "gold"} <= set(first_run["gates"])
    assert all(g["passed"] for g in first_run["gates"].values())
    loaded = ledger.read_ledger(spark_settings).to_pylist()
    for table, version in first_run["bronze_versions"].items():
        expected = sum(r["rows_bronze"] for r in loaded if r["table"] == table)
        assert (
            DeltaTable(bronze_uri(spark_settings, table), version=version)
            .to_pyarrow_dataset()
            .count_rows()
            == expected
        )
        assert spark.table(f"bronze.{table}").count() == expected
    bene_years = sum(r["rows_bronze"] for r in loaded if r["table"] == "beneficiary_summary")
    assert spark.table("silver.beneficiary").count() <= bene_years
    assert spark.table("gold.beneficiary_year").count() > 0


def test_first_run_trains_and_scores_every_use_case(first_run, spark):
    assert set(first_run["training"]) == set(first_run["scoring"]) and first_run["training"]
    for name, result in first_run["training"].items():
        assert result["leaderboard"] and 0.0 <= result["metrics"]["auc"] <= 1.0
        scored = first_run["scoring"][name]
        assert scored["rows"] == spark.table(scored["predictions_table"]).count() > 0


def test_stage_timings_are_reported(first_run):
    names = [s["name"] for s in first_run["stages"]]
    assert names[:3] == ["ingest", "bronze sync", "bronze gate"]
    assert all(s["seconds"] >= 0 and s["peak_mib"] > 0 for s in first_run["stages"])
    # Spark's work happens in its JVM, a child process: its CPU time is counted
    silver = next(s for s in first_run["stages"] if s["name"] == "silver")
    assert silver["cpu_seconds"] > 1.0
    # the Spark JVM's JIT compiles every query's generated code: measured from that JVM
    assert silver["jit_seconds"] > 0


def test_second_run_ingests_nothing_and_keeps_the_champions(
    first_run, run_pipeline, pipeline_landing
):
    second = run_pipeline(pipeline_landing, train="missing")
    assert second["ok"], second["reason"]
    assert second["ingest"]["totals"]["loaded"] == 0
    assert second["ingest"]["totals"]["duplicates"] == first_run["ingest"]["totals"]["files"]
    assert second["training"] == {}  # champions exist: no retraining
    assert set(second["scoring"]) == set(first_run["scoring"])
    # nothing new, same code: the published builds are kept, not built again
    for layer in ("silver", "gold"):
        assert second["layers"][layer]["up_to_date"]
        assert (
            second["layers"][layer]["published"]["build_id"]
            == first_run["layers"][layer]["build"]["build_id"]
        )


def test_failed_gate_stops_the_pipeline_and_keeps_published_gold(
    first_run, run_pipeline, spark_settings, tmp_path
):
    from cms_pipeline.publish import published_build

    before = published_build(spark_settings, "gold")
    src = SAMPLE_DATA / "sample_1" / "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv"
    header, first, *_ = src.read_bytes().split(b"\r\n")
    fields = first.split(b",")
    fields[1], fields[3] = b"999999999999999", b"20150105"  # a new claim dated after 2010
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "DE1_0_2008_to_2010_Inpatient_Claims_Sample_7.csv").write_bytes(
        header + b"\r\n" + b",".join(fields) + b"\r\n"
    )
    result = run_pipeline(bad, train="never")
    assert not result["ok"] and result["stopped_at"] == "bronze gate"
    assert "2007-2010" in result["reason"] or "date" in result["reason"].lower()
    assert published_build(spark_settings, "gold") == before
    assert "silver" not in result["layers"] and "gold" not in result["layers"]
