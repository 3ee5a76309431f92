"""Champion or challenger: the promotion rule, and the challenge of a new version.

A challenger replaces the champion only when it is better on the same held-out rows by
the use case's margin and by more than the noise of those rows (a paired bootstrap of
the gain, metrics.paired_bootstrap_gain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cms_pipeline.config import Settings
from models_ml import metrics, registry
from models_ml.automl import predict
from models_ml.usecase import UseCase

# the run's metric names for the paired bootstrap of the gain over the champion
PROMOTION_METRIC_NAMES = {
    "gain": "promotion_gain",
    "low": "promotion_gain_ci_low",
    "high": "promotion_gain_ci_high",
}


@dataclass(frozen=True)
class Challenge:
    """The outcome of a challenge: whether the challenger would be promoted and why,
    the champion's metrics on the same rows, and the paired bootstrap of the gain (None
    when there was no champion)."""

    promoted: bool
    decision: str
    champion_metrics: dict[str, float] = field(default_factory=dict)
    gain: dict | None = None


def decide(
    challenger: float,
    champion: float | None,
    metric: str,
    margin: float,
    higher_is_better: bool,
    noise: dict | None = None,
) -> tuple[bool, str]:
    """Promotion rule, pure: beat the champion on the same test rows by `margin`, and by
    more than the noise of those rows: the lower bound of the paired bootstrap interval
    of the gain (`noise`, from metrics.paired_bootstrap_gain) must be above 0."""
    if champion is None or np.isnan(champion):
        return True, f"no champion to beat; {metric}={challenger:.4f}"
    if noise is None:
        raise ValueError("a champion exists: the paired bootstrap of the gain is needed")
    gain = (challenger - champion) if higher_is_better else (champion - challenger)
    beats_margin = gain >= margin
    beats_noise = noise["low"] > 0  # NaN (no usable replicate) is not above 0
    promoted = beats_margin and beats_noise
    if promoted:
        verdict = "promoted"
    elif not beats_margin:
        verdict = "kept champion (gain below the margin)"
    else:
        verdict = "kept champion (gain within bootstrap noise)"
    return promoted, (
        f"{verdict}: challenger {metric}={challenger:.4f} vs champion {champion:.4f} "
        f"on the same test rows (gain {gain:+.4f}, margin {margin}, "
        f"{noise['level']:.0%} paired bootstrap CI of the gain "
        f"[{noise['low']:+.4f}, {noise['high']:+.4f}] over {noise['replicates']} replicates)"
    )


def challenge(
    settings: Settings, h2o, use_case: UseCase, test_frame, labels, scores, version, work
) -> Challenge:
    """Score the champion's MOJO on this run's test frame and apply the promotion rule
    to the challenger (`version`, whose test `scores` are given)."""
    rule = use_case.promotion
    metric, margin, higher = rule.metric, rule.margin, rule.higher_is_better
    challenger = metrics.binary_metrics(labels, scores)[metric]
    champion = registry.champion(settings, use_case.name)
    if champion is None:
        promoted, why = decide(challenger, None, metric, margin, higher)
        return Challenge(promoted, why)
    paths = registry.download_version(settings, use_case.name, champion.version, work / "champion")
    champion_model = h2o.import_mojo(str(paths["mojo"]))
    _, champion_scores, _ = predict(champion_model, test_frame, use_case)
    champion_metrics = metrics.binary_metrics(labels, champion_scores)
    bootstrap = use_case.bootstrap
    gain = metrics.paired_bootstrap_gain(
        labels,
        scores,
        champion_scores,
        metric,
        higher,
        bootstrap.resamples,
        bootstrap.seed,
        bootstrap.level,
    )
    promoted, why = decide(challenger, champion_metrics[metric], metric, margin, higher, gain)
    decision = f"v{version} vs champion v{champion.version}: {why}"
    return Challenge(promoted, decision, champion_metrics, gain)


def log_challenge(client, run_id: str, outcome: Challenge) -> None:
    """The decision as a tag of the run; the champion's metrics and the gain's interval
    as its metrics."""
    client.set_tag(run_id, "promotion_decision", outcome.decision)
    for name, value in outcome.champion_metrics.items():
        client.log_metric(run_id, f"champion_{name}", value)
    for key in ("gain", "low", "high"):
        gain = outcome.gain
        if gain is not None and gain[key] == gain[key]:  # NaN: no usable replicate
            client.log_metric(run_id, PROMOTION_METRIC_NAMES[key], gain[key])
