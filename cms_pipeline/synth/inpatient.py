"""Inpatient claims: drawing stays and readmissions, and rendering them as CMS rows.

Admissions rise with this year's conditions, last year's signal conditions, a persistent
frailty and prior stays; a modelled share come back within 30 days (readmissions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract
from cms_pipeline.synth import render
from cms_pipeline.synth.beneficiary import People
from cms_pipeline.synth.calibration import from_quantiles
from cms_pipeline.synth.draws import (
    LAST_DAY,
    YEAR_START,
    YEARS,
    ClaimIds,
    Codes,
    Segment2,
    Spending,
    by_person_and_day,
    claim_counts,
    claim_year,
    draw_codes,
    draw_physicians,
    draw_segment2,
    inject_signal,
    intercept_for_mean,
    into_2008,
    sigmoid,
    spread,
)
from cms_pipeline.synth.model import Model, Pools

CLAIM_ID_PREFIX = 196
LOS_BUCKETS = ([3, 6, 11], ["0-2", "3-5", "6-10", "11+"])  # payment quantiles by length of stay


@dataclass(frozen=True)
class Stays:
    """One chunk's inpatient claims, sorted by person and admission day."""

    person: np.ndarray
    admission: np.ndarray  # day offsets
    discharge: np.ndarray
    claim_id: np.ndarray
    payment: np.ndarray  # whole dollars
    deductible: np.ndarray  # amounts as text, from the calibration
    primary_payer: np.ndarray
    coinsurance: np.ndarray
    dx: Codes
    px: Codes
    provider: np.ndarray  # index into the sample's providers
    utilization_days: np.ndarray
    physicians: dict[str, tuple[np.ndarray, np.ndarray]]  # column: (NPI index, empty)
    admitting_dx: np.ndarray  # index into the admitting diagnosis distribution
    per_diem: np.ndarray
    blood: np.ndarray
    drg: np.ndarray
    segment2: Segment2
    spending: Spending


