"""Ingestion of the real bundled CMS files and of broken variants made from them."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from cms_pipeline.ingest import ingest, ledger
from cms_pipeline.lake import bronze_uri, quarantine_uri
from tests.conftest import copy_files

BENE = "DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"


def data_lines(path: Path) -> int:
    """Rows in a CMS CSV (or the CSV in a CMS ZIP), counted from the bytes."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            data = z.read(z.namelist()[0])
    else:
        data = path.read_bytes()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return lines - 1


def bronze_rows(settings, table: str) -> int:
    return DeltaTable(bronze_uri(settings, table)).to_pyarrow_dataset().count_rows()


def quarantine(settings):
    return DeltaTable(quarantine_uri(settings)).to_pyarrow_table()


def write_variant(src: Path, dest: Path, transform) -> Path:
    dest.write_bytes(transform(src.read_bytes()))
    return dest


@pytest.mark.parametrize("sample", ["sample_0", "sample_1", "sample_2"])
def test_every_row_read_lands_in_bronze_or_quarantine(settings, sample_data, landing, sample):
    files = copy_files(sample_data / sample, landing)
    report = ingest(settings, str(landing))
    assert not report.rejected
    by_file = {f.file: f for f in report.files}
    assert set(by_file) == {f.name for f in files}
    for path in files:
        result = by_file[path.name]
        assert result.status == "loaded"
        assert result.rows_read == data_lines(path)
        assert result.rows_read == result.rows_bronze + result.rows_quarantined
    for table in {f.table for f in report.files}:
        expected = sum(f.rows_bronze for f in report.files if f.table == table)
        assert bronze_rows(settings, table) == expected


def test_lineage_columns_point_back_to_the_source_line(settings, sample_data, landing):
    src = copy_files(sample_data / "sample_1", landing, BENE)[0]
    ingest(settings, str(landing))
    t = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()
    lines = src.read_text().splitlines()
    row = t.filter(pc.equal(t["_source_line"], 500)).to_pylist()[0]
    assert lines[499].split(",")[0] == row["DESYNPUF_ID"]
    assert row["year"] == "2008" and row["sample"] == "1" and row["_source_file"] == BENE
    assert len(row["_source_sha256"]) == 64


def test_same_bytes_twice_is_a_no_op(settings, sample_data, landing):
    copy_files(sample_data / "sample_1", landing, BENE)
    first = ingest(settings, str(landing))
    version = DeltaTable(bronze_uri(settings, "beneficiary_summary")).version()
    second = ingest(settings, str(landing))
    assert [f.status for f in first.files] == ["loaded"]
    assert [f.status for f in second.files] == ["duplicate"]
    assert DeltaTable(bronze_uri(settings, "beneficiary_summary")).version() == version
    # the same bytes under another name are still the same delivery
    shutil.copyfile(landing / BENE, landing / BENE.replace("Sample_1", "Sample_9"))
    third = ingest(settings, str(landing))
    assert {f.status for f in third.files} == {"duplicate"}


def test_a_lake_whose_path_has_a_space_ingests_and_knows_its_files(settings, sample_data, tmp_path):
    """delta-rs names a local table by URL ("a%20lake"); the ledger and keys are read back
    from the folder itself (ingest failed with FileNotFoundError on the second file)."""
    spaced = settings.model_copy(update={"lake": str(tmp_path / "a lake" / "lake")})
    landing = tmp_path / "landing"
    landing.mkdir()
    copy_files(sample_data / "sample_0", landing)
    first = ingest(spaced, str(landing))
    assert {f.status for f in first.files} == {"loaded"} and len(first.files) == len(
        list(landing.iterdir())
    )
    assert {f.status for f in ingest(spaced, str(landing)).files} == {"duplicate"}


def test_same_name_with_new_bytes_is_a_changed_delivery(settings, sample_data, tmp_path):
    first, second = tmp_path / "d1", tmp_path / "d2"
    first.mkdir(), second.mkdir()
    src = sample_data / "sample_1" / BENE
    shutil.copyfile(src, first / BENE)
    lines = src.read_bytes().split(b"\r\n")
    (second / BENE).write_bytes(b"\r\n".join(lines[:101]) + b"\r\n")
    ingest(settings, str(first))
    report = ingest(settings, str(second))
    (result,) = report.files
    assert result.status == "loaded" and result.changed_delivery
    assert any("changed delivery" in w for w in result.warnings)
    assert result.rows_bronze == 100


