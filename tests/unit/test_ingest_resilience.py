"""Kills, crashes between commits, concurrent runs: no loss, no duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from cms_pipeline.config import PROJECT_ROOT
from cms_pipeline.ingest import ingest, ledger
from cms_pipeline.lake import bronze_uri
from tests.conftest import SAMPLE_DATA, copy_files

BENE = "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"
INGEST = [sys.executable, "-m", "cms_pipeline", "ingest"]
KILL_CHILD = PROJECT_ROOT / "tests" / "heavy" / "kill_child.py"


def big_file(landing: Path, copies: int) -> tuple[Path, int]:
    """The real beneficiary file with its rows repeated: large enough to kill mid-write."""
    header, *rows = (SAMPLE_DATA / "sample_1" / BENE).read_bytes().rstrip(b"\r\n").split(b"\r\n")
    path = landing / BENE
    with path.open("wb") as f:
        f.write(header + b"\r\n")
        for _ in range(copies):
            f.write(b"\r\n".join(rows) + b"\r\n")
    return path, len(rows) * copies


def _data_rows(path: Path) -> int:
    return len(path.read_bytes().rstrip(b"\r\n").split(b"\r\n")) - 1  # without the header


def bronze_table(settings):
    return DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()


def test_kill_mid_write_leaves_nothing_visible_and_rerun_completes(settings, landing, tmp_path):
    # the kill matrix's child (tests/heavy/kill_child.py) SIGKILLs `cms-pipeline ingest`
    # itself once the bronze Parquet files are written, before their Delta commit: the
    # same point every time, with no polling race
    _, rows = big_file(landing, 3)
    lake_bronze = Path(settings.lake) / "bronze" / "beneficiary_summary"
    mark = tmp_path / "killed_at"
    args = ["ingest", str(landing), "--lake", settings.lake, "--json"]
    done = subprocess.run(
        [sys.executable, str(KILL_CHILD), "run", "bronze_files_written", str(mark), "--", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert "/bronze/beneficiary_summary" in mark.read_text()
    # Parquet files were on disk, but no commit made them part of the table.
    assert list(lake_bronze.glob("_batch_id=*/*.parquet"))
    assert not DeltaTable.is_deltatable(str(lake_bronze)) or bronze_table(settings).num_rows == 0
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "loaded" and result.rows_bronze == rows
    table = bronze_table(settings)
    assert table.num_rows == rows
    assert pc.count_distinct(table["_source_line"]).as_py() == rows


def test_crash_between_bronze_commit_and_ledger_is_recovered_without_duplicates(
    settings, landing, monkeypatch
):
    copy_files(SAMPLE_DATA / "sample_1", landing, BENE)
    real_record = ledger.record

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the bronze commit")

    monkeypatch.setattr(ledger, "record", crash)
    with pytest.raises(KeyboardInterrupt, match="killed after the bronze commit"):
        ingest(settings, str(landing))
    committed = bronze_table(settings).num_rows
    # bronze was committed with every row of the file, the ledger was not
    assert committed == _data_rows(landing / BENE)
    assert ledger.read_ledger(settings).num_rows == 0
    monkeypatch.setattr(ledger, "record", real_record)
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "recovered" and result.rows_bronze == committed
    assert bronze_table(settings).num_rows == committed
    (again,) = ingest(settings, str(landing)).files
    assert again.status == "duplicate"


def test_two_ingests_at_once_load_each_file_exactly_once(settings, landing):
    copy_files(SAMPLE_DATA / "sample_1", landing)
    procs = [
        subprocess.Popen(
            [*INGEST, str(landing), "--lake", settings.lake, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    led = ledger.read_ledger(settings)
    loaded = led.filter(pc.is_in(led["status"], value_set=__import__("pyarrow").array(ledger.DONE)))
    files = sorted(p.name for p in landing.iterdir())
    assert sorted(loaded["file_name"].to_pylist()) == files  # one loaded row per file
    for table in set(loaded["table"].to_pylist()):
        expected = pc.sum(loaded.filter(pc.equal(loaded["table"], table))["rows_bronze"]).as_py()
        actual = DeltaTable(bronze_uri(settings, table)).to_pyarrow_dataset().count_rows()
        assert actual == expected


def test_compaction_keeps_every_row_and_older_versions_readable(settings, landing):
    from cms_pipeline.ingest.maintenance import compact

    for year in ("2008", "2009", "2010"):
        copy_files(SAMPLE_DATA / "sample_1", landing, f"DE1_0_{year}_Beneficiary*")
    ingest(settings, str(landing))
    uri = bronze_uri(settings, "beneficiary_summary")
    before = DeltaTable(uri)
    old_version, old_rows = before.version(), before.to_pyarrow_table()
    result = compact(settings, "beneficiary_summary")
    assert result.files_compacted == 3 and result.rows == old_rows.num_rows
    after = DeltaTable(uri)
    assert len(after.file_uris()) == 1
    key = ["_source_file", "_source_line"]
    assert (
        after.to_pyarrow_table()
        .sort_by([(k, "ascending") for k in key])
        .drop_columns(["_batch_id"])
        .equals(old_rows.sort_by([(k, "ascending") for k in key]).drop_columns(["_batch_id"]))
    )
    assert DeltaTable(uri, version=old_version).to_pyarrow_table().num_rows == old_rows.num_rows


def test_checkpoints_are_written_as_the_table_grows(settings, tmp_path):
    from cms_pipeline.ingest.delta_writer import CHECKPOINT_EVERY

    src = (SAMPLE_DATA / "sample_1" / BENE).read_bytes().split(b"\r\n")
    for i in range(CHECKPOINT_EVERY + 1):
        folder = tmp_path / f"d{i}"
        folder.mkdir()
        (folder / BENE).write_bytes(b"\r\n".join(src[: 2 + i]) + b"\r\n")  # new bytes each time
        ingest(settings, str(folder))
    log = Path(bronze_uri(settings, "beneficiary_summary")) / "_delta_log"
    assert list(log.glob("*.checkpoint.parquet"))


def test_compaction_takes_whole_batches_only(settings, landing):
    """Spark reads a batch folder whole: a batch must never lose only some of its files."""
    from cms_pipeline.ingest.delta_writer import PARTITION, BatchWriter, commit_batch
    from cms_pipeline.ingest.maintenance import compact

    for year in ("2009", "2010"):
        copy_files(SAMPLE_DATA / "sample_1", landing, f"DE1_0_{year}_Beneficiary*")
    ingest(settings, str(landing))
    uri = bronze_uri(settings, "beneficiary_summary")
    rows = DeltaTable(uri).to_pyarrow_table().drop_columns([PARTITION])
    split = BatchWriter(uri, "split-batch", rows.schema, target_file_rows=rows.num_rows // 4)
    for chunk in rows.to_batches(max_chunksize=rows.num_rows // 4):
        split.write(chunk)
    commit_batch(uri, rows.schema, split.finish(), {})

    def files_by_batch() -> dict[str, set[str]]:
        actions = pa.table(DeltaTable(uri).get_add_actions(flatten=True))
        out: dict[str, set[str]] = {}
        batches = actions[f"partition.{PARTITION}"].to_pylist()
        for path, batch in zip(actions["path"].to_pylist(), batches, strict=True):
            out.setdefault(batch, set()).add(path)
        return out

    before = files_by_batch()
    sizes = pa.table(DeltaTable(uri).get_add_actions(flatten=True))["size_bytes"].to_pylist()
    assert len(before["split-batch"]) > 1
    # every file is under the limit, but the split batch as a whole is not
    limit = max(sizes) + 1
    assert sum(sizes) - limit > limit
    result = compact(settings, "beneficiary_summary", small_bytes=limit)
    after = files_by_batch()
    assert result.files_compacted == 2
    assert after["split-batch"] == before["split-batch"]
    assert all(batch not in after or after[batch] == files for batch, files in before.items())
