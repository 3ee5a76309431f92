"""The profile sketches' estimates on real CMS rows are within their stated error bounds
of the exact values computed from the same rows."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from cms_pipeline.config import SourceContract, load_settings
from cms_pipeline.profiling.hashing import hash_values
from cms_pipeline.profiling.profilers import profile_batches
from cms_pipeline.profiling.records import BatchProfile
from cms_pipeline.profiling.sketches import FrequentValues, KmvSketch

OUTPATIENT = "sample_1/DE1_0_2008_to_2010_Outpatient_Claims_Sample_1.csv"
BENE_2008 = "sample_1/DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"


def read_real(sample_data, relative: str, contract: SourceContract) -> pa.Table:
    options = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in contract.column_names}, strings_can_be_null=True
    )
    return pcsv.read_csv(sample_data / relative, convert_options=options)


@pytest.fixture
def outpatient(sample_data) -> tuple[SourceContract, pa.Table]:
    contract = load_settings().sources["outpatient_claims"]
    return contract, read_real(sample_data, OUTPATIENT, contract)


def exact_counts(array: pa.ChunkedArray) -> Counter:
    return Counter(v for v in array.to_pylist() if v is not None)


def test_top_value_counts_bound_the_exact_counts_of_real_claims(outpatient):
    """Small batches and a small sketch, so that batches leave values out and the
    sketch purges: each reported count is a lower bound, short by at most the bound."""
    contract, table = outpatient
    profile = profile_batches(
        table.to_batches(max_chunksize=500), contract, key_columns=[], counter_size=32, top_k=10
    )
    bounded = 0
    for col in profile.columns:
        exact = exact_counts(table.column(col.column))
        if not exact:
            assert col.top_values == []
            continue
        assert col.top_values_max_error is not None
        for value, count in col.top_values:
            assert count <= exact[value] <= count + col.top_values_max_error, (col.column, value)
        if col.top_values_max_error == 0:
            assert col.top_values_exact
            want = sorted(exact.items(), key=lambda kv: (-kv[1], kv[0]))[: len(col.top_values)]
            assert col.top_values == want, col.column
            continue
        bounded += 1
        # no value much more frequent than the reported ones is missing from the list
        if len(col.top_values) == 10:
            reported = {v for v, _ in col.top_values}
            floor = col.top_values[-1][1] + col.top_values_max_error
            missing = [v for v, n in exact.items() if n > floor and v not in reported]
            assert not missing, (col.column, missing[:3])
    assert bounded >= 5  # the bound was put to the test on high-cardinality columns


def test_top_values_of_a_few_valued_real_column_are_exact(sample_data):
    bene = load_settings().sources["beneficiary_summary"]
    table = read_real(sample_data, BENE_2008, bene)
    profile = profile_batches(table.to_batches(max_chunksize=1000), bene, key_columns=[])
    for name in ["BENE_SEX_IDENT_CD", "BENE_RACE_CD", "SP_STATE_CODE"]:
        col = profile.column(name)
        exact = sorted(exact_counts(table.column(name)).items(), key=lambda kv: (-kv[1], kv[0]))
        assert col.top_values_max_error == 0 and col.top_values_exact
        assert col.top_values == exact[: len(col.top_values)]


def test_frequent_values_bound_adds_what_batches_left_out():
    sketch = FrequentValues(batch_limit=2)
    sketch.update(pa.array(["a", "b", "c", "d"]), pa.array([9, 7, 3, 2]).to_numpy())
    assert sketch.left_out == 3  # "c" was the most frequent value left out
    assert sketch.max_error == 3 and not sketch.exact
    assert sketch.top(5) == [("a", 9), ("b", 7)]


def test_distinct_estimates_of_real_claims_are_within_three_standard_errors(outpatient):
    """KMV, kept for distinct counts: exact below its size, else within 3 standard errors."""
    contract, table = outpatient
    profile = profile_batches(table.to_batches(max_chunksize=2000), contract, key_columns=[])
    estimated = 0
    for col in profile.columns:
        exact = pc.count_distinct(table.column(col.column)).as_py()
        if col.distinct_exact:
            assert col.distinct_estimate == exact, col.column
        else:
            estimated += 1
            stated = 3 * col.distinct_relative_error * exact
            assert abs(col.distinct_estimate - exact) <= stated, col.column
    assert estimated >= 1  # CLM_ID has more distinct values than the sketch holds

    ids = pc.unique(table.column("DESYNPUF_ID").combine_chunks())
    small = KmvSketch(k=256)
    small.update(hash_values(ids))
    assert not small.exact
    assert abs(small.estimate() - len(ids)) <= 3 * small.relative_error * len(ids)


def test_the_bound_is_stored_and_read_back(outpatient):
    contract, table = outpatient
    profile = profile_batches(
        table.slice(0, 3000).to_batches(max_chunksize=500), contract, counter_size=16
    )
    assert any(c.top_values_max_error for c in profile.columns)
    again = BatchProfile.from_arrow(profile.to_arrow())
    for a, b in zip(again.columns, profile.columns, strict=True):
        assert (a.top_values, a.top_values_max_error) == (b.top_values, b.top_values_max_error)
    from_json = BatchProfile.from_dict(json.loads(profile.to_json()))
    assert [c.top_values_max_error for c in from_json.columns] == [
        c.top_values_max_error for c in profile.columns
    ]
    # rows stored before the bound existed read back with the bound unknown
    old = profile.to_arrow().drop_columns(["top_values_max_error"])
    assert all(c.top_values_max_error is None for c in BatchProfile.from_arrow(old).columns)
