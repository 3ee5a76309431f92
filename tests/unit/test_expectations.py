"""The contract's expectations fail on a profile with their numbers, and only when broken."""

from __future__ import annotations

import pyarrow as pa

from cms_pipeline.config import load_settings
from cms_pipeline.ingest.expectations import check_expectations
from cms_pipeline.profiling.profilers import profile_batches
from tests.unit.test_profiling import (
    BENE_2008,
    contract,
    profile_of,
    read_sample,
    toy_table,
    toy_table_with_repeated_keys,
)


def test_duplicate_keys_fail_unique_keys_with_their_count_and_lines():
    profile = profile_of(toy_table_with_repeated_keys(), contract(), batch_rows=500)
    failures = check_expectations(profile, contract())
    [unique] = [f for f in failures if f.check == "unique_keys"]
    assert unique.observed == 11
    # the first repeated row is the copy of row 10, on line 3002
    assert "11 rows repeat a key" in unique.message and "3002" in unique.message


def test_row_count_and_not_null_expectations_fail_with_numbers():
    table = toy_table(50)
    ids = table.column("ID").to_pylist()
    ids[3] = None
    table = table.set_column(0, "ID", pa.array(ids, pa.string()))
    c = contract(expectations={"unique_keys": True, "min_rows": 100, "max_rows": 10})
    failures = {f.check: f for f in check_expectations(profile_of(table, c), c)}
    assert set(failures) == {"min_rows", "max_rows", "not_null"}
    assert failures["min_rows"].observed == 50 and "at least 100" in failures["min_rows"].message
    assert "at most 10" in failures["max_rows"].message
    assert failures["not_null"].column == "ID" and failures["not_null"].observed == 1


def test_the_real_beneficiary_file_fails_unique_keys_only_if_it_repeats_a_key(sample_data):
    bene = load_settings().sources["beneficiary_summary"]
    table = read_sample(sample_data, BENE_2008, bene)
    table = table.append_column("year", pa.array(["2008"] * table.num_rows, pa.string()))
    profile = profile_batches(table.to_batches(max_chunksize=2048), bene, source_file=BENE_2008)
    failures = check_expectations(profile, bene)
    assert [f.check for f in failures] == (["unique_keys"] if profile.keys.duplicate_rows else [])


def test_an_empty_file_fails_only_min_rows():
    c = contract()
    assert [f.check for f in check_expectations(profile_batches([], c), c)] == ["min_rows"]
