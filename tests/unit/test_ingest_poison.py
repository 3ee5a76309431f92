"""Poison files made from the real bundled CMS files: each is refused with a named error
kind, nothing of it is kept, the other files of the landing area still load, a second
run does not read it again, and the corrected file loads."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from cms_pipeline.cli.ingest import describe_error
from cms_pipeline.ingest import ingest, ledger, reader
from cms_pipeline.ingest.counting import LineCountingReader
from cms_pipeline.ingest.discovery import discover
from cms_pipeline.ingest.errors import IngestError
from cms_pipeline.ingest.load import load_delivery
from cms_pipeline.lake import bronze_uri, quarantine_uri
from tests.conftest import SAMPLE_DATA, copy_files
from tests.unit.test_ingest import data_lines

BENE_2008 = "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"
BENE_2008_ZIP = "DE1_0_2008_Beneficiary_Summary_File_Sample_2.zip"
# Loaded beside each poison file: one of its table (loads after it, in the same queue)
# and one of another table (loads beside it, in another thread).
GOOD = ["DE1_0_2009_Beneficiary_Summary_File_Sample_1.csv", "*Inpatient*"]
SMALL_BLOCK = 64 << 10


def real_csv() -> bytes:
    return (SAMPLE_DATA / "sample_1" / BENE_2008).read_bytes()


def real_zip() -> bytes:
    return (SAMPLE_DATA / "sample_2" / BENE_2008_ZIP).read_bytes()


def csv_rows() -> int:
    return data_lines(SAMPLE_DATA / "sample_1" / BENE_2008)


def zip_rows() -> int:
    return data_lines(SAMPLE_DATA / "sample_2" / BENE_2008_ZIP)


def rows_of(data: bytes) -> list[bytes]:
    """The file's lines (index 0 = the header = physical line 1)."""
    return data.rstrip(b"\r\n").split(b"\r\n")


def rows_from(settings, table_uri: str, name: str) -> int:
    if not DeltaTable.is_deltatable(table_uri):
        return 0
    t = DeltaTable(table_uri).to_pyarrow_table(columns=["_source_file"])
    return pc.sum(pc.equal(t["_source_file"], name)).as_py() or 0


def refused_once(settings, landing: Path, name: str, data: bytes, kind: str | set, line=None):
    """Land the poison file beside good ones and check everything a refusal promises
    (`kind`: the error kind, or the kinds it may be)."""
    good = [f for pattern in GOOD for f in copy_files(SAMPLE_DATA / "sample_1", landing, pattern)]
    (landing / name).write_bytes(data)
    report = ingest(settings, str(landing))
    by_file = {f.file: f for f in report.files}
    bad = by_file[name]
    assert bad.status == "rejected" and report.rejected == [bad]
    kinds = {kind} if isinstance(kind, str) else kind
    kind = bad.error["kind"]
    assert kind in kinds and bad.error["file"] == name and bad.error["line"] == line
    message = describe_error(bad.error)
    assert name in message and (line is None or f"line {line}" in message)
    assert bad.error["hint"] and report.problem_kinds() == {kind: 1}
    for path in good:  # the run went on with the other files
        assert by_file[path.name].status == "loaded"
        assert by_file[path.name].rows_bronze + by_file[path.name].rows_quarantined == (
            data_lines(path)
        )
    # nothing of the poison file kept: no rows, no uncommitted files left behind
    assert rows_from(settings, bronze_uri(settings, "beneficiary_summary"), name) == 0
    assert rows_from(settings, quarantine_uri(settings), name) == 0
    assert (bad.rows_read, bad.rows_bronze, bad.rows_quarantined) == (0, 0, 0)
    lake = Path(settings.lake)
    assert not list(lake.glob(f"**/_batch_id={bad.sha256[:16]}*"))
    rows = [r for r in ledger.read_ledger(settings).to_pylist() if r["sha256"] == bad.sha256]
    assert [r["status"] for r in rows] == ["rejected"]
    assert json.loads(rows[0]["error"]) == bad.error

    again = ingest(settings, str(landing))
    by_file = {f.file: f for f in again.files}
    assert by_file[name].status == "rejected_before" and again.rejected == []
    assert by_file[name].error == bad.error  # the reason of the run that read it
    assert again.totals()["rejected_before"] == 1 and not again.clean
    assert {by_file[p.name].status for p in good} == {"duplicate"}
    rows = [r for r in ledger.read_ledger(settings).to_pylist() if r["sha256"] == bad.sha256]
    assert len(rows) == 1  # recorded once: not read again
    return bad