def _bene(sample_data) -> Path:
    return sample_data / "sample_1" / BENE


def test_truncated_last_line_is_quarantined_with_its_line(settings, sample_data, landing):
    data = _bene(sample_data).read_bytes().rstrip(b"\r\n")
    cut = data[: data.rfind(b",", 0, len(data) - 20)]
    (landing / BENE).write_bytes(cut)
    total = cut.count(b"\n")  # header + complete lines; the last line has no line end
    (result,) = ingest(settings, str(landing)).files
    assert result.rows_read == total
    assert result.rows_quarantined == 1 and result.rows_bronze == total - 1
    q = quarantine(settings).to_pylist()[0]
    assert q["_source_line"] == total + 1
    assert "expected 32 fields" in q["reason"]
    assert q["raw_line"] == cut.split(b"\r\n")[-1].decode()
    # the fast pass gave up on that line: its uncommitted files are gone, not left behind
    folders = list(Path(bronze_uri(settings, "beneficiary_summary")).glob("_batch_id=*"))
    assert [f.name for f in folders] == [f"_batch_id={result.batch_id}"]


def test_bad_date_names_line_and_column(settings, sample_data, landing):
    lines = _bene(sample_data).read_bytes().split(b"\r\n")
    fields = lines[10].split(b",")
    fields[1] = b"19431332"
    lines[10] = b",".join(fields)
    (landing / BENE).write_bytes(b"\r\n".join(lines))
    (result,) = ingest(settings, str(landing)).files
    assert result.rows_quarantined == 1
    q = quarantine(settings).to_pylist()[0]
    assert (q["_source_line"], q["column"]) == (11, "BENE_BIRTH_DT")
    assert "calendar date" in q["reason"]


def test_non_utf8_bytes_are_quarantined_not_loaded(settings, sample_data, landing):
    lines = _bene(sample_data).read_bytes().split(b"\r\n")
    lines[5] = lines[5].replace(b",", b",\xff\xfe", 1)
    (landing / BENE).write_bytes(b"\r\n".join(lines))
    (result,) = ingest(settings, str(landing)).files
    q = quarantine(settings).to_pylist()
    assert result.rows_quarantined == 1 and q[0]["_source_line"] == 6
    assert "UTF-8" in q[0]["reason"].upper() and "\\xff" in q[0]["raw_line"]
    bronze = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()
    assert bronze.num_rows == result.rows_bronze  # bronze is valid UTF-8 and readable


@pytest.mark.parametrize(
    "case, transform, message",
    [
        (
            "extra_column",
            lambda b: b.replace(b'"PPPYMT_CAR"', b'"PPPYMT_CAR","NEW_COL"', 1),
            "extra ['NEW_COL']",
        ),
        (
            "renamed_column",
            lambda b: b.replace(b'"SP_CHF"', b'"SP_HEART"', 1),
            "renamed SP_CHF -> SP_HEART",
        ),
        ("wrong_delimiter", lambda b: b.replace(b",", b"|"), "delimiter is '|'"),
        ("empty_file", lambda b: b"", "empty"),
        ("header_only", lambda b: b.split(b"\r\n")[0] + b"\r\n", "no data rows"),
    ],
)
def test_broken_files_are_rejected_with_a_clear_message_and_nothing_stored(
    settings, sample_data, landing, case, transform, message
):
    write_variant(_bene(sample_data), landing / BENE, transform)
    report = ingest(settings, str(landing))
    (result,) = report.files
    assert result.status == "rejected"
    assert message in result.error["problem"]
    assert result.error["file"] == BENE and result.error["hint"]
    assert DeltaTable.is_deltatable(bronze_uri(settings, "beneficiary_summary")) is False
    rows = ledger.read_ledger(settings).to_pylist()
    assert rows[-1]["status"] == "rejected"