def _admissions(
    model: Model, people: People, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Person, admission day, length of stay and risk year (0-2: the year whose conditions
    drew it) of each stay, sorted by person and admission."""
    ip, full = model.cal.inpatient, model.cal.full_sample
    per_year = full.inpatient / sum(full.beneficiary.values())
    # modelled readmissions; frequent admitters add a few chance ones on top
    readmit_target = 0.85 * ip.readmit_30d_rate
    base = per_year / (1 + readmit_target)
    prior = np.zeros(people.n)
    persons, admissions, stays, years = [], [], [], []
    signal = model.signal
    alive_end = people.alive_end()
    for t in range(3):
        start, end, fraction = people.year_window(t)
        # this year's conditions, last year's signal conditions, frailty, prior stays
        before = people.cond[max(t - 1, 0)][:, signal].sum(axis=1)
        linear = (
            0.35 * (people.cond[t] @ model.ip_log_rate_ratio)
            + 0.2 * before
            + 0.45 * people.frailty
            + 0.35 * np.minimum(prior, 3)
        )
        n_admissions = claim_counts(rng, np.exp(linear), fraction, base, None)
        person, admission = spread(rng, n_admissions, start, end, strata=True)
        if t == 0:  # the real files' few stays admitted in late 2007
            early = rng.random(len(person)) < ip.from_2007_rate
            admission[early] = YEAR_START[2008] - rng.integers(1, 25, early.sum())
        los = ip.los.numbers(rng, len(person))
        # readmission within 30 days: risk from signal conditions, prior stays, frailty
        readmit_linear = (
            people.cond[t][person][:, signal] @ model.readmit_weights
            + 0.4 * np.minimum(prior[person], 3)
            + 0.5 * people.frailty[person]
            + 0.2 * (los > 7)
        )
        intercept = intercept_for_mean(readmit_linear, readmit_target) if len(person) else 0.0
        back = rng.random(len(person)) < sigmoid(intercept + readmit_linear)
        again = person[back]
        gap = 1 + np.floor(29 * rng.random(back.sum()) ** 1.6).astype(np.int64)
        again_admission = admission[back] + los[back] + gap
        again_los = ip.los.numbers(rng, len(again))
        ok = again_admission <= alive_end[again]
        person = np.concatenate([person, again[ok]])
        admission = np.concatenate([admission, again_admission[ok]])
        los = np.concatenate([los, again_los[ok]])
        prior = np.bincount(person, minlength=people.n).astype(float)
        persons.append(person), admissions.append(admission), stays.append(los)
        years.append(np.full(len(person), t))
    person, admission, los, risk_year = (
        np.concatenate(x) for x in (persons, admissions, stays, years)
    )
    order = by_person_and_day(person, admission)
    return person[order], admission[order], los[order], risk_year[order]


def draw_stays(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    widths: tuple[int, int],
) -> Stays:
    """The chunk's stays; `widths` = (diagnosis, procedure) code columns of the contract."""
    ip = model.cal.inpatient
    person, admission, los, risk_year = _admissions(model, people, rng)
    alive_end = people.alive_end()
    # discharge no later than death or the end of 2010
    discharge = np.minimum(admission + los, np.maximum(alive_end[person], admission))
    discharge = into_2008(admission, np.minimum(discharge, LAST_DAY))
    los = discharge - admission
    n_claims = len(person)
    bucket = np.digitize(los, LOS_BUCKETS[0])
    u = sigmoid(0.8 * people.frailty[person] + rng.standard_normal(n_claims))
    pay = np.zeros(n_claims)
    for i, label in enumerate(LOS_BUCKETS[1]):
        sel = bucket == i
        pay[sel] = from_quantiles(ip.payment_quantiles_by_los[label], u[sel])
    pay = np.where(np.abs(pay) >= 1000, np.round(pay, -3), np.round(pay, -1)).astype(np.int64)
    year = claim_year(admission)
    deductible = np.empty(n_claims, dtype=object)
    for t, y in enumerate(YEARS):
        sel = year == t
        deductible[sel] = ip.deductible_by_year[y].draw(rng, int(sel.sum()))
    primary = ip.primary_payer_amt.draw(rng, n_claims)
    coinsurance = ip.coinsurance_amt.draw(rng, n_claims)
    dx = draw_codes(rng, ip.dx, ip.n_dx.numbers(rng, n_claims), widths[0])
    inject_signal(rng, dx, model.ip_signal_codes, people.cond[risk_year, person])
    px = draw_codes(rng, ip.px, ip.n_px.numbers(rng, n_claims), widths[1])
    provider = pools.provider(rng, model.state_of[people.state_county[person]])
    utilization = np.where(rng.random(n_claims) < ip.utilization_equals_los, los, 0)
    physicians = draw_physicians(rng, n_claims, len(pools.npi), ip.npi_present.model_dump())
    admitting_dx = ip.admitting_dx.index(rng, n_claims)
    per_diem = ip.per_diem_amt.draw(rng, n_claims)
    blood = ip.blood_amt.draw(rng, n_claims)
    drg = ip.drg.index(rng, n_claims)
    segment2 = draw_segment2(rng, n_claims, ip.segment2_rate, ip.segment2_drg)
    spending = Spending(
        person=person,
        year=year,
        paid=pay,
        responsibility=np.array([float(x) for x in deductible])
        + np.array([float(x) for x in coinsurance]),
        primary_payer=np.array([float(x) for x in primary]),
    )
    return Stays(
        person=person,
        admission=admission,
        discharge=discharge,
        claim_id=ids.take(n_claims),
        payment=pay,
        deductible=deductible,
        primary_payer=primary,
        coinsurance=coinsurance,
        dx=dx,
        px=px,
        provider=provider,
        utilization_days=utilization,
        physicians=physicians,
        admitting_dx=admitting_dx,
        per_diem=per_diem,
        blood=blood,
        drg=drg,
        segment2=segment2,
        spending=spending,
    )


def render_stays(
    model: Model, pools: Pools, people: People, stays: Stays, contract: SourceContract
) -> pa.Table:
    ip = model.cal.inpatient
    n_claims = len(stays.person)
    cols = {
        "DESYNPUF_ID": render.people_ids(people.ids, stays.person),
        "CLM_ID": render.integer(stays.claim_id),
        "SEGMENT": render.integer(np.ones(n_claims)),
        "CLM_FROM_DT": render.date(stays.admission),
        "CLM_THRU_DT": render.date(stays.discharge),
        "PRVDR_NUM": render.take(pools.providers, stays.provider),
        "CLM_PMT_AMT": render.money(stays.payment),
        "NCH_PRMRY_PYR_CLM_PD_AMT": render.text(stays.primary_payer),
        "CLM_ADMSN_DT": render.date(stays.admission),
        "ADMTNG_ICD9_DGNS_CD": render.take(ip.admitting_dx.text, stays.admitting_dx),
        "CLM_PASS_THRU_PER_DIEM_AMT": render.text(stays.per_diem),
        "NCH_BENE_IP_DDCTBL_AMT": render.text(stays.deductible),
        "NCH_BENE_PTA_COINSRNC_LBLTY_AM": render.text(stays.coinsurance),
        "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": render.text(stays.blood),
        "CLM_UTLZTN_DAY_CNT": render.integer(stays.utilization_days),
        "NCH_BENE_DSCHRG_DT": render.date(stays.discharge),
        "CLM_DRG_CD": render.take(ip.drg.text, stays.drg),
    }
    for column, (npi, empty) in stays.physicians.items():
        cols[column] = render.take(pools.npi, npi, empty)
    cols |= render.code_columns(render.numbered(contract, "ICD9_DGNS_CD_"), ip.dx.text, stays.dx)
    cols |= render.code_columns(render.numbered(contract, "ICD9_PRCDR_CD_"), ip.px.text, stays.px)
    claims = render.table(contract, n_claims, cols)
    return render.with_segment2(claims, stays.segment2, ip.segment2_drg.text)


def code_widths(contract: SourceContract) -> tuple[int, int]:
    """Diagnosis and procedure code columns of the inpatient contract."""
    return (len(render.numbered(contract, "ICD9_DGNS_CD_")),
            len(render.numbered(contract, "ICD9_PRCDR_CD_")))  # fmt: skip


def inpatient(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    contract: SourceContract,
) -> tuple[pa.Table, Spending]:
    """The chunk's inpatient rows and what each stay paid."""
    stays = draw_stays(model, pools, people, rng, ids, code_widths(contract))
    return render_stays(model, pools, people, stays, contract), stays.spending