def corrected_loads(settings, landing: Path, name: str, data: bytes, rows: int) -> None:
    (landing / name).write_bytes(data)
    report = ingest(settings, str(landing))
    (fixed,) = [f for f in report.files if f.file == name]
    assert fixed.status == "loaded" and fixed.rows_bronze + fixed.rows_quarantined == rows
    assert rows_from(settings, bronze_uri(settings, "beneficiary_summary"), name) == (
        fixed.rows_bronze
    )


@pytest.mark.parametrize("case", ["lone_cr_large", "lone_cr_small", "one_line_small"])
def test_a_file_without_line_ends_is_no_line_end(settings, landing, monkeypatch, case):
    lines = rows_of(real_csv())
    if case == "lone_cr_large":  # more than the header search reads
        monkeypatch.setattr(reader, "HEADER_LIMIT", SMALL_BLOCK)
        data = real_csv().replace(b"\r\n", b"\r")
        assert len(data) > reader.HEADER_LIMIT
    elif case == "lone_cr_small":
        data = b"\r".join(lines[:100]) + b"\r"
    else:  # every line end lost, the whole file within the header search
        data = b",".join(lines[:100])
    assert b"\n" not in data
    assert (len(data) > reader.HEADER_LIMIT) == (case == "lone_cr_large")
    refused_once(settings, landing, BENE_2008, data, "no_line_end", line=1)
    corrected_loads(settings, landing, BENE_2008, real_csv(), csv_rows())


def test_header_search_reads_no_further_than_its_limit():
    stream = LineCountingReader(io.BytesIO(real_csv().replace(b"\r\n", b",") * 4))
    with pytest.raises(IngestError) as caught:
        reader.read_header(stream, "f.csv", limit=SMALL_BLOCK)
    assert caught.value.kind == "no_line_end"
    assert stream.bytes == SMALL_BLOCK + 1  # not the whole file


@pytest.mark.parametrize("where", ["middle", "after_header"])
def test_a_line_longer_than_the_block_is_line_too_long(settings, landing, monkeypatch, where):
    monkeypatch.setattr(reader, "BLOCK_SIZE", SMALL_BLOCK)
    lines = rows_of(real_csv())
    # line ends lost over enough rows to make one line of three blocks
    start = len(lines) // 2 if where == "middle" else 1
    width = 3 * SMALL_BLOCK // len(lines[start]) + 1
    joined = lines[:start] + [b",".join(lines[start : start + width])] + lines[start + width :]
    if where == "after_header":  # no line end at all after the header
        joined = [lines[0], b",".join(lines[1:])]
    data = b"\r\n".join(joined) + b"\r\n"
    refused_once(settings, landing, BENE_2008, data, "line_too_long", line=start + 1)
    corrected_loads(settings, landing, BENE_2008, real_csv(), len(lines) - 1)


@pytest.mark.parametrize("block", [None, SMALL_BLOCK])
@pytest.mark.parametrize("quoting", ["line_break_in_quotes", "quote_never_closed"])
def test_a_quoted_value_over_a_line_end_is_multiline_field(
    settings, landing, monkeypatch, block, quoting
):
    if block:
        monkeypatch.setattr(reader, "BLOCK_SIZE", block)
    lines = rows_of(real_csv())
    at = 2 * len(lines) // 3
    fields = lines[at].split(b",")
    date = fields[1]  # BENE_BIRTH_DT, e.g. 19230501
    if quoting == "line_break_in_quotes":
        fields[1] = b'"' + date[:4] + b"\r\n" + date[4:] + b'"'
    else:
        fields[1] = b'"' + date
    lines[at] = b",".join(fields)
    data = b"\r\n".join(lines) + b"\r\n"
    refused_once(settings, landing, BENE_2008, data, "multiline_field", line=at + 1)


def test_zip_bomb_by_ratio_is_refused_before_expanding(settings, landing):
    header = rows_of(real_csv())[0] + b"\r\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(BENE_2008_ZIP.replace(".zip", ".csv"), header + bytes(32 << 20))
    info = zipfile.ZipFile(io.BytesIO(buffer.getvalue())).infolist()[0]
    assert info.file_size / info.compress_size > reader.MAX_ZIP_RATIO
    bad = refused_once(settings, landing, BENE_2008_ZIP, buffer.getvalue(), "zip_bomb")
    assert f"{info.file_size:,}" in bad.error["problem"]
    corrected_loads(settings, landing, BENE_2008_ZIP, real_zip(), zip_rows())


def test_zip_bomb_by_size_is_refused(settings, landing, monkeypatch):
    info = zipfile.ZipFile(SAMPLE_DATA / "sample_2" / BENE_2008_ZIP).infolist()[0]
    monkeypatch.setattr(reader, "MAX_ZIP_BYTES", info.file_size - 1)
    refused_once(settings, landing, BENE_2008_ZIP, real_zip(), "zip_bomb")
    monkeypatch.undo()
    # the limit raised, the same bytes are still refused until retried (they are known)
    (result,) = [f for f in ingest(settings, str(landing)).files if f.file == BENE_2008_ZIP]
    assert result.status == "rejected_before"