def test_rejected_file_leaves_earlier_data_untouched(settings, sample_data, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    copy_files(sample_data / "sample_1", good, BENE)
    ingest(settings, str(good))
    before = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()
    name = BENE.replace("2008", "2009")
    write_variant(_bene(sample_data), bad / name, lambda b: b.replace(b",", b";"))
    (result,) = ingest(settings, str(bad)).files
    assert result.status == "rejected"
    after = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()
    assert after.equals(before)


def test_evolve_policy_maps_columns_by_name_and_records_a_warning(settings, sample_data, landing):
    from cms_pipeline.ingest.discovery import discover
    from cms_pipeline.ingest.load import load_delivery

    data = _bene(sample_data).read_bytes().split(b"\r\n")
    data = [
        line + (b',"NEW_COL"' if i == 0 else b",x") if line else line for i, line in enumerate(data)
    ]
    (landing / BENE).write_bytes(b"\r\n".join(data))
    (delivery,), _ = discover(settings, str(landing))
    evolving = delivery.contract.model_copy(update={"on_schema_change": "evolve"})
    delivery = type(delivery)(delivery.uri, delivery.relative, evolving, delivery.attributes)
    result = load_delivery(settings, delivery)
    assert result.status == "loaded" and any("schema evolved" in w for w in result.warnings)
    t = DeltaTable(bronze_uri(settings, "beneficiary_summary")).to_pyarrow_table()
    assert "NEW_COL" in t.column_names and set(t["NEW_COL"].to_pylist()) == {"x"}


def test_quarantine_policy_sends_every_row_to_quarantine(settings, sample_data, landing):
    from cms_pipeline.ingest.discovery import discover
    from cms_pipeline.ingest.load import load_delivery

    write_variant(
        _bene(sample_data), landing / BENE, lambda b: b.replace(b'"SP_CHF"', b'"SP_HEART"', 1)
    )
    (delivery,), _ = discover(settings, str(landing))
    contract = delivery.contract.model_copy(update={"on_schema_change": "quarantine"})
    result = load_delivery(
        settings, type(delivery)(delivery.uri, delivery.relative, contract, delivery.attributes)
    )
    assert result.rows_bronze == 0 and result.rows_quarantined == data_lines(landing / BENE)
    assert quarantine(settings).num_rows == result.rows_quarantined


def test_zip_with_two_csvs_is_rejected(settings, sample_data, landing):
    target = landing / BENE.replace(".csv", ".zip")
    with zipfile.ZipFile(target, "w") as z:
        z.write(_bene(sample_data), "a.csv")
        z.write(_bene(sample_data), "b.csv")
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "rejected" and "holds 2 CSV files" in result.error["problem"]


def test_unknown_files_are_listed_as_ignored(settings, landing):
    (landing / "notes.txt").write_text("hello")
    report = ingest(settings, str(landing))
    assert report.files == [] and report.ignored == ["notes.txt"]


def test_duplicate_keys_fail_the_expectation_loudly_with_numbers(settings, sample_data, landing):
    lines = _bene(sample_data).read_bytes().split(b"\r\n")
    lines.insert(3, lines[7])  # the beneficiary of line 8 now also stands on line 4
    (landing / BENE).write_bytes(b"\r\n".join(lines))
    (result,) = ingest(settings, str(landing)).files
    assert result.status == "loaded"
    (failure,) = result.expectation_failures
    rows = len([line for line in lines[1:] if line])
    # the copy on line 4 comes first: line 9, the original, repeats its key
    assert (
        f"key (DESYNPUF_ID, year) not unique: 1 rows repeat a key seen earlier among {rows:,} rows (lines 9)"
        in failure
    )
    assert Path(result.report_html).read_text().count("DESYNPUF_ID") >= 1


def test_each_batch_is_profiled_and_compared_with_the_previous_state(
    settings, sample_data, landing
):
    copy_files(sample_data / "sample_1", landing, "DE1_0_200[89]_Beneficiary*")
    report = ingest(settings, str(landing))
    first, second = report.files
    assert first.changes[0].startswith("beneficiary_summary: +")
    assert (
        f"({first.rows_bronze:,} -> {first.rows_bronze + second.rows_bronze:,})"
        in second.changes[0]
    )
    profiles = DeltaTable(f"{settings.lake}/_meta/profiles").to_pyarrow_table()
    assert set(profiles["batch_id"].to_pylist()) == {first.batch_id, second.batch_id}
    html = Path(second.report_html).read_text()
    assert "BENE_BIRTH_DT" in html and "<html" in html.lower()


def test_bronze_files_are_plain_parquet_text_with_codes_dictionary_encoded(
    settings, sample_data, landing
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = copy_files(sample_data / "sample_1", landing, BENE)[0]
    ingest(settings, str(landing))
    dt = DeltaTable(bronze_uri(settings, "beneficiary_summary"))
    (path,) = dt.file_uris()
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow  # no Arrow schema stored: what any Parquet reader sees
    assert schema.field("BENE_SEX_IDENT_CD").type == pa.string()
    assert schema.field("_source_file").type == pa.string()
    chunk = parquet.metadata.row_group(0)
    names = [chunk.column(i).path_in_schema for i in range(chunk.num_columns)]
    encodings = {n: chunk.column(i).encodings for i, n in enumerate(names)}
    assert "RLE_DICTIONARY" in encodings["BENE_SEX_IDENT_CD"]
    assert "RLE_DICTIONARY" not in encodings["DESYNPUF_ID"]  # ids: nearly all distinct
    table = dt.to_pyarrow_table()
    lines = src.read_text().splitlines()[1:]
    assert table.num_rows == len(lines)
    first = table.filter(pc.equal(table["_source_line"], 2)).to_pylist()[0]
    values = lines[0].split(",")
    assert first["DESYNPUF_ID"] == values[0] and first["BENE_SEX_IDENT_CD"] == values[3]


def test_checks_give_the_same_verdicts_on_encoded_and_plain_columns(sample_data):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from cms_pipeline.config import load_settings
    from cms_pipeline.ingest.validation import find_violations

    bene = load_settings().sources["beneficiary_summary"]
    lines = _bene(sample_data).read_bytes().split(b"\r\n")
    lines[5] = lines[5].replace(b",", b",\xff", 1)  # bad bytes in the first data column
    fields = lines[10].split(b",")
    fields[1], fields[3] = b"19431332", b"7"  # not a date, not in the sex domain
    lines[10] = b",".join(fields)
    body = b"\r\n".join(lines[1:200]) + b"\r\n"

    def read(types):
        options = pacsv.ConvertOptions(
            column_types=types, null_values=[""], strings_can_be_null=True, check_utf8=False
        )
        read_options = pacsv.ReadOptions(column_names=bene.column_names)
        return pacsv.read_csv(pa.py_buffer(body), read_options, convert_options=options)

    plain = read({c: pa.string() for c in bene.column_names}).to_batches()[0]
    dictionary = pa.dictionary(pa.int32(), pa.string())
    encoded = read({c: dictionary for c in bene.column_names}).to_batches()[0]
    a, b = find_violations(plain, bene), find_violations(encoded, bene)
    assert a.rows.tolist() == b.rows.tolist() == [4, 9]
    assert a.columns == b.columns
    assert a.reasons == b.reasons and "utf-8" in a.reasons[0]


def test_tables_load_side_by_side_and_one_tables_files_in_order(settings, sample_data, landing):
    """sample_0: three beneficiary years (one table) and four claim tables, two at once."""
    from cms_pipeline.ingest.discovery import discover

    copy_files(sample_data / "sample_0", landing)
    assert settings.ingest.parallel_tables == 2
    report = ingest(settings, str(landing))
    discovered = [d.relative for d in discover(settings, str(landing))[0]]
    assert [f.file for f in report.files] == discovered  # the report keeps discovery order
    bene = [f for f in report.files if f.table == "beneficiary_summary"]
    assert len(bene) == 3
    # one table's deliveries commit one after another, in discovery order
    assert [f.bronze_version for f in bene] == sorted(f.bronze_version for f in bene)
    assert len({f.bronze_version for f in bene}) == 3
    loaded = ledger.read_ledger(settings).to_pylist()
    assert sorted(r["sha256"] for r in loaded) == sorted(f.sha256 for f in report.files)


def test_ingest_and_profiling_read_a_logical_type_by_one_rule():
    """A value ingest lets through is one profiling counts as conforming, and the reverse;
    an integer of 19 digits (beyond int64) is refused by both, with the rule named."""
    import numpy as np
    import pyarrow as pa

    from cms_pipeline.config import ColumnSpec, load_settings
    from cms_pipeline.ingest.validation import find_violations
    from cms_pipeline.profiling.conformance import conformance

    bene = load_settings().sources["beneficiary_summary"]
    values = ["12", "-3", "123456789012345678", "1234567890123456789", "1.5", ".5", "20080229"]
    text = pa.array([*values, "x"], pa.string())
    for kind in ("integer", "decimal", "date"):
        spec = ColumnSpec(name="V", type=kind)
        contract = bene.model_copy(update={"columns": [spec]})
        found = find_violations(pa.RecordBatch.from_arrays([text], names=["V"]), contract)
        conforms, _, _ = conformance(spec, text)
        assert found.rows.tolist() == np.flatnonzero(~conforms).tolist(), kind
        if kind == "integer":
            reasons = dict(zip(found.rows.tolist(), found.reasons, strict=True))
            assert reasons[3] == "expected a whole number of at most 18 digits"
            assert 2 not in reasons  # 18 digits fit
