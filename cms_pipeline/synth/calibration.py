"""The committed calibration statistics (`config/synth/calibration.json`), typed, and how to draw
from them.

`load_calibration()` returns a `Calibration`: one section per file kind, each distribution a
`Categorical` (values and probabilities) or an evenly spaced quantile table. The sections
list every key `python -m cms_pipeline.synth.calibrate` writes; an unknown or missing key
is an error naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from cms_pipeline.config import CONFIG_DIR

CALIBRATION_FILE = CONFIG_DIR / "synth" / "calibration.json"
TABLE_SIZE = 1 << 20


@dataclass(frozen=True)
class Categorical:
    """An empirical distribution: values and their probabilities."""

    values: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, spec: Any) -> Categorical:
        if isinstance(spec, Categorical):
            return spec
        if not (isinstance(spec, dict) and {"values", "p"} <= set(spec)):
            raise ValueError("expected a distribution {'values': [...], 'p': [...]}")
        if len(spec["values"]) != len(spec["p"]) or not spec["values"]:
            raise ValueError("a distribution needs as many probabilities as values, at least one")
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

    @cached_property
    def text(self) -> pa.Array:
        """The values as Arrow strings, made once: rendering takes from it by index."""
        return pa.array(list(self.values), type=pa.string())

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


def from_quantiles(quantiles: tuple[float, ...] | list[float], u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from an evenly spaced quantile table, at uniform(s) `u`."""
    q = np.asarray(quantiles, dtype=float)
    return np.interp(u, np.linspace(0, 1, len(q)), q)


Dist = Annotated[Categorical, BeforeValidator(Categorical.of)]
Quantiles = tuple[float, ...]  # evenly spaced from the minimum to the maximum
ByYear = dict[int, float]


class _Section(BaseModel):
    # arbitrary types: distributions are Categorical (numpy arrays), built by Categorical.of
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class NpiPresent(_Section):
    """Share of claims with each attending, operating and other physician NPI filled."""

    AT_PHYSN_NPI: float
    OP_PHYSN_NPI: float
    OT_PHYSN_NPI: float


class SourceRows(_Section):
    beneficiary_years: int
    inpatient: int
    outpatient: int


class FullSample(_Section):
    """Row counts of one full CMS sample (CMS's published file sizes)."""

    beneficiary: dict[int, int]  # by year
    inpatient: int
    outpatient: int
    carrier: int
    pde: int


class Conditions(_Section):
    names: list[str]  # the SP_* chronic condition columns
    profiles_2008: Dist  # bit i set: has condition names[i]
    keep: list[float]  # chance a condition carries into the next year
    onset: list[float]  # chance it starts in a year without it
    prevalence: dict[int, list[float]]


class Beneficiary(_Section):
    birth_year: Dist
    birth_month: Dist
    sex: Dist
    race: Dist
    state_county: Dist  # "SS|CCC"
    coverage: Dist  # "HI|SMI|HMO|PLAN" months
    coverage_keep: float
    esrd: ByYear
    esrd_keep: float
    esrd_onset: float
    conditions: Conditions
    death_rate: ByYear
    death_month: Dist
    mean_conditions_dead: float
    mean_conditions_all: float


class Inpatient(_Section):
    claims_per_bene_year: float
    count_dist: Dist
    rate_ratio: dict[str, float]  # by condition
    readmit_30d_rate: float
    los: Dist
    utilization_equals_los: float
    payment_quantiles_by_los: dict[str, Quantiles]  # "0-2", "3-5", "6-10", "11+" days
    deductible_by_year: dict[int, Dist]
    primary_payer_amt: Dist
    per_diem_amt: Dist
    coinsurance_amt: Dist
    blood_amt: Dist
    dx: Dist
    n_dx: Dist
    admitting_dx: Dist
    px: Dist
    n_px: Dist
    drg: Dist
    segment2_rate: float
    segment2_drg: Dist
    from_2007_rate: float
    npi_present: NpiPresent


class Outpatient(_Section):
    claims_per_bene_year: float
    claims_per_bene_with_any: Dist
    rate_ratio: dict[str, float]
    rate_ratio_assumed: bool
    span_days: Dist
    payment_quantiles: Quantiles
    primary_payer_amt: Dist
    blood_amt: Dist
    deductible_amt: Dist
    coinsurance_amt: Dist
    dx: Dist
    n_dx: Dist
    admitting_dx_present: float
    px: Dist
    px_present: float
    hcpcs: Dist
    n_hcpcs: Dist
    segment2_rate: float
    from_2007_rate: float
    npi_present: NpiPresent


class Carrier(_Section):
    assumed: bool
    why: str
    claims_per_bene_year: float
    lines: Dist
    line_payment_quantiles: Quantiles
    processing_indicator: Dist
    npi_pool: int


class Pde(_Section):
    assumed: bool
    why: str
    events_per_bene_year: float
    quantity: Dist
    days_supply: Dist
    cost_quantiles: Quantiles
    patient_share: list[float]
    ndc_pool: int


class Calibration(_Section):
    about: str
    source_rows: SourceRows
    full_sample: FullSample
    beneficiary: Beneficiary
    inpatient: Inpatient
    outpatient: Outpatient
    carrier: Carrier
    pde: Pde


def load_calibration(path: Path | str = CALIBRATION_FILE) -> Calibration:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: calibration file not found; run `python -m cms_pipeline.synth.calibrate`"
        )
    try:
        return Calibration.model_validate(json.loads(path.read_text()))
    except ValidationError as exc:
        raise ValueError(
            f"{path}: not a calibration file this generator reads ({exc.error_count()} "
            f"problems):\n{exc}\nRe-run `python -m cms_pipeline.synth.calibrate`."
        ) from exc
