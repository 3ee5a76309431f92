"""A file refused by its contract is recorded once, not read again, listed with its reason,
and read again on request (`cms-pipeline landing retry`); corrected bytes load as usual."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from cms_pipeline.cli import app
from cms_pipeline.cli.ingest import EXIT_REJECTIONS
from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ingest, ledger
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA, copy_files
from tests.unit.test_ingest import data_lines

BENE = "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"
OTHER = "DE1_0_2009_Beneficiary_Summary_File_Sample_1.csv"


def real() -> bytes:
    return (SAMPLE_DATA / "sample_1" / BENE).read_bytes()


def renamed_column(data: bytes) -> bytes:
    return data.replace(b'"SP_CHF"', b'"SP_HEART"', 1)


def landed_long_ago(*paths: Path) -> None:
    """As files landed an hour ago: the CLI's settings wait for young files to settle."""
    past = time.time() - 3600
    for path in paths:
        os.utime(path, (past, past))


def rows_for(settings, sha: str) -> list[dict]:
    rows = [r for r in ledger.read_ledger(settings).to_pylist() if r["sha256"] == sha]
    return sorted(rows, key=lambda r: r["ingested_at"])


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_rejected_file_is_recorded_once_and_the_runs_go_on(settings, landing):
    (landing / BENE).write_bytes(renamed_column(real()))
    (good,) = copy_files(SAMPLE_DATA / "sample_1", landing, OTHER)
    first = ingest(settings, str(landing))
    (bad,) = first.rejected
    assert bad.file == BENE and bad.error["kind"] == "header_mismatch"
    assert "renamed SP_CHF -> SP_HEART" in bad.error["problem"] and bad.error["line"] == 1
    assert [f.file for f in first.loaded] == [OTHER]
    assert first.totals()["rejected"] == 1 and first.totals()["rejected_before"] == 0

    for _ in range(2):
        later = ingest(settings, str(landing))
        assert later.rejected == [] and [f.file for f in later.rejected_before] == [BENE]
        (skipped,) = later.rejected_before
        assert skipped.error == bad.error and skipped.sha256 == bad.sha256
        assert any("landing retry" in w for w in skipped.warnings)
        assert later.totals()["rejected_before"] == 1 and later.problem_kinds() == {
            "header_mismatch": 1
        }
        assert [f.status for f in later.files if f.file == OTHER] == ["duplicate"]
    assert [r["status"] for r in rows_for(settings, bad.sha256)] == ["rejected"]
    loaded = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_dataset()
    assert loaded.count_rows() == data_lines(good)


def test_corrected_bytes_load_and_the_rejection_leaves_the_list(settings, landing):
    (landing / BENE).write_bytes(renamed_column(real()))
    (bad,) = ingest(settings, str(landing)).rejected
    assert [r["sha256"] for r in _listed(settings)] == [bad.sha256]
    (landing / BENE).write_bytes(real())  # the sender fixed the file
    report = ingest(settings, str(landing))
    (fixed,) = report.files
    assert fixed.status == "loaded" and not fixed.changed_delivery and report.clean
    assert fixed.rows_bronze + fixed.rows_quarantined == data_lines(landing / BENE)
    assert _listed(settings) == []
    # the old bytes stay refused: landed again, they are skipped, not loaded
    (landing / BENE).write_bytes(renamed_column(real()))
    (again,) = ingest(settings, str(landing)).files
    assert again.status == "rejected_before"


