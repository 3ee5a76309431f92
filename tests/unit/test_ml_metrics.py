"""Held-out metrics and the promotion rule on constructed cases (no JVM)."""

from __future__ import annotations

import numpy as np
import pytest

from models_ml import metrics as m
from models_ml.train import decide


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
    ok, reason = decide(challenger, champion, "auc" if higher else "logloss", 0.005, higher)
    assert ok is promoted
    assert ("promoted" in reason or "no champion" in reason) is promoted


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
