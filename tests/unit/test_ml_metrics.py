"""Held-out metrics and the promotion rule on constructed cases (no JVM)."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml import metrics as m
from models_ml.promotion import decide


def test_auc_on_known_orderings():
    y = [0, 0, 1, 1]
    assert m.roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert m.roc_auc(y, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert m.roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    # one positive below one negative: 3 of 4 pairs ordered right
    assert m.roc_auc(y, [0.1, 0.6, 0.5, 0.9]) == 0.75
    # with a tie: pairs (pos, neg) = (.5,.1) right, (.5,.5) tie, (.9,.1) right, (.9,.5)
    # right -> (3 + 0.5) / 4
    assert m.roc_auc(y, [0.1, 0.5, 0.5, 0.9]) == 0.875


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300), 1)  # many ties
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert m.roc_auc(y, p) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_average_precision_and_log_loss():
    assert m.average_precision([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    # ranking: 1 (hit), 0, 1 (hit) -> (1/2)*1 + (1/2)*(2/3)
    assert m.average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 + 1 / 3)
    assert m.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))


def test_lift_and_capture_at_top_decile():
    y = np.zeros(100)
    y[:10] = 1  # 10 positives, 5 of them scored highest
    p = np.linspace(1, 0, 100)
    p[5:10] = 0.0
    out = m.top_fraction(y, p, 0.1)
    assert out["capture_rate"] == pytest.approx(0.5)
    assert out["lift"] == pytest.approx(0.5 / 0.1)


def test_calibration_bins_of_a_calibrated_score():
    p = np.repeat([0.1, 0.5, 0.9], 10)
    y = np.concatenate([[1] + [0] * 9, [1] * 5 + [0] * 5, [1] * 9 + [0]])
    bins = m.calibration_bins(y, p, bins=3)
    assert [b["rows"] for b in bins] == [10, 10, 10]
    assert [b["observed_rate"] for b in bins] == pytest.approx([0.1, 0.5, 0.9])
    assert m.expected_calibration_error(y, p, bins=3) == pytest.approx(0.0)


def test_metrics_reject_bad_labels():
    with pytest.raises(ValueError, match="0 or 1"):
        m.binary_metrics([0, 2], [0.1, 0.2])


CLEAR = {"low": 0.002, "high": 0.02, "replicates": 1000, "level": 0.95}  # beyond noise


@pytest.mark.parametrize(
    ("challenger", "champion", "higher", "promoted"),
    [
        (0.70, None, True, True),  # no champion yet
        (0.710, 0.700, True, True),  # beats by more than the margin
        (0.703, 0.700, True, False),  # better, but within the margin
        (0.690, 0.700, True, False),  # worse
        (0.40, 0.45, False, True),  # logloss: lower is better
        (0.449, 0.45, False, False),
    ],
)
def test_promotion_needs_the_margin(challenger, champion, higher, promoted):
    ok, reason = decide(challenger, champion, "auc" if higher else "logloss", 0.005, higher, CLEAR)
    assert ok is promoted
    assert ("promoted" in reason or "no champion" in reason) is promoted


@pytest.mark.parametrize("low", [-0.001, 0.0, float("nan")])
def test_promotion_needs_the_gain_beyond_bootstrap_noise(low):
    """A gain above the margin whose bootstrap interval reaches 0 (or that has no usable
    replicate) keeps the champion; the reason gives the numbers."""
    noise = {"low": low, "high": 0.03, "replicates": 997, "level": 0.95}
    ok, reason = decide(0.72, 0.70, "auc", 0.005, True, noise)
    assert not ok
    assert "within bootstrap noise" in reason
    assert "gain +0.0200" in reason and "margin 0.005" in reason and "997 replicates" in reason
    assert "+0.0300]" in reason


def test_promotion_with_a_champion_needs_the_bootstrap():
    with pytest.raises(ValueError, match="paired bootstrap"):
        decide(0.72, 0.70, "auc", 0.005, True)


def _scores(n: int, seed: int = 1, signal: float = 1.0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + signal * y)))


def test_bootstrap_intervals_bracket_the_estimate_and_shrink_with_rows():
    y, p = _scores(300)
    small = m.bootstrap_intervals(y, p, n_resamples=300, seed=3)
    assert set(small) == set(m.binary_metrics(y, p)) - {"rows"}
    for key, ci in small.items():
        assert ci["low"] <= ci["estimate"] <= ci["high"], key
        assert ci["replicates"] == 300
    assert small["auc"]["estimate"] == m.roc_auc(y, p)
    y4, p4 = _scores(4800)
    big = m.bootstrap_intervals(y4, p4, n_resamples=300, seed=3)
    for key in ("auc", "aucpr", "brier", "lift_top_decile", "capture_top_decile"):
        assert big[key]["high"] - big[key]["low"] < 0.5 * (small[key]["high"] - small[key]["low"])
    # seeded: the same call gives the same interval
    assert m.bootstrap_intervals(y, p, n_resamples=300, seed=3) == small


def test_bootstrap_skips_resamples_with_one_class():
    y = np.zeros(20, dtype=int)
    y[0] = 1  # one positive: many resamples miss it
    p = np.linspace(0, 1, 20)
    ci = m.bootstrap_intervals(y, p, n_resamples=200, seed=0)
    assert 0 < ci["auc"]["replicates"] < 200
    assert ci["auc"]["replicates"] == ci["brier"]["replicates"]


def test_paired_gain_of_identical_scores_is_exactly_zero():
    y, p = _scores(500)
    gain = m.paired_bootstrap_gain(y, p, p.copy(), "auc", True, n_resamples=200)
    assert gain["gain"] == gain["low"] == gain["high"] == 0.0
    assert gain["replicates"] == 200


def test_paired_gain_of_a_clearly_better_scorer_is_above_zero():
    rng = np.random.default_rng(8)
    y = (rng.random(2000) < 0.3).astype(int)
    noise = rng.normal(size=2000)
    better = noise + 1.5 * y
    worse = noise + 0.5 * y  # same rows, same noise, weaker signal
    gain = m.paired_bootstrap_gain(y, better, worse, "auc", True, n_resamples=300)
    assert 0 < gain["low"] <= gain["gain"] <= gain["high"]
    ok, _ = decide(m.roc_auc(y, better), m.roc_auc(y, worse), "auc", 0.005, True, gain)
    assert ok
    # reversed, the gain is negative; logloss counts lower as better
    assert m.paired_bootstrap_gain(y, worse, better, "auc", True, n_resamples=100)["high"] < 0
    pb, pw = 1 / (1 + np.exp(-(better - 1))), 1 / (1 + np.exp(-(worse - 1)))
    assert m.paired_bootstrap_gain(y, pb, pw, "logloss", False, n_resamples=100)["low"] > 0


def test_average_precision_is_mean_precision_at_each_positive():
    # without ties, AP = mean over positives of the precision among rows ranked at or
    # above that positive (the step-function area, no interpolation)
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.2).astype(int)
    y[:2] = [0, 1]
    p = rng.random(2000) + 0.3 * y  # distinct scores
    ranked = y[np.argsort(-p)]
    hits = np.cumsum(ranked)
    expected = np.mean((hits / np.arange(1, len(y) + 1))[ranked == 1])
    assert m.average_precision(y, p) == pytest.approx(expected)


def test_one_class_and_extreme_scores():
    # one class only: no pairs to rank, no positives to recall
    assert np.isnan(m.roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert np.isnan(m.average_precision([0, 0], [0.1, 0.9]))
    # a positive scored 0 costs -log(1e-15) (clipped), not infinity
    assert m.log_loss([1, 0], [0.0, 0.0]) == pytest.approx(-np.log(1e-15) / 2)


def test_evaluation_plots_are_written(tmp_path):
    from models_ml.plots import evaluation_plots

    rng = np.random.default_rng(11)
    y = (rng.random(500) < 0.3).astype(int)
    p = np.clip(rng.beta(2, 5, 500) + 0.3 * y, 0, 1)
    paths = evaluation_plots(y, p, [("age", 1.0), ("visits", 0.4)], tmp_path, "case")
    assert [path.name for path in paths] == ["roc.png", "pr.png", "calibration.png", "varimp.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