def _listed(settings) -> list[dict]:
    result = cli("landing", "list", "--lake", settings.lake, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_exit_status_tells_rejections_from_clean(settings, landing):
    (landing / BENE).write_bytes(renamed_column(real()))
    copy_files(SAMPLE_DATA / "sample_1", landing, OTHER)
    landed_long_ago(*landing.iterdir())
    args = ["ingest", str(landing), "--lake", settings.lake, "--json"]
    first = cli(*args)
    assert first.exit_code == EXIT_REJECTIONS, first.output
    summary = json.loads(first.stdout)
    assert summary["totals"]["rejected"] == 1 and summary["totals"]["loaded"] == 1
    assert summary["problem_kinds"] == {"header_mismatch": 1}
    second = json.loads((again := cli(*args)).stdout)
    assert again.exit_code == EXIT_REJECTIONS
    assert summary["totals"]["rejected"] == 1 and second["totals"]["rejected_before"] == 1
    (landing / BENE).unlink()
    clean = cli(*args)
    assert clean.exit_code == 0, clean.output


def test_landing_retry_reads_a_rejected_file_after_its_contract_changed(
    settings, landing, copied_config, monkeypatch
):
    (landing / BENE).write_bytes(renamed_column(real()))
    landed_long_ago(landing / BENE)
    (bad,) = ingest(settings, str(landing)).rejected
    (listed,) = _listed(settings)
    assert (listed["file"], listed["kind"], listed["line"]) == (BENE, "header_mismatch", 1)
    assert "SP_HEART" in listed["problem"] and listed["hint"]

    # the operator accepts the new column name: rows go to quarantine instead
    _, config = copied_config
    contracts = config / "sources" / "synpuf.yaml"
    text = contracts.read_text().replace("on_schema_change: reject", "on_schema_change: quarantine")
    contracts.write_text(text)
    monkeypatch.setenv("CMS_PIPELINE_CONFIG", str(config))
    retried = cli(
        "landing", "retry", BENE, "--source", str(landing), "--lake", settings.lake, "--json"
    )
    assert retried.exit_code == 0, retried.output
    (result,) = json.loads(retried.stdout)["files"]
    assert result["status"] == "loaded"
    assert result["rows_quarantined"] == data_lines(landing / BENE)
    assert [r["status"] for r in rows_for(settings, bad.sha256)] == ["rejected", "retry", "loaded"]
    assert _listed(settings) == []


def test_landing_retry_of_still_bad_bytes_records_a_new_rejection(settings, landing):
    (landing / BENE).write_bytes(real().replace(b",", b";"))
    landed_long_ago(landing / BENE)
    (bad,) = ingest(settings, str(landing)).rejected
    path = str(landing / BENE)  # by path this time
    retried = cli("landing", "retry", path, "--lake", settings.lake, "--json")
    assert retried.exit_code == EXIT_REJECTIONS, retried.output
    (result,) = json.loads(retried.stdout)["files"]
    assert result["status"] == "rejected" and result["error"]["kind"] == "header_mismatch"
    assert "delimiter is ';'" in result["error"]["problem"]
    assert [r["status"] for r in rows_for(settings, bad.sha256)] == [
        "rejected",
        "retry",
        "rejected",
    ]
    (after,) = ingest(settings, str(landing)).files
    assert after.status == "rejected_before"


@pytest.mark.parametrize("name", ["no_such_file.csv", "notes.txt"])
def test_landing_retry_names_what_it_cannot_find(settings, landing, name):
    (landing / "notes.txt").write_text("not a CMS file")
    target = name if name.endswith(".csv") else str(landing / name)
    result = cli("landing", "retry", target, "--source", str(landing), "--lake", settings.lake)
    assert result.exit_code == 2 and name in result.output


def test_rejections_of_ledgers_written_before_error_kinds_are_still_skipped(settings, landing):
    """A ledger written by an earlier version: its error JSON has no kind."""
    (landing / BENE).write_bytes(renamed_column(real()))
    (bad,) = ingest(settings, str(landing)).rejected
    old = rows_for(settings, bad.sha256)[0]
    error = {k: v for k, v in json.loads(old["error"]).items() if k != "kind"}
    fresh = load_settings(lake=str(Path(settings.lake).parent / "lake2"))
    fresh = fresh.model_copy(update={"ingest": settings.ingest})
    ledger.record(fresh, [{**old, "error": json.dumps(error)}])
    (skipped,) = ingest(fresh, str(landing)).files
    assert skipped.status == "rejected_before" and skipped.error["kind"] == "invalid"
    assert skipped.error["problem"] == bad.error["problem"]
