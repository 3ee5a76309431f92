"""The committed calibration statistics (`config/synth/calibration.json`) and how to draw from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from cms_pipeline.config import CONFIG_DIR

CALIBRATION_FILE = CONFIG_DIR / "synth" / "calibration.json"
TABLE_SIZE = 1 << 20


@dataclass(frozen=True)
class Categorical:
    """An empirical distribution: values and their probabilities."""

    values: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, spec: dict) -> Categorical:
        p = np.asarray(spec["p"], dtype=float)
        return cls(np.asarray(spec["values"], dtype=object), p / p.sum())

    @cached_property
    def cdf(self) -> np.ndarray:
        cdf = np.cumsum(self.p)
        cdf[-1] = 1.0
        return cdf

    @cached_property
    def table(self) -> np.ndarray:
        """Index for each of 2^20 equal slices of [0, 1): one lookup per draw."""
        u = (np.arange(TABLE_SIZE) + 0.5) / TABLE_SIZE
        return np.searchsorted(self.cdf, u, side="right").astype(np.int32)

    def index(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into `values`; large draws use the lookup table (p resolved to 2^-20)."""
        if size < 4096:
            return np.searchsorted(self.cdf, rng.random(size), side="right").astype(np.int64)
        return self.table[rng.integers(0, TABLE_SIZE, size)].astype(np.int64)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.values[self.index(rng, size)]

    def numbers(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.values.astype(np.int64)[self.index(rng, size)]

    @property
    def mean(self) -> float:
        return float((self.values.astype(float) * self.p).sum())


def from_quantiles(quantiles: list[float], u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from an evenly spaced quantile table, at uniform(s) `u`."""
    q = np.asarray(quantiles, dtype=float)
    return np.interp(u, np.linspace(0, 1, len(q)), q)


def load_calibration(path: Path | str = CALIBRATION_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: calibration file not found; run `python -m cms_pipeline.synth.calibrate`"
        )
    return json.loads(path.read_text())
