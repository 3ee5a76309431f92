"""Shared drawing of events (numpy only): the calendar, claim counts and days, codes, claim IDs.

Dates are day offsets from `DAY0` until they are rendered. Every function takes the chunk's
random stream and draws in a fixed order: the same seed gives the same events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cms_pipeline.synth.calibration import Categorical

YEARS = (2008, 2009, 2010)
DAY0 = np.datetime64("2007-01-01", "D")
LAST_DAY = int((np.datetime64("2010-12-31", "D") - DAY0).astype(int))
YEAR_START = {y: int((np.datetime64(f"{y}-01-01", "D") - DAY0).astype(int)) for y in YEARS}


@dataclass(frozen=True)
class Spending:
    """What each claim paid (Medicare), left to the beneficiary and was paid by a primary payer:
    the beneficiary summary's yearly totals (MEDREIMB, BENRES, PPPYMT) are their sums."""

    person: np.ndarray  # index of the beneficiary in the chunk
    year: np.ndarray  # 0, 1, 2 for 2008-2010 (late-2007 claims count in 2008)
    paid: np.ndarray
    responsibility: np.ndarray
    primary_payer: np.ndarray


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def intercept_for_mean(linear: np.ndarray, target: float) -> float:
    """Intercept a with mean(sigmoid(a + linear)) == target (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if sigmoid(mid + linear).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total over chunks in proportion to weights (largest remainder)."""
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    rest = total - base.sum()
    base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
    return base


def into_2008(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The real files' claims that start in late 2007 all end in 2008 or later: each
    belongs to a year that has a beneficiary summary."""
    return np.where(start < YEAR_START[2008], np.maximum(end, YEAR_START[2008]), end)


def claim_year(day: np.ndarray) -> np.ndarray:
    """0, 1, 2 for claims starting in 2008 (or late 2007), 2009, 2010."""
    return np.clip(np.searchsorted([YEAR_START[2009], YEAR_START[2010]], day, side="right"), 0, 2)


def claim_counts(
    rng: np.random.Generator,
    weight: np.ndarray,
    fraction: np.ndarray,
    per_bene_year: float,
    shape: float | None,
) -> np.ndarray:
    """Claim counts per person: mean per listed bene-year preserved, rising with `weight`.

    `fraction` is the share of the year each person is listed and alive (0: not listed);
    with `shape`, counts are negative binomial (gamma-mixed Poisson), else Poisson.
    """
    listed = fraction > 0
    lam = weight * fraction
    norm = lam[listed].mean() if listed.any() else 1.0
    lam = per_bene_year * lam / max(norm, 1e-12)
    if shape is not None:
        lam = rng.gamma(shape, lam / shape)
    return rng.poisson(lam)


def spread(
    rng: np.random.Generator,
    counts: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    strata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Person index and a uniform start day within [start, end] for each claim.

    With `strata`, a person's k events fall one in each k-th of the window, so that
    closely spaced events (readmissions) come from the readmission model, not by chance.
    """
    person = np.repeat(np.arange(len(counts)), counts)
    width = np.maximum(end[person] - start[person] + 1, 1)
    u = rng.random(len(person))
    if strata:
        rank = np.arange(len(person)) - np.repeat(np.cumsum(counts) - counts, counts)
        u = (rank + u) / counts[person]
    return person, start[person] + np.floor(u * width).astype(np.int64)


def by_person_and_day(person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Row order of every claims file: by beneficiary, then start day."""
    return np.lexsort((day, person))


@dataclass(frozen=True)
class Codes:
    """A block of code columns (diagnoses, procedures, HCPCS): (rows, width) indices into a
    distribution's values, and the slots left empty."""

    index: np.ndarray
    empty: np.ndarray


def draw_codes(
    rng: np.random.Generator, dist: Categorical, n_codes: np.ndarray, width: int
) -> Codes:
    """Codes for each row; slots beyond each row's count are empty."""
    index = dist.index(rng, len(n_codes) * width).reshape(len(n_codes), width)
    empty = np.arange(width)[None, :] >= n_codes[:, None]
    return Codes(index, empty)


def inject_signal(
    rng: np.random.Generator,
    codes: Codes,
    signal: list[tuple[int, int]],
    has_condition: np.ndarray,
) -> None:
    """Put the ICD-9 code of a signal condition on claims of people who have it (in place).

    `signal` pairs a condition's column in `has_condition` (claims x conditions) with its
    code's index in the code distribution.
    """
    idx, empty = codes.index, codes.empty
    for condition, code in signal:
        has = has_condition[:, condition] & (rng.random(len(has_condition)) < 0.6)
        slot = np.minimum((~empty).sum(axis=1), idx.shape[1] - 1)
        rows = np.flatnonzero(has)
        slot = np.minimum(slot[rows], rng.integers(0, idx.shape[1], len(rows)))
        idx[rows, slot] = code
        empty[rows, slot] = False


@dataclass(frozen=True)
class Segment2:
    """Claims that continue on a SEGMENT 2 row, and the DRG drawn for each such row."""

    rows: np.ndarray  # claim indices
    drg: np.ndarray | None  # index into the segment-2 DRG distribution, or None


def draw_segment2(
    rng: np.random.Generator, n_claims: int, rate: float, drg: Categorical | None
) -> Segment2:
    rows = np.flatnonzero(rng.random(n_claims) < rate)
    drg_index = drg.index(rng, len(rows)) if drg is not None and len(rows) else None
    return Segment2(rows, drg_index)


def draw_physicians(
    rng: np.random.Generator, n_claims: int, n_npi: int, present: dict[str, float]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """An NPI (pool index) for each physician column and the claims leaving it empty."""
    return {
        column: (rng.integers(0, n_npi, n_claims), rng.random(n_claims) >= share)
        for column, share in present.items()
    }


class ClaimIds:
    """Unique, scrambled 15-digit claim numbers: a bijection of (sample, chunk, n) mod 10^12.

    Each chunk owns a block of 10^6 numbers, so chunks can be generated independently.
    """

    A = 618_033_988_749  # odd, not a multiple of 5: invertible mod 10^12
    PER_CHUNK = 10**6

    def __init__(self, prefix: int, sample: int, chunk: int):
        self.prefix = prefix
        self.next = sample * 10**9 + chunk * self.PER_CHUNK
        self.stop = self.next + self.PER_CHUNK

    def take(self, count: int) -> np.ndarray:
        if self.next + count > self.stop:
            raise OverflowError(f"more than {self.PER_CHUNK} claims in one chunk")
        seq = np.arange(self.next, self.next + count, dtype=np.int64)
        self.next += count
        hi, lo = seq // 10**6, seq % 10**6  # split so products stay within int64
        mixed = (lo * self.A + hi * ((self.A * 10**6) % 10**12) + 104_729) % 10**12
        return self.prefix * 10**12 + mixed
