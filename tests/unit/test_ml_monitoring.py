"""PSI of scores against a reference (no JVM)."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml.monitoring import (
    bin_edges,
    compare,
    compare_counts,
    has_values,
    level,
    psi,
    psi_of_counts,
    reference_of,
)


def test_same_distribution_is_stable():
    rng = np.random.default_rng(1)
    ref, new = rng.beta(2, 8, 20_000), rng.beta(2, 8, 20_000)
    assert psi(ref, new) < 0.01
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_a_shift_grows_the_index():
    rng = np.random.default_rng(2)
    ref = rng.beta(2, 8, 20_000)
    small, large = psi(ref, np.clip(ref + 0.02, 0, 1)), psi(ref, rng.beta(5, 5, 20_000))
    assert 0 < small < large
    assert level(large) == "major"


def test_hand_computed_two_bins():
    # reference deciles of 0..9 put 0 alone in the first bin; half the new values there
    ref = np.arange(10, dtype=float)
    new = np.array([0.0] * 5 + [9.0] * 5)
    shares = np.maximum(np.array([0.5] + [0.0] * 8 + [0.5]), 1e-4)
    expected = np.full(10, 0.1)
    assert psi(ref, new) == pytest.approx(
        float(np.sum((shares - expected) * np.log(shares / expected)))
    )


def test_nan_is_ignored_and_empty_is_an_error():
    assert psi([0.1, 0.2, np.nan, 0.3], [0.1, 0.2, 0.3]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="reference 0"):
        psi([np.nan], [0.1])


def test_compare_names_the_reference():
    out = compare([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "previous run")
    assert out["against"] == "previous run" and out["level"] == "stable"
    assert out["reference_rows"] == out["rows"] == 4


def test_feature_values_from_spark_decimals_nulls_and_pd_na_count_as_numbers():
    from decimal import Decimal

    import pandas as pd

    ref = [Decimal("1.50"), Decimal("2.00"), None, Decimal("3.25")]
    new = pd.Series([1.5, 2.0, pd.NA, 3.25], dtype="Float64")
    result = compare(ref, new, "training rows: payment")
    assert result["psi"] == pytest.approx(0.0, abs=1e-12)
    assert result["reference_rows"] == result["rows"] == 3


def test_top_numeric_features_follow_importance_then_fill_in_input_order():
    from models_ml.run_artifacts import top_numeric_features
    from models_ml.schema import Feature

    features = [
        Feature(name="state_code", type="categorical", levels=["01"]),
        Feature(name="age", type="numeric"),
        Feature(name="cost", type="numeric"),
        Feature(name="days", type="numeric"),
    ]
    varimp = [("state_code", 1.0), ("days", 0.8), ("age", 0.5)]
    assert top_numeric_features(varimp, features, 2) == ["days", "age"]
    assert top_numeric_features(varimp, features, 5) == ["days", "age", "cost"]
    assert top_numeric_features([], features, 2) == ["age", "cost"]


def test_a_feature_null_in_every_row_has_no_values_to_compare():
    assert not has_values([None, float("nan")]) and has_values([None, 1])


def test_counts_binned_elsewhere_give_the_same_psi():
    """Scoring runs bin their values on Spark (models_ml.drift_on_spark.psi_on_spark) and pass the
    counts: the bins are the ones psi() puts the values in, edges included."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=500)
    new = np.concatenate([rng.normal(0.4, 1.2, size=300), np.quantile(ref, [0.1, 0.5])])
    edges = bin_edges(ref)
    counts = [int(np.sum((new > lo) & (new <= hi))) for lo, hi in zip(
        [-np.inf, *edges], [*edges, np.inf], strict=True)]  # fmt: skip
    reference = reference_of(ref)
    assert np.array_equal(reference.edges, edges) and reference.rows == ref.size
    assert psi_of_counts(reference, counts) == pytest.approx(psi(ref, new), rel=1e-12)
    assert compare_counts(reference, counts, "x") == compare(ref, new, "x")
    with pytest.raises(ValueError, match="new 0"):
        psi_of_counts(reference, [0] * (edges.size + 1))


def test_a_reference_is_its_finite_values_binned_once():
    values = [0.1, None, float("nan"), 0.4, float("inf"), 0.2, 0.3]
    reference = reference_of(values)
    assert reference.rows == 4
    assert reference.shares.sum() == pytest.approx(1.0, abs=len(reference.shares) * 1e-4)
    with pytest.raises(ValueError, match="reference 0"):
        reference_of([None, float("nan")])