def _crc_flipped(data: bytes) -> bytes:
    """The real ZIP with the CRC-32 of its member wrong in the central directory."""
    out = bytearray(data)
    entry = out.rfind(b"PK\x01\x02")
    out[entry + 16] ^= 0xFF
    return bytes(out)


def _data_byte_flipped(data: bytes) -> bytes:
    """The real ZIP with one byte of the compressed member changed."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    out[start + info.compress_size // 2] ^= 0x55
    return bytes(out)


@pytest.mark.parametrize(
    "damage, kinds",
    [(_crc_flipped, {"zip_crc"}), (_data_byte_flipped, {"zip_crc", "zip_corrupt"})],
)
def test_zip_with_bad_bytes_is_refused_and_nothing_of_it_kept(
    settings, landing, monkeypatch, damage, kinds
):
    # small blocks: rows are parsed and written before the check at the member's end fails
    monkeypatch.setattr(reader, "BLOCK_SIZE", SMALL_BLOCK)
    # a changed compressed byte fails the CRC, or the expansion itself, by where it falls
    refused_once(settings, landing, BENE_2008_ZIP, damage(real_zip()), kinds)
    corrected_loads(settings, landing, BENE_2008_ZIP, real_zip(), zip_rows())


def _copy_slowly(source: bytes, target: Path, chunks: int, pause: float) -> threading.Thread:
    """A copy into the landing area in progress: the file grows chunk by chunk."""
    step = len(source) // chunks + 1
    target.write_bytes(source[:step])

    def copy():
        with target.open("ab") as f:
            for i in range(step, len(source), step):
                time.sleep(pause)
                f.write(source[i : i + step])
                f.flush()

    thread = threading.Thread(target=copy)
    thread.start()
    return thread


def test_a_file_still_being_copied_is_unsettled_and_read_next_run(settings, landing):
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"settle_seconds": 0.5})}
    )
    data = real_csv()
    copying = _copy_slowly(data, landing / BENE_2008, chunks=40, pause=0.05)
    try:
        report = ingest(settings, str(landing))
    finally:
        copying.join()
    (result,) = report.files
    assert result.status == "unsettled" and report.unsettled == [result]
    assert result.error["kind"] == "unsettled" and result.error["file"] == BENE_2008
    assert report.problem_kinds() == {"unsettled": 1} and report.rejected == []
    assert not DeltaTable.is_deltatable(bronze_uri(settings, "beneficiary_summary"))
    statuses = ledger.read_ledger(settings)["status"].to_pylist()
    assert statuses == ["unsettled"]  # recorded, but it decides nothing
    assert ledger.rejected_hashes(ledger.read_ledger(settings)) == set()
    # the copy is done: the next run waits for the file to be still, then loads it
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "loaded"
    assert result.rows_bronze + result.rows_quarantined == data_lines(landing / BENE_2008)


def test_a_file_that_changed_since_discovery_is_unsettled(settings, landing, sample_data):
    lines = rows_of(real_csv())
    half = b"\r\n".join(lines[: len(lines) // 2]) + b"\r\n"
    (landing / BENE_2008).write_bytes(half)
    (delivery,), _ = discover(settings, str(landing))
    (landing / BENE_2008).write_bytes(real_csv())  # the copy went on after discovery
    result = load_delivery(settings, delivery)
    assert result.status == "unsettled" and "since it was found" in result.error["problem"]
    assert not DeltaTable.is_deltatable(bronze_uri(settings, "beneficiary_summary"))
    (again,) = ingest(settings, str(landing)).files
    assert again.status == "loaded" and again.rows_bronze == len(lines) - 1


def test_a_young_complete_file_is_waited_for_not_skipped(settings, landing, sample_data):
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"settle_seconds": 0.3})}
    )
    (path,) = copy_files(sample_data / "sample_1", landing, BENE_2008)
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "loaded" and result.rows_bronze == data_lines(path)


def test_a_file_gone_since_discovery_is_put_off_not_fatal(settings, landing, sample_data):
    copy_files(sample_data / "sample_1", landing, BENE_2008)
    (delivery,), _ = discover(settings, str(landing))
    (landing / BENE_2008).unlink()  # moved away while the run was under way
    result = load_delivery(settings, delivery)
    assert result.status == "unsettled" and "left the landing area" in result.error["problem"]
    assert ledger.rejected_hashes(ledger.read_ledger(settings)) == set()
