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


def _random_cases(count: int = 60):
    """Held-out-shaped labels and scores: a few thousand rows, 1-60 % positives, scores
    skewed low and higher for positives; some rounded (ties), some with 0/1 scores."""
    rng = np.random.default_rng(7)
    for case in range(count):
        n = int(rng.integers(20, 4000))
        y = (rng.random(n) < rng.uniform(0.01, 0.6)).astype(int)
        y[:2] = [0, 1]  # both classes present
        p = np.clip(rng.beta(2, 5, n) + 0.3 * y * rng.random(n), 0, 1)
        if case % 3 == 0:
            p = np.round(p, 2)
        if case % 7 == 0:
            p[: n // 10], p[n // 10 : n // 5] = 0.0, 1.0
        yield y, p


def test_today_metrics_equal_scikit_learn():
    from sklearn import metrics as sk

    for y, p in _random_cases():
        assert m.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
        assert m.average_precision(y, p) == pytest.approx(
            sk.average_precision_score(y, p), abs=1e-12
        )
        clipped = np.clip(p, 1e-15, 1 - 1e-15)
        assert m.log_loss(y, p) == pytest.approx(sk.log_loss(y, clipped, labels=[0, 1]), abs=1e-12)
        brier = m.binary_metrics(y, p)["brier"]
        assert brier == pytest.approx(sk.brier_score_loss(y, p), abs=1e-12)
