"""Profiles agree with pyarrow's own exact computations on the same data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from cms_pipeline.config import ColumnSpec, SourceContract, load_settings
from cms_pipeline.profiling.conformance import conformance
from cms_pipeline.profiling.hashing import hash_keys, hash_values
from cms_pipeline.profiling.profilers import Profiler, profile_batches
from cms_pipeline.profiling.records import BatchProfile
from cms_pipeline.profiling.sketches import KmvSketch

BENE_2008 = "sample_1/DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv"


def contract(**overrides) -> SourceContract:
    spec = dict(
        name="toy",
        table="toy",
        file_pattern=r"toy\.csv$",
        keys=["ID", "year"],
        expectations={"unique_keys": True, "min_rows": 1},
        columns=[
            {"name": "ID", "type": "id", "nullable": False},
            {"name": "SEX", "domain": ["1", "2"]},
            {"name": "STATE", "pattern": r"^\d{2}$"},
            {"name": "BIRTH_DT", "type": "date"},
            {"name": "MONTHS", "type": "integer"},
            {"name": "AMOUNT", "type": "decimal"},
        ],
    )
    spec.update(overrides)
    return SourceContract(**spec)


def toy_table(n: int, seed: int = 0, amount_shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = np.array([f"{x:016X}" for x in rng.integers(0, 2**62, n)], dtype=object)
    sex = rng.choice(["1", "2", None], n, p=[0.45, 0.5, 0.05])
    state = rng.choice(["05", "10", "45", "7"], n)  # "7" breaks the pattern
    days = rng.integers(0, 365 * 60, n)
    birth = (np.datetime64("1920-01-01") + days).astype("datetime64[D]").astype(str)
    birth = np.char.replace(birth, "-", "").astype(object)
    birth[rng.random(n) < 0.1] = None
    months = rng.integers(0, 13, n).astype(str).astype(object)
    amount = np.round(rng.gamma(2.0, 500.0, n) + amount_shift, 2).astype(str).astype(object)
    return pa.table(
        {
            "ID": pa.array(ids, pa.string()),
            "SEX": pa.array(sex, pa.string()),
            "STATE": pa.array(state, pa.string()),
            "BIRTH_DT": pa.array(birth, pa.string()),
            "MONTHS": pa.array(months, pa.string()),
            "AMOUNT": pa.array(amount, pa.string()),
            "year": pa.array(["2008"] * n, pa.string()),
            "_source_line": pa.array(np.arange(2, n + 2), pa.int64()),
        }
    )


def toy_table_with_repeated_keys() -> pa.Table:
    """toy_table(3000) with rows 10..19 repeated at the end, and row 5 once more: 11
    duplicate rows, on lines 3002 to 3012."""
    table = toy_table(3000)
    extra = pa.concat_tables([table.slice(10, 10), table.slice(5, 1)])
    extra = extra.set_column(
        extra.schema.get_field_index("_source_line"),
        "_source_line",
        pa.array(np.arange(3002, 3002 + extra.num_rows), pa.int64()),
    )
    return pa.concat_tables([table, extra])


def profile_of(table: pa.Table, c: SourceContract, batch_rows: int = 997, **kw) -> BatchProfile:
    return profile_batches(table.to_batches(max_chunksize=batch_rows), c, **kw)


def read_sample(sample_data, relative: str, contract: SourceContract) -> pa.Table:
    options = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in contract.column_names}, strings_can_be_null=True
    )
    return pcsv.read_csv(sample_data / relative, convert_options=options)


def test_counts_nulls_and_text_ranges_equal_pyarrow():
    table = toy_table(5000)
    profile = profile_of(table, contract())
    assert profile.rows == table.num_rows
    for col in profile.columns:
        arr = table.column(col.column)
        assert col.count == len(arr)
        assert col.nulls == pc.count(arr, mode="only_null").as_py()
        assert col.null_rate == pytest.approx(col.nulls / len(arr))
        mm = pc.min_max(arr)
        assert (col.min_text, col.max_text) == (mm["min"].as_py(), mm["max"].as_py())
    # lineage columns are not profiled as data
    assert [c.column for c in profile.columns] == [
        "ID",
        "SEX",
        "STATE",
        "BIRTH_DT",
        "MONTHS",
        "AMOUNT",
    ]


def test_typed_min_max_mean_std_follow_the_logical_type():
    table = toy_table(3000)
    profile = profile_of(table, contract())
    months = profile.column("MONTHS")
    as_int = pc.cast(table.column("MONTHS"), pa.int64())
    assert months.min_value == pc.min(as_int).as_py()
    assert months.max_value == pc.max(as_int).as_py()
    assert months.max_text == "9"  # text order differs from number order: 12 > 9
    assert months.max_value == 12
    amount = pc.cast(table.column("AMOUNT"), pa.float64()).to_numpy()
    col = profile.column("AMOUNT")
    assert col.mean == pytest.approx(amount.mean(), rel=1e-9)
    assert col.std == pytest.approx(amount.std(ddof=1), rel=1e-9)
    assert sum(col.histogram.values()) == len(amount)
    births = pc.strptime(pc.drop_null(table.column("BIRTH_DT")), format="%Y%m%d", unit="s")
    birth = profile.column("BIRTH_DT")
    assert birth.min_value == pc.min(births).as_py().date().isoformat()
    assert birth.max_value == pc.max(births).as_py().date().isoformat()
    assert sum(birth.histogram.values()) == len(births)


def test_conformance_against_type_domain_and_pattern():
    table = toy_table(4000)
    profile = profile_of(table, contract())
    state = profile.column("STATE")
    bad = pc.sum(pc.equal(table.column("STATE"), "7")).as_py()
    assert state.nonconforming == bad > 0
    assert state.nonconforming_examples == ["7"]
    assert state.conformance_rate == pytest.approx(1 - bad / state.count)
    for name in ["ID", "SEX", "BIRTH_DT", "MONTHS", "AMOUNT"]:
        assert profile.column(name).conformance_rate == 1.0, name

    spec = ColumnSpec(name="d", type="date")
    ok, parses, typed = conformance(spec, pa.array(["20080229", "20090229", "20080231", "2008013"]))
    assert ok.tolist() == [True, False, False, False]  # not leap year; no 31 Feb; 7 digits
    assert typed.to_pylist()[0].isoformat() == "2008-02-29"
    ok, _, _ = conformance(ColumnSpec(name="i", type="integer"), pa.array(["12", "-3", "1.5", "x"]))
    assert ok.tolist() == [True, True, False, False]


def test_top_values_equal_value_counts_when_few_values():
    table = toy_table(4000)
    col = profile_of(table, contract()).column("STATE")
    vc = pc.value_counts(table.column("STATE")).to_pylist()
    expected = sorted(((d["values"], d["counts"]) for d in vc), key=lambda t: (-t[1], t[0]))
    assert col.top_values == expected
    assert col.top_values_exact and col.top_values_max_error == 0


def test_top_values_of_a_pruned_counter_still_find_the_heavy_hitters():
    rng = np.random.default_rng(3)
    heavy = ["A", "B", "C"]
    values = np.concatenate([rng.choice(heavy, 6000), [f"v{i}" for i in range(6000)]])
    rng.shuffle(values)
    c = contract(columns=[{"name": "X"}], keys=[], expectations={})
    profile = profile_batches(pa.table({"X": values}).to_batches(1000), c, counter_size=64)
    col = profile.column("X")
    assert not col.top_values_exact
    assert {v for v, _ in col.top_values[:3]} == set(heavy)
    exact = dict(zip(*np.unique(values, return_counts=True), strict=True))
    for value, n in col.top_values[:3]:
        assert n <= exact[value] <= n + col.top_values_max_error  # short by the bound at most
        assert n >= 0.9 * exact[value]


def test_distinct_estimate_is_exact_below_the_sketch_size_and_within_error_above():
    table = toy_table(6000)
    profile = profile_of(table, contract(), sketch_size=8192)
    for col in profile.columns:
        assert col.distinct_exact
        assert col.distinct_estimate == pc.count_distinct(table.column(col.column)).as_py()

    rng = np.random.default_rng(7)
    values = pa.array([f"k{x}" for x in rng.integers(0, 150_000, 300_000)])
    exact = pc.count_distinct(values).as_py()
    sketch = KmvSketch(k=2048)
    for start in range(0, len(values), 50_000):
        sketch.update(hash_values(pc.unique(values[start : start + 50_000])))
    assert not sketch.exact
    assert sketch.relative_error == pytest.approx(1 / np.sqrt(2046))
    assert abs(sketch.estimate() - exact) / exact <= 3 * sketch.relative_error


def test_duplicate_keys_are_found_exactly_across_batches():
    full = toy_table_with_repeated_keys()
    profile = profile_of(full, contract(), batch_rows=500)
    keys = full.select(["ID", "year"]).to_pylist()
    seen, dup_lines = set(), []
    for key, line in zip(keys, full.column("_source_line").to_pylist(), strict=True):
        k = (key["ID"], key["year"])
        if k in seen:
            dup_lines.append(line)
        seen.add(k)
    assert profile.keys.duplicate_rows == len(dup_lines) == 11
    assert profile.keys.distinct_keys == len(seen)
    assert profile.keys.duplicate_lines == sorted(dup_lines)[:10]


def test_profile_rows_and_json_round_trip():
    profile = profile_of(toy_table(800), contract(), batch_id="b1")
    rows = profile.to_arrow()
    assert rows.num_rows == len(profile.columns)
    assert set(rows.column("batch_id").to_pylist()) == {"b1"}
    assert rows.schema.field("profiled_at").type == pa.timestamp("us", tz="UTC")
    again = BatchProfile.from_arrow(rows)
    want = profile.to_dict()
    want["keys"] = None  # the per-column rows do not carry the file's key check
    assert again.to_dict() == want
    from_json = BatchProfile.from_dict(json.loads(profile.to_json()))
    assert from_json.to_dict() == profile.to_dict()


def test_real_beneficiary_file_profile_matches_exact_computations(sample_data):
    bene = load_settings().sources["beneficiary_summary"]
    table = read_sample(sample_data, BENE_2008, bene)
    table = table.append_column("year", pa.array(["2008"] * table.num_rows, pa.string()))
    profiler = Profiler(bene, source_file=BENE_2008, batch_id="real")
    for batch in table.to_batches(max_chunksize=2048):
        profiler.update(batch)
    profile = profiler.result()
    assert profile.rows == table.num_rows
    assert [c.column for c in profile.columns] == bene.column_names
    for col in profile.columns:
        arr = table.column(col.column)
        assert col.nulls == arr.null_count, col.column
        exact = pc.count_distinct(arr).as_py()
        assert abs(col.distinct_estimate - exact) <= 3 * col.distinct_relative_error * exact
        mm = pc.min_max(arr)
        assert (col.min_text, col.max_text) == (mm["min"].as_py(), mm["max"].as_py())
    death = profile.column("BENE_DEATH_DT")
    assert death.nulls > 0 and death.null_rate == pytest.approx(death.nulls / table.num_rows)
    payments = pc.cast(table.column("MEDREIMB_IP"), pa.float64())
    assert profile.column("MEDREIMB_IP").mean == pytest.approx(pc.mean(payments).as_py())
    distinct_keys = table.group_by(["DESYNPUF_ID", "year"]).aggregate([]).num_rows
    assert profile.keys.duplicate_rows == table.num_rows - distinct_keys


def test_an_empty_file_and_a_missing_column_are_still_reported():
    c = contract()
    empty = profile_batches([], c)
    assert [col.column for col in empty.columns] == c.column_names
    assert all(col.count == 0 and col.conformance_rate is None for col in empty.columns)

    table = toy_table(300).drop_columns(["AMOUNT"])
    profile = profile_of(table, c, batch_rows=100)
    amount = profile.column("AMOUNT")
    assert (amount.count, amount.nulls, amount.null_rate) == (300, 300, 1.0)


def _encoded(batch: pa.RecordBatch, drop_rows: int = 0) -> pa.RecordBatch:
    """The batch with every text column dictionary-encoded (as the ingest reader gives
    them); with `drop_rows`, the first rows are filtered out afterwards, so that the
    dictionaries keep values no row points at."""
    arrays = [pc.dictionary_encode(c) if c.type == pa.string() else c for c in batch.columns]
    encoded = pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
    return encoded.slice(drop_rows) if drop_rows else encoded


def test_dictionary_encoded_batches_profile_exactly_like_plain_text():
    c = contract()
    table = toy_table(5000, seed=3)
    batches = table.to_batches(max_chunksize=700)
    plain = profile_batches([b.slice(3) for b in batches], c).to_dict()
    encoded = profile_batches([_encoded(b, drop_rows=3) for b in batches], c).to_dict()
    for d in (plain, encoded):
        d.pop("profiled_at")
    assert encoded == plain


def test_key_duplicates_when_there_are_none():
    profile = profile_of(toy_table(2000, seed=4), contract(), batch_rows=300)
    assert profile.keys.duplicate_rows == 0 and profile.keys.duplicate_lines == []
    assert profile.keys.distinct_keys == 2000


def test_hashes_are_one_function_of_the_text_whatever_the_layout():
    """Ids of one length take a word-matrix path, mixed lengths a gathering one: the same
    text must hash alike on both, in a slice, and decoded from a dictionary."""
    rng = np.random.default_rng(7)
    ids = ["".join(rng.choice(list("0123456789ABCDEF"), 16)) for _ in range(20_000)]
    fixed = hash_values(pa.array(ids))
    mixed = hash_values(pa.array([*ids, "X"]))[:-1]
    assert (fixed == mixed).all()
    assert len(np.unique(fixed)) == len(set(ids))
    sliced = pa.array(["pad", *ids[:50]]).slice(1)
    assert (hash_values(sliced) == fixed[:50]).all()
    encoded = pa.array(ids[:50] * 2).dictionary_encode()
    assert (hash_values(encoded.cast(pa.string())) == np.concatenate([fixed[:50]] * 2)).all()
    # a trailing zero byte, a prefix and a long value are each their own text
    texts = ["abcdefgh", "abcdefgh\x00", "abcdefg", "a" * 5000, "a" * 4999 + "b", ""]
    assert len(set(hash_values(pa.array(texts)).tolist())) == len(texts)


def test_key_hashes_tell_a_null_from_an_empty_text():
    keys = pa.table({"a": ["x", "x", "", None], "b": ["1", "1", "2", "2"]})
    hashes = hash_keys(keys, ["a", "b"])
    assert hashes[0] == hashes[1] and len(set(hashes[1:].tolist())) == 3
