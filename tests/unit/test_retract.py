"""`cms-pipeline bronze retract`: a committed delivery leaves the current bronze version
(earlier versions keep it), its quarantined rows go too, and the ledger records it.
Real CMS rows, real Delta tables (delta-rs); no JVM."""

from __future__ import annotations

import shutil

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from cms_pipeline.cli import app
from cms_pipeline.ingest import ingest, ledger
from cms_pipeline.ingest.maintenance import compact
from cms_pipeline.ingest.retract import RetractError, find_deliveries, retract
from cms_pipeline.lake import bronze_uri, quarantine_uri


def _rows(settings, table: str, version: int | None = None) -> int:
    return (
        DeltaTable(bronze_uri(settings, table), version=version).to_pyarrow_dataset().count_rows()
    )


def _rows_of(settings, table: str, sha256: str) -> int:
    data = DeltaTable(bronze_uri(settings, table)).to_pyarrow_table(columns=["_source_sha256"])
    return data.column("_source_sha256").to_pylist().count(sha256)


@pytest.fixture
def loaded(settings, sample_data, tmp_path):
    """sample_0 (every kind, 1-2 rows each) loaded into a fresh lake."""
    landing = tmp_path / "landing"
    shutil.copytree(sample_data / "sample_0", landing / "sample_0")
    report = ingest(settings, str(landing))
    assert all(f.status == "loaded" for f in report.files)
    return report


def test_retract_by_file_removes_its_rows_and_keeps_earlier_versions(settings, loaded):
    inpatient = next(f for f in loaded.files if f.table == "inpatient_claims")
    before = DeltaTable(bronze_uri(settings, "inpatient_claims")).version()
    total = _rows(settings, "inpatient_claims")

    [done] = retract(settings, inpatient.file)

    assert done.rows_bronze == inpatient.rows_bronze > 0
    assert _rows(settings, "inpatient_claims") == total - inpatient.rows_bronze
    assert _rows(settings, "inpatient_claims", before) == total  # time travel still reads it
    history = DeltaTable(bronze_uri(settings, "inpatient_claims")).history(1)[0]
    assert history["cms.operation"] == "retract" and history["batch_id"] == inpatient.batch_id
    rows = [r for r in ledger.read_ledger(settings).to_pylist() if r["sha256"] == inpatient.sha256]
    assert [r["status"] for r in rows].count("retracted") == 1
    # the same bytes are not read again when they land again, and naming it again says so
    with pytest.raises(RetractError, match="retracted already"):
        retract(settings, inpatient.file)


def test_retract_by_batch_id_leaves_other_tables_alone(settings, loaded):
    carrier = [f for f in loaded.files if f.table == "carrier_claims"]
    assert len(carrier) == 2  # files A and B
    others = {f.table: _rows(settings, f.table) for f in loaded.files}

    retract(settings, carrier[0].batch_id)

    assert _rows(settings, "carrier_claims") == others["carrier_claims"] - carrier[0].rows_bronze
    assert _rows_of(settings, "carrier_claims", carrier[1].sha256) == carrier[1].rows_bronze
    for table, n in others.items():
        if table != "carrier_claims":
            assert _rows(settings, table) == n


def test_a_compacted_delivery_is_cut_out_of_its_batch(settings, loaded):
    bene = [f for f in loaded.files if f.table == "beneficiary_summary"]
    assert len(bene) >= 2
    result = compact(settings, "beneficiary_summary")
    assert result.new_batch  # the summaries now share one batch folder
    total = _rows(settings, "beneficiary_summary")

    [done] = retract(settings, bene[0].sha256)

    assert done.rows_bronze == bene[0].rows_bronze
    assert _rows(settings, "beneficiary_summary") == total - bene[0].rows_bronze
    assert _rows_of(settings, "beneficiary_summary", bene[0].sha256) == 0
    for other in bene[1:]:
        assert _rows_of(settings, "beneficiary_summary", other.sha256) == other.rows_bronze


def test_quarantined_rows_of_the_delivery_go_too(settings, sample_data, tmp_path):
    src = next((sample_data / "sample_1").glob("*Inpatient*"))
    lines = src.read_bytes().split(b"\r\n")
    fields = lines[1].split(b",")
    fields[3] = b"2008XX01"  # a bad claim start date: that row goes to quarantine
    lines[1] = b",".join(fields)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / src.name).write_bytes(b"\r\n".join(lines))
    [result] = ingest(settings, str(landing)).files
    assert result.rows_quarantined >= 1

    [done] = retract(settings, result.batch_id)

    assert done.rows_quarantined == result.rows_quarantined
    quarantine = DeltaTable(quarantine_uri(settings)).to_pyarrow_table(columns=["_source_sha256"])
    assert result.sha256 not in quarantine.column("_source_sha256").to_pylist()


def test_a_name_with_two_deliveries_must_be_named_by_batch(settings, sample_data, tmp_path):
    src = next((sample_data / "sample_0").glob("*Inpatient*"))
    for i, extra in enumerate((b"", b"\n")):  # same name, new bytes: a changed delivery
        folder = tmp_path / f"delivery{i}"
        folder.mkdir()
        (folder / src.name).write_bytes(src.read_bytes().rstrip(b"\r\n") + b"\r\n" + extra)
        ingest(settings, str(folder))
    current = ledger.read_ledger(settings)
    with pytest.raises(RetractError, match="Name one by its batch id"):
        find_deliveries(current, src.name)
    with pytest.raises(RetractError, match="no committed delivery"):
        find_deliveries(current, "DE1_0_2008_to_2010_Inpatient_Claims_Sample_99.csv")


def test_cli_retract_exit_codes(settings, loaded):
    outpatient = next(f for f in loaded.files if f.table == "outpatient_claims")
    runner = CliRunner()
    args = ["bronze", "retract", outpatient.batch_id, "--lake", settings.lake, "--json"]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert outpatient.batch_id in ok.output
    unknown = runner.invoke(app, ["bronze", "retract", "nothing-here", "--lake", settings.lake])
    assert unknown.exit_code == 2 and "no committed delivery" in unknown.output


def test_retracted_bytes_are_not_read_again_until_retried(settings, sample_data, tmp_path):
    from cms_pipeline.ingest.discovery import discover
    from cms_pipeline.ingest.landing import retry

    landing = tmp_path / "landing"
    landing.mkdir()
    src = next((sample_data / "sample_0").glob("*Outpatient*"))
    shutil.copy(src, landing / src.name)
    [first] = ingest(settings, str(landing)).files
    retract(settings, first.batch_id)

    [again] = ingest(settings, str(landing)).files
    assert again.status == "retracted_before" and _rows(settings, "outpatient_claims") == 0

    [delivery], _ = discover(settings, str(landing))
    reloaded = retry(settings, delivery)
    assert reloaded.status == "loaded" and reloaded.batch_id != first.batch_id
    assert _rows(settings, "outpatient_claims") == first.rows_bronze
    [live] = ledger.live(ledger.read_ledger(settings)).to_pylist()
    assert live["batch_id"] == reloaded.batch_id
