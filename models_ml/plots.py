"""PNG plots of a held-out evaluation: scikit-learn's displays on matplotlib's Agg
backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.calibration import CalibrationDisplay  # noqa: E402
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay  # noqa: E402

from models_ml import metrics  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def roc_plot(y, p, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    RocCurveDisplay.from_predictions(y, p, ax=ax, name="test", plot_chance_level=True)
    ax.set(title=f"ROC: {title}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr_plot(y, p, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    # chance level: the base rate
    PrecisionRecallDisplay.from_predictions(y, p, ax=ax, name="test", plot_chance_level=True)
    ax.set(title=f"Precision-recall: {title}")
    ax.legend(loc="upper right")
    return _save(fig, path)


def calibration_plot(y, p, path: Path, title: str) -> Path:
    # the equal-count bins of metrics.json (see metrics.calibration_bins), drawn by sklearn
    bins = metrics.calibration_bins(y, p)
    fig, ax = plt.subplots(figsize=(5, 5))
    CalibrationDisplay(
        [b["observed_rate"] for b in bins], [b["mean_predicted"] for b in bins], p
    ).plot(ax=ax, name="test (deciles)")
    ax.set(title=f"Calibration (deciles): {title}")
    return _save(fig, path)


def varimp_plot(varimp: list[tuple[str, float]], path: Path, title: str, top: int = 20) -> Path:
    items = varimp[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(items) + 1)))
    ax.barh([n for n, _ in items], [v for _, v in items])
    ax.set(xlabel="Scaled importance", title=f"Variable importance: {title}")
    return _save(fig, path)


def evaluation_plots(y, p, varimp, out_dir: Path, title: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        roc_plot(y, p, out_dir / "roc.png", title),
        pr_plot(y, p, out_dir / "pr.png", title),
        calibration_plot(y, p, out_dir / "calibration.png", title),
    ]
    if varimp:
        paths.append(varimp_plot(varimp, out_dir / "varimp.png", title))
    return paths
