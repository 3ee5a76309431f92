"""Each corruption breaks a file in exactly the way it says, on real CMS files (CSV and ZIP)."""

from __future__ import annotations

import csv
import io
import os
import zipfile

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.synth.corruptions import (
    BAD_BYTES,
    BAD_DATE,
    EXTRA_COLUMN,
    KINDS,
    corrupt_file,
    read_text,
)


@pytest.fixture(params=["csv", "zip"])
def source(request, sample_data):
    if request.param == "csv":
        return sample_data / "sample_1" / "DE1_0_2008_to_2010_Inpatient_Claims_Sample_1.csv"
    return sample_data / "sample_2" / "DE1_0_2010_Beneficiary_Summary_File_Sample_2.zip"


def raw_lines(path) -> list[bytes]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            data = zf.read(zf.namelist()[0])
    else:
        data = path.read_bytes()
    return data.split(b"\r\n")[:-1]


def rows(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(read_text(path), newline="")))


def test_output_keeps_the_container(source, tmp_path):
    out = tmp_path / source.name
    corrupt_file(source, out, "bad_date", seed=1)
    if source.suffix == ".zip":
        with zipfile.ZipFile(out) as zf:
            assert zf.namelist() == [source.with_suffix(".csv").name]
    assert raw_lines(out)[0] == raw_lines(source)[0]


def test_truncated_line(source, tmp_path):
    out = tmp_path / source.name
    report = corrupt_file(source, out, "truncated_line", seed=3)
    before, after = rows(source), rows(out)
    row = report["row"]
    assert len(after) == len(before)
    assert len(after[row]) == report["fields_kept"] < len(before[0])
    assert after[row] == before[row][: report["fields_kept"]]
    assert [r for i, r in enumerate(after) if i != row] == [
        r for i, r in enumerate(before) if i != row
    ]


def test_extra_column(source, tmp_path):
    out = tmp_path / source.name
    corrupt_file(source, out, "extra_column", seed=0)
    before, after = rows(source), rows(out)
    assert after[0] == [*before[0], EXTRA_COLUMN]
    assert all(len(r) == len(before[0]) + 1 for r in after)
    assert raw_lines(out)[0].endswith(f'"{EXTRA_COLUMN}"'.encode())


def test_renamed_column(source, tmp_path):
    out = tmp_path / source.name
    report = corrupt_file(source, out, "renamed_column", seed=4)
    before, after = rows(source), rows(out)
    col = before[0].index(report["column"])
    assert after[0][col] == report["renamed_to"] != before[0][col]
    assert after[0][:col] + after[0][col + 1 :] == before[0][:col] + before[0][col + 1 :]
    assert after[1:] == before[1:]


def test_bad_date(source, tmp_path):
    out = tmp_path / source.name
    report = corrupt_file(source, out, "bad_date", seed=5)
    before, after = rows(source), rows(out)
    col = before[0].index(report["column"])
    assert report["column"].endswith("_DT")
    assert after[report["row"]][col] == BAD_DATE.decode()
    assert before[report["row"]][col] != BAD_DATE.decode()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [report["row"]]


def test_wrong_delimiter(source, tmp_path):
    out = tmp_path / source.name
    corrupt_file(source, out, "wrong_delimiter", seed=0)
    lines, original = raw_lines(out), raw_lines(source)
    assert all(b"," not in line for line in lines)
    assert [line.replace(b";", b",") for line in lines] == original


def test_non_utf8(source, tmp_path):
    out = tmp_path / source.name
    report = corrupt_file(source, out, "non_utf8", seed=6)
    lines = raw_lines(out)
    bad = [i for i, line in enumerate(lines) if BAD_BYTES in line]
    assert bad == [report["row"]]
    with pytest.raises(UnicodeDecodeError):
        lines[report["row"]].decode("utf-8")
    header = lines[0].decode().split(",")
    fields = lines[report["row"]].split(b",")
    assert fields[header.index(f'"{report["column"]}"')].endswith(BAD_BYTES)


def test_duplicate_rows(source, tmp_path):
    out = tmp_path / source.name
    report = corrupt_file(source, out, "duplicate_rows", seed=7)
    before, after = raw_lines(source), raw_lines(out)
    assert (
        len(after) - 1 == report["rows_out"] == report["rows_in"] + len(report["duplicated_rows"])
    )
    assert len(after) > len(before)
    for row in report["duplicated_rows"][:5]:
        assert after.count(before[row]) == 2
    assert sorted(set(after)) == sorted(set(before))


def test_same_seed_same_corruption(source, tmp_path):
    a = corrupt_file(source, tmp_path / f"a{source.suffix}", "non_utf8", seed=9)
    b = corrupt_file(source, tmp_path / f"b{source.suffix}", "non_utf8", seed=9)
    assert a["row"] == b["row"] and a["column"] == b["column"]


def test_unknown_kind_is_refused(source, tmp_path):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_file(source, tmp_path / "x.csv", "garbled", seed=0)
    assert len(KINDS) == 7


def test_ingestion_header_check_sees_the_header_corruptions(source, tmp_path):
    from cms_pipeline.ingest.header import check_header

    name = source.with_suffix(".csv").name
    contract, _ = load_settings().contract_for(name)
    for kind in ("extra_column", "renamed_column", "wrong_delimiter"):
        out = tmp_path / f"{kind}{source.suffix}"
        report = corrupt_file(source, out, kind, seed=2)
        check = check_header(raw_lines(out)[0], contract.column_names, ",", "utf-8")
        assert not check.matches, kind
        if kind == "extra_column":
            assert check.extra == [EXTRA_COLUMN]
        if kind == "renamed_column":
            assert report["column"] in check.renamed or report["column"] in check.missing


def test_cli_writes_broken_copies_that_ingest_refuses(tmp_path):
    """`cms-pipeline synth --corrupt` as a user runs it, then `cms-pipeline ingest` of the
    broken copies: a renamed column gets every file refused, naming the column."""
    import json

    from typer.testing import CliRunner

    from cms_pipeline.cli import app
    from cms_pipeline.cli.ingest import EXIT_REJECTIONS

    out, lake = tmp_path / "synth", tmp_path / "lake"
    args = ["synth", "--scale", "0.001", "--seed", "3", "--out", str(out), "--workers", "1"]
    made = CliRunner().invoke(app, [*args, "--corrupt", "renamed_column", "--json"])
    assert made.exit_code == 0, made.output
    summary = json.loads(made.stdout[made.stdout.index("{") :])
    broken = sorted((out / "corrupt" / "renamed_column").iterdir())
    assert [p.name for p in broken] == sorted(f["file"] for f in summary["files"])
    assert {c["kind"] for c in summary["corrupt"]} == {"renamed_column"}
    for path in broken:  # settled: written "long ago" for the landing's settle rule
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    ingest = ["ingest", str(out / "corrupt" / "renamed_column"), "--lake", str(lake), "--json"]
    refused = CliRunner().invoke(app, ingest)
    assert refused.exit_code == EXIT_REJECTIONS, refused.output
    report = json.loads(refused.stdout)
    assert report["totals"]["rejected"] == len(broken) and report["totals"]["loaded"] == 0
    assert report["problem_kinds"] == {"header_mismatch": len(broken)}
    renamed = {c["file"]: (c["column"], c["renamed_to"]) for c in summary["corrupt"]}
    for refused_file in report["files"]:
        error = refused_file["error"]
        assert error["file"] == refused_file["file"] and error["line"] == 1
        column, renamed_to = renamed[refused_file["file"]]
        assert f"renamed {column} -> {renamed_to}" in error["problem"], error
        assert error["hint"]  # what to do
