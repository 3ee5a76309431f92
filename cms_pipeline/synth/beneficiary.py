"""Beneficiary summary files (one per year): drawing a chunk's people, their three years and
deaths; rendering each year's rows with the year's claim totals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract
from cms_pipeline.synth import render
from cms_pipeline.synth.draws import DAY0, LAST_DAY, YEAR_START, YEARS, Spending
from cms_pipeline.synth.model import Model


@dataclass(frozen=True)
class People:
    """One chunk's beneficiaries and their three years."""

    n: int
    ids: list[str]
    birth_year: np.ndarray
    birth: np.ndarray  # YYYYMMDD
    sex: np.ndarray  # index into the sex distribution
    race: np.ndarray
    state_county: np.ndarray  # index into the state_county distribution
    frailty: np.ndarray
    coverage: np.ndarray  # (3, n) index into coverage tuples
    esrd: np.ndarray  # (3, n) bool
    cond: np.ndarray  # (3, n, k) bool
    death_year: np.ndarray  # 0 = alive through 2010
    death_day: np.ndarray  # day offset of the death date (first of a month)

    def in_file(self, year: int) -> np.ndarray:
        """Listed in year's beneficiary file: alive on 1 January."""
        return (self.death_year == 0) | (self.death_year >= year)

    def alive_end(self) -> np.ndarray:
        """Last day a claim may start: the day before death, or 2010-12-31."""
        return np.where(self.death_year > 0, self.death_day - 1, LAST_DAY)

    def year_window(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first and last day a claim may start in year t, and the share of the year
        each person is listed and alive (0: not in year t's file)."""
        year = YEARS[t]
        start = np.full(self.n, YEAR_START[year])
        end = np.minimum(self.alive_end(), YEAR_START[year] + (365 if year == 2008 else 364))
        fraction = np.where(self.in_file(year), np.clip((end - start + 1) / 365.0, 0, 1), 0.0)
        return start, end, fraction


def draw_people(
    model: Model, rng: np.random.Generator, ids: np.ndarray, deaths: list[int]
) -> People:
    """People with these IDs; `deaths` per year die, older and sicker first."""
    n = len(ids)
    bene = model.cal.beneficiary
    birth_year = bene.birth_year.numbers(rng, n)
    birth_month = bene.birth_month.values.astype(int)[bene.birth_month.index(rng, n)]
    birth = birth_year * 10000 + birth_month * 100 + 1
    k = len(model.conditions)
    keep, onset = np.array(bene.conditions.keep), np.array(bene.conditions.onset)
    cond = np.zeros((3, n, k), dtype=bool)
    profile = bene.conditions.profiles_2008.numbers(rng, n)
    cond[0] = (profile[:, None] >> np.arange(k)) & 1 == 1
    esrd = np.zeros((3, n), dtype=bool)
    esrd[0] = rng.random(n) < bene.esrd[2008]
    coverage = np.zeros((3, n), dtype=np.int64)
    coverage[0] = bene.coverage.index(rng, n)
    for t in (1, 2):
        u = rng.random((n, k))
        cond[t] = np.where(cond[t - 1], u < keep, u < onset)
        ue = rng.random(n)
        esrd[t] = np.where(esrd[t - 1], ue < bene.esrd_keep, ue < bene.esrd_onset)
        redraw = rng.random(n) >= bene.coverage_keep
        coverage[t] = np.where(redraw, bene.coverage.index(rng, n), coverage[t - 1])
    frailty = rng.standard_normal(n)
    death_year = np.zeros(n, dtype=np.int64)
    death_day = np.zeros(n, dtype=np.int64)
    for t, year in enumerate(YEARS):
        alive = np.flatnonzero(death_year == 0)
        count = min(deaths[t], len(alive))
        if count == 0:
            continue
        # older and sicker die first: weighted sampling without replacement (Gumbel top-k)
        age = year - birth_year[alive]
        burden = cond[t][alive][:, model.signal].sum(axis=1)
        log_hazard = 0.05 * (age - 75) + 0.3 * burden + 0.4 * frailty[alive]
        key = log_hazard + rng.gumbel(size=len(alive))
        dead = alive[np.argsort(-key, kind="stable")[:count]]
        month = bene.death_month.values.astype(int)[bene.death_month.index(rng, count)]
        first_days = [np.datetime64(f"{year}-{mo:02d}-01", "D") for mo in month]
        death_year[dead] = year
        death_day[dead] = (np.array(first_days, dtype="datetime64[D]") - DAY0).astype(np.int64)
    return People(
        n=n,
        ids=[f"{v:016X}" for v in ids],
        birth_year=birth_year,
        birth=birth,
        sex=bene.sex.index(rng, n),
        race=bene.race.index(rng, n),
        state_county=bene.state_county.index(rng, n),
        frailty=frailty,
        coverage=coverage,
        esrd=esrd,
        cond=cond,
        death_year=death_year,
        death_day=death_day,
    )


# the beneficiary summary's three totals per claim type: column stem and Spending field
TOTALS = (("MEDREIMB", "paid"), ("BENRES", "responsibility"), ("PPPYMT", "primary_payer"))


def render_year(
    model: Model,
    people: People,
    t: int,
    spending: dict[str, Spending],
    contract: SourceContract,
) -> pa.Table:
    """Year t's beneficiary summary rows; `spending` by claim type suffix (IP, OP, CAR)."""
    year = YEARS[t]
    rows = np.flatnonzero(people.in_file(year))
    cov = model.coverage[people.coverage[t, rows]]
    bene = model.cal.beneficiary
    cols = {
        "DESYNPUF_ID": render.people_ids(people.ids, rows),
        "BENE_BIRTH_DT": render.integer(people.birth[rows]),
        "BENE_DEATH_DT": render.date(people.death_day[rows], people.death_year[rows] != year),
        "BENE_SEX_IDENT_CD": render.take(bene.sex.text, people.sex[rows]),
        "BENE_RACE_CD": render.take(bene.race.text, people.race[rows]),
        "BENE_ESRD_IND": pa.array(np.where(people.esrd[t, rows], "Y", "0")),
        "SP_STATE_CODE": render.take(model.state_text, people.state_county[rows]),
        "BENE_COUNTY_CD": render.take(model.county_text, people.state_county[rows]),
        "BENE_HI_CVRAGE_TOT_MONS": render.integer(cov[:, 0]),
        "BENE_SMI_CVRAGE_TOT_MONS": render.integer(cov[:, 1]),
        "BENE_HMO_CVRAGE_TOT_MONS": render.integer(cov[:, 2]),
        "PLAN_CVRG_MOS_NUM": pa.array([f"{v:02d}" for v in cov[:, 3]]),
    }
    for j, name in enumerate(model.conditions):
        cols[name] = pa.array(np.where(people.cond[t, rows, j], "1", "2"))
    for part, spent in spending.items():
        in_year = spent.year == t
        person = spent.person[in_year]
        for stem, field in TOTALS:
            amounts = getattr(spent, field)[in_year]
            total = np.bincount(person, weights=amounts, minlength=people.n)
            cols[f"{stem}_{part}"] = render.money(np.round(total[rows]))
    return render.table(contract, len(rows), cols)
