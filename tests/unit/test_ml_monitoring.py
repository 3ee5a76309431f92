"""PSI of scores against a reference (no JVM)."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml.monitoring import compare, level, psi


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
