"""Difference reports: exact key changes, and shifts flagged only where data moved."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from cms_pipeline.batch_diff.compare import diff_batch, profile_state
from cms_pipeline.batch_diff.report import DIFF_ROW_SCHEMA, Thresholds
from cms_pipeline.batch_diff.shifts import ks_binned, psi
from cms_pipeline.config import SourceContract
from cms_pipeline.profiling.profilers import KeySet, Profiler

CONTRACT = SourceContract(
    name="claims",
    table="claims",
    file_pattern=r"claims\.csv$",
    keys=["CLM_ID"],
    columns=[
        {"name": "CLM_ID", "nullable": False},
        {"name": "PAID", "type": "decimal"},
        {"name": "STABLE_AMT", "type": "decimal"},
        {"name": "FROM_DT", "type": "date"},
        {"name": "CODE", "domain": ["A", "B", "C"]},
        {"name": "NOTE"},
    ],
)


def claims(ids: np.ndarray, seed: int, paid_scale: float = 1.0, code_p=(0.6, 0.3, 0.1),
           note_null: float = 0.1) -> pa.Table:  # fmt: skip
    rng = np.random.default_rng(seed)
    n = len(ids)
    paid = np.round(rng.lognormal(7.0, 0.8, n) * paid_scale, 2)
    stable = np.round(rng.normal(500.0, 50.0, n), 2)
    days = rng.integers(0, 3 * 365, n)
    dates = pa.array((np.datetime64("2008-01-01") + days).astype("datetime64[D]"), pa.date32())
    note = rng.choice(["x", "y"], n).astype(object)
    note[rng.random(n) < note_null] = None
    return pa.table(
        {
            "CLM_ID": pa.array([str(i) for i in ids], pa.string()),
            "PAID": pa.array(paid.astype(str), pa.string()),
            "STABLE_AMT": pa.array(stable.astype(str), pa.string()),
            "FROM_DT": pa.compute.strftime(dates, format="%Y%m%d"),
            "CODE": pa.array(rng.choice(["A", "B", "C"], n, p=code_p), pa.string()),
            "NOTE": pa.array(note, pa.string()),
        }
    )


def profiled(table: pa.Table, batch_id: str):
    profiler = Profiler(CONTRACT, source_file="claims.csv", batch_id=batch_id)
    for batch in table.to_batches(max_chunksize=1500):
        profiler.update(batch)
    return profiler.result(), profiler.keys.key_set()


def test_keys_new_and_disappeared_are_exact():
    old_ids = np.arange(0, 4000)
    new_ids = np.arange(3000, 6500)  # 3000 of the old ones gone, 2500 new ones
    old_profile, old_keys = profiled(claims(old_ids, 1), "b1")
    new_profile, new_keys = profiled(claims(new_ids, 2), "b2")
    diff = diff_batch(
        new_profile,
        rows_before=old_profile.rows,
        previous_profile=old_profile,
        new_keys=new_keys,
        table_keys=old_keys,
        previous_delivery_keys=old_keys,
    )
    old_set, new_set = set(old_ids.tolist()), set(new_ids.tolist())
    assert diff.keys.new_keys == len(new_set - old_set)
    assert diff.keys.existing_keys == len(new_set & old_set)
    assert diff.keys.disappeared_keys == len(old_set - new_set)
    assert (diff.rows_before, diff.rows_batch, diff.rows_after) == (4000, 3500, 7500)
    head = diff.summary_lines()[0]
    assert head.startswith("claims: +3,500 rows (4,000 -> 7,500), 2,500 new keys")
    assert "3,000 of 4,000 keys of the previous delivery disappeared" in head


def test_key_sets_on_different_columns_are_not_compared():
    table = claims(np.arange(10), 1)
    a = KeySet.from_batches([table], ["CLM_ID"])
    b = KeySet.from_batches([table], ["CLM_ID", "CODE"])
    assert a.minus(a) == 0
    with pytest.raises(ValueError, match="same key columns"):
        a.minus(b)


def test_shifted_columns_are_flagged_and_unshifted_ones_are_not():
    before, _ = profiled(claims(np.arange(0, 6000), 1), "b1")
    # same generator, new random draws: only PAID (x1.6), CODE shares and NOTE nulls move
    after, _ = profiled(
        claims(np.arange(6000, 12000), 2, paid_scale=1.6, code_p=(0.3, 0.3, 0.4), note_null=0.4),
        "b2",
    )
    diff = diff_batch(after, rows_before=before.rows, previous_profile=before)
    by = {c.column: c for c in diff.columns}
    assert {"mean", "psi", "ks"} <= set(by["PAID"].flags)
    assert by["PAID"].mean_change_pct == pytest.approx(60.0, abs=8.0)
    assert by["STABLE_AMT"].flags == []
    assert by["STABLE_AMT"].psi < 0.05 and by["STABLE_AMT"].ks < 0.05
    assert by["FROM_DT"].flags == []
    assert "top_share" in by["CODE"].flags and "psi" in by["CODE"].flags
    assert by["NOTE"].flags == ["null_rate"]
    assert by["NOTE"].null_rate_change == pytest.approx(0.3, abs=0.03)
    assert by["CLM_ID"].flags == []
    assert {c.column for c in diff.flagged} == {"PAID", "CODE", "NOTE"}
    text = "\n".join(diff.summary_lines())
    assert "! PAID mean" in text and "[mean, psi, ks]" in text
    assert "STABLE_AMT mean" in text and "! STABLE_AMT" not in text


def test_thresholds_are_parameters():
    before, _ = profiled(claims(np.arange(0, 3000), 1), "b1")
    after, _ = profiled(claims(np.arange(3000, 6000), 2, paid_scale=1.6), "b2")
    loose = Thresholds(psi=10.0, ks=1.0, mean_shift=10.0)
    diff = diff_batch(after, rows_before=before.rows, previous_profile=before, thresholds=loose)
    assert {c.column: c for c in diff.columns}["PAID"].flags == []


def test_first_load_reports_counts_only():
    profile, keys = profiled(claims(np.arange(100), 1), "b1")
    diff = diff_batch(profile, rows_before=0, previous_profile=None, new_keys=keys,
                      table_keys=KeySet.from_batches([], ["CLM_ID"]))  # fmt: skip
    assert diff.baseline is None and diff.flagged == []
    assert diff.keys.new_keys == 100 and diff.keys.disappeared_keys is None
    assert diff.summary_lines() == [
        "claims: +100 rows (0 -> 100), 100 new keys",
        "  first load: no earlier state to compare distributions with",
    ]
    rows = diff.to_rows()
    assert rows.schema == DIFF_ROW_SCHEMA
    assert rows.num_rows == len(CONTRACT.columns)
    assert rows.column("null_rate_before").null_count == rows.num_rows


def test_profile_state_reads_a_dataset_like_a_table(tmp_path):
    table = claims(np.arange(5000), 4)
    ds.write_dataset(table, tmp_path / "state", format="parquet", max_rows_per_file=1200,
                     max_rows_per_group=1200)  # fmt: skip
    from_dataset, keys_ds = profile_state(ds.dataset(tmp_path / "state"), CONTRACT)
    from_table, keys_tb = profile_state(table, CONTRACT)
    assert from_dataset.rows == from_table.rows == 5000
    assert len(keys_ds) == len(keys_tb) == 5000 and keys_ds.minus(keys_tb) == 0
    for a, b in zip(from_dataset.columns, from_table.columns, strict=True):
        assert (a.column, a.nulls, a.distinct_estimate) == (b.column, b.nulls, b.distinct_estimate)
        assert a.histogram == b.histogram


def test_psi_and_ks_of_known_distributions():
    same = {1: 50, 2: 50}
    assert psi(same, same) == 0.0 and ks_binned(same, same) == 0.0
    moved = {1: 10, 2: 90}
    expected_psi = (0.1 - 0.5) * np.log(0.1 / 0.5) + (0.9 - 0.5) * np.log(0.9 / 0.5)
    assert psi(same, moved) == pytest.approx(expected_psi)
    assert ks_binned(same, moved) == pytest.approx(0.4)


def test_to_dict_is_json_ready():
    import json

    before, _ = profiled(claims(np.arange(0, 2000), 1), "b1")
    after, _ = profiled(claims(np.arange(2000, 4000), 2, paid_scale=2.0), "b2")
    d = diff_batch(after, rows_before=2000, previous_profile=before).to_dict()
    again = json.loads(json.dumps(d))
    assert again["rows_after"] == 4000 and "PAID" in again["flagged_columns"]
