"""The batch report page: self-contained, every column shown, values escaped."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from cms_pipeline.batch_diff.compare import diff_batch, profile_state
from cms_pipeline.config import load_settings
from cms_pipeline.ingest.expectations import check_expectations
from cms_pipeline.profiling.profilers import Profiler
from cms_pipeline.reports import render_profile_html, write_batch_report


def read_bene(sample_data, year: int):
    contract = load_settings().sources["beneficiary_summary"]
    name = f"DE1_0_{year}_Beneficiary_Summary_File_Sample_1.csv"
    options = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in contract.column_names}, strings_can_be_null=True
    )
    table = pcsv.read_csv(sample_data / "sample_1" / name, convert_options=options)
    year_col = pa.array([str(year)] * table.num_rows, pa.string())
    return contract, name, table.append_column("year", year_col)


@pytest.fixture
def bene_profiles(sample_data):
    contract, _, before = read_bene(sample_data, 2008)
    _, name, after = read_bene(sample_data, 2009)
    previous, table_keys = profile_state(before, contract)
    profiler = Profiler(contract, source_file=name, batch_id="20091231T000000-b2")
    for batch in after.to_batches(max_chunksize=4096):
        profiler.update(batch)
    profile = profiler.result()
    diff = diff_batch(
        profile,
        rows_before=before.num_rows,
        previous_profile=previous,
        new_keys=profiler.keys.key_set(),
        table_keys=table_keys,
    )
    return contract, profile, diff


def test_page_is_self_contained_and_shows_every_column(bene_profiles):
    contract, profile, diff = bene_profiles
    html = render_profile_html(profile, diff, check_expectations(profile, contract))
    assert html.startswith("<!doctype html>")
    for name in contract.column_names:
        assert f'id="col-{name}"' in html, name
    # nothing fetched from elsewhere: no links, scripts or remote images
    assert not re.search(r"<(link|script|img|iframe)\b", html)
    assert "http://" not in html and "https://" not in html and "url(" not in html
    assert "<svg" in html  # histograms of typed columns are drawn inline
    assert f"{profile.rows:,}" in html
    for line in diff.summary_lines():
        assert line.strip().replace("->", "-&gt;") in html
    for col in diff.flagged:
        assert f'<span class="flag">{col.flags[0]}</span>' in html


def test_values_are_escaped_and_failures_listed():
    contract = load_settings().sources["beneficiary_summary"]
    table = pa.table(
        {
            "DESYNPUF_ID": ["00016F745862898F", "00016F745862898F"],
            "BENE_SEX_IDENT_CD": ["<script>alert(1)</script>", "1"],
            "year": ["2008", "2008"],
        }
    )
    profiler = Profiler(contract, source_file="x.csv", batch_id="b")
    profiler.update(table)
    profile = profiler.result()
    failures = check_expectations(profile, contract)
    html = render_profile_html(profile, None, failures)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html or "\\u003cscript\\u003e" in html
    assert "Failed expectations" in html and "unique_keys" in html
    assert "1 rows repeat a key" in html


def test_write_batch_report_writes_json_and_html(tmp_path, bene_profiles):
    contract, profile, diff = bene_profiles
    paths = write_batch_report(tmp_path / "reports", profile, diff)
    assert paths["html"].read_text().startswith("<!doctype html>")
    document = json.loads(paths["json"].read_text())
    assert document["profile"]["rows"] == profile.rows
    assert [c["column"] for c in document["profile"]["columns"]] == contract.column_names
    assert document["diff"]["rows_after"] == diff.rows_after
    assert document["summary"] == diff.summary_lines()
    assert paths["html"].name == "beneficiary_summary_20091231T000000-b2.html"
