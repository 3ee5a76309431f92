"""A delivery that passes its contract but fails the bronze gate stops the pipeline and
wedges every later run, until `cms-pipeline bronze retract` takes it out; then the next run
publishes silver and gold without it. On the session lake, after test_pipeline.py and
test_pipeline_layers.py (the layer tests read the first run's builds)."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from cms_pipeline.ingest import ledger
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration


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


def test_retracting_the_bad_delivery_lets_the_next_run_publish(
    first_run, run_pipeline, spark, spark_settings, tmp_path
):
    """The delivery that failed the bronze gate (test above) wedges every later run until
    it is retracted; then the next run publishes silver and gold without it."""
    from typer.testing import CliRunner

    from cms_pipeline.cli import app
    from cms_pipeline.publish import published_build

    bad_name = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_7.csv"
    live = [
        r
        for r in ledger.read_ledger(spark_settings).to_pylist()
        if r["file_name"] == bad_name and r["status"] in ledger.DONE
    ]
    assert len(live) == 1, "the failed-gate test above lands the bad delivery"
    [bad] = live
    before = DeltaTable(bronze_uri(spark_settings, "inpatient_claims"))
    version_before, rows_before = before.version(), before.to_pyarrow_dataset().count_rows()
    gold_before = published_build(spark_settings, "gold")

    wedged = run_pipeline(tmp_path, train="never")  # nothing new: the bad batch is still there
    assert not wedged["ok"] and wedged["stopped_at"] == "bronze gate"

    cli = CliRunner()
    args = ["bronze", "retract", bad_name, "--lake", spark_settings.lake, "--json"]
    retracted = cli.invoke(app, args)
    assert retracted.exit_code == 0, retracted.output
    again = cli.invoke(app, args)
    assert again.exit_code == 2 and "retracted already" in again.output

    after = DeltaTable(bronze_uri(spark_settings, "inpatient_claims"))
    assert after.to_pyarrow_dataset().count_rows() == rows_before - bad["rows_bronze"]
    # earlier versions still read it
    assert (
        DeltaTable(bronze_uri(spark_settings, "inpatient_claims"), version=version_before)
        .to_pyarrow_dataset()
        .count_rows()
        == rows_before
    )
    statuses = [
        r["status"]
        for r in ledger.read_ledger(spark_settings).to_pylist()
        if r["sha256"] == bad["sha256"]
    ]
    assert statuses.count("retracted") == 1

    result = run_pipeline(tmp_path, train="never")
    assert result["ok"], result["reason"]
    assert result["bronze_versions"]["inpatient_claims"] == after.version()
    assert result["layers"]["gold"]["build"]["build_id"] != gold_before["build_id"]
    bad_claims = spark.table("silver.inpatient_claims").where(
        f"_source_file = '{bad['source_file']}'"
    )
    assert bad_claims.count() == 0
    assert spark.table("bronze.inpatient_claims").count() == rows_before - bad["rows_bronze"]
