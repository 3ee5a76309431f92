"""A delivery that passes its contract but fails the bronze gate stops the pipeline and
stays in bronze (every later run's gate fails on it) until `cms-pipeline bronze retract`
takes it out; then the next run publishes without it: bronze holds the very batches the
published builds read, so they stay published. On the session lake (`first_run`)."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from cms_pipeline.ingest import ledger
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration


BAD_NAME = "DE1_0_2008_to_2010_Inpatient_Claims_Sample_7.csv"


@pytest.fixture(scope="module")
def bad_delivery(first_run, run_pipeline, spark_settings, tmp_path_factory):
    """A real inpatient row made into a new claim that starts in 2015, delivered alone:
    it passes its file contract and fails the bronze gate. The run's summary, and gold's
    published build before it."""
    from cms_pipeline.publish.publishing import published_build

    before = published_build(spark_settings, "gold")
    src = SAMPLE_DATA / "sample_1" / "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv"
    header, first, *_ = src.read_bytes().split(b"\r\n")
    fields = first.split(b",")
    fields[1], fields[3] = b"999999999999999", b"20150105"  # CLM_ID, CLM_FROM_DT
    bad = tmp_path_factory.mktemp("bad")
    (bad / BAD_NAME).write_bytes(header + b"\r\n" + b",".join(fields) + b"\r\n")
    return {"result": run_pipeline(bad, train="never"), "gold_before": before}


def test_failed_gate_stops_the_pipeline_and_keeps_published_gold(bad_delivery, spark_settings):
    from cms_pipeline.publish.publishing import published_build

    result = bad_delivery["result"]
    assert not result["ok"] and result["stopped_at"] == "bronze gate"
    failed = [
        (c["table"], c["check"], c["value"])
        for c in result["gates"]["bronze"]["checks"]
        if c["outcome"] == "fail"
    ]
    # the one bad row: its start date out of range and after its end; every failure is on
    # its table (a one-row batch may also shift the batch-on-batch payment mean)
    assert {table for table, _, _ in failed} == {"inpatient_claims"}
    values = {check: value for _, check, value in failed}
    assert values["Claim start date is YYYYMMDD within 2007-2010"] == 1
    assert values["Claim does not end before it starts"] == 1
    assert "Claim start date is YYYYMMDD within 2007-2010" in result["reason"]
    assert published_build(spark_settings, "gold") == bad_delivery["gold_before"]
    assert "silver" not in result["layers"] and "gold" not in result["layers"]


def test_retracting_the_bad_delivery_lets_the_next_run_publish(
    bad_delivery, run_pipeline, spark, spark_settings, tmp_path
):
    """The delivery that failed the bronze gate (test above) is retracted; the next run
    passes the gate and keeps the published builds, which never read it."""
    from typer.testing import CliRunner

    from cms_pipeline.cli import app

    [bad] = [
        r
        for r in ledger.read_ledger(spark_settings).to_pylist()
        if r["file_name"] == BAD_NAME and r["status"] in ledger.DONE
    ]
    before = DeltaTable(bronze_uri(spark_settings, "inpatient_claims"))
    version_before, rows_before = before.version(), before.to_pyarrow_dataset().count_rows()
    gold_before = bad_delivery["gold_before"]

    cli = CliRunner()
    args = ["bronze", "retract", BAD_NAME, "--lake", spark_settings.lake, "--json"]
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
    # same batches as the published silver read, at a later Delta version: no rebuild
    assert result["layers"]["gold"] == {"up_to_date": True, "published": gold_before}
    assert result["layers"]["silver"]["up_to_date"]
    bad_claims = spark.table("silver.inpatient_claims").where(
        f"_source_file = '{bad['source_file']}'"
    )
    assert bad_claims.count() == 0
    assert spark.table("bronze.inpatient_claims").count() == rows_before - bad["rows_bronze"]
