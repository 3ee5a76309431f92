"""Outpatient claims: drawing visits (rising with conditions and frailty) and rendering them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract
from cms_pipeline.synth import render
from cms_pipeline.synth.beneficiary import People
from cms_pipeline.synth.calibration import from_quantiles
from cms_pipeline.synth.draws import (
    YEAR_START,
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
    into_2008,
    sigmoid,
    spread,
)
from cms_pipeline.synth.model import Model, Pools

CLAIM_ID_PREFIX = 542


@dataclass(frozen=True)
class Visits:
    """One chunk's outpatient claims, sorted by person and first day."""

    person: np.ndarray
    first_day: np.ndarray  # day offsets
    last_day: np.ndarray
    claim_id: np.ndarray
    payment: np.ndarray  # whole dollars
    primary_payer: np.ndarray  # amounts as text, from the calibration
    deductible: np.ndarray
    coinsurance: np.ndarray
    blood: np.ndarray
    dx: Codes
    hcpcs: Codes
    provider: np.ndarray
    physicians: dict[str, tuple[np.ndarray, np.ndarray]]  # column: (NPI index, empty)
    admitting_dx: tuple[np.ndarray, np.ndarray]  # (index into dx, empty)
    px: tuple[np.ndarray, np.ndarray]  # (index into px, empty): the first procedure only
    segment2: Segment2
    spending: Spending


def draw_visits(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    widths: tuple[int, int],
) -> Visits:
    """The chunk's visits; `widths` = (diagnosis, HCPCS) code columns of the contract."""
    op = model.cal.outpatient
    persons, days, years = [], [], []
    for t in range(3):
        start, end, fraction = people.year_window(t)
        weight = np.exp(0.6 * (people.cond[t] @ model.op_log_rate_ratio) + 0.4 * people.frailty)
        counts = claim_counts(rng, weight, fraction, op.claims_per_bene_year, 0.8)
        person, day = spread(rng, counts, start, end)
        if t == 0:  # a few visits in late 2007
            early = rng.random(len(person)) < op.from_2007_rate
            day[early] = YEAR_START[2008] - rng.integers(1, 60, early.sum())
        persons.append(person), days.append(day), years.append(np.full(len(person), t))
    person, day, risk_year = (np.concatenate(x) for x in (persons, days, years))
    order = by_person_and_day(person, day)
    person, day, risk_year = person[order], day[order], risk_year[order]
    n_claims = len(person)
    last = np.minimum(
        day + op.span_days.numbers(rng, n_claims), np.maximum(people.alive_end()[person], day)
    )
    last = into_2008(day, last)
    u = sigmoid(0.6 * people.frailty[person] + rng.standard_normal(n_claims))
    pay = np.round(from_quantiles(op.payment_quantiles, u), -1).astype(np.int64)
    primary = op.primary_payer_amt.draw(rng, n_claims)
    deductible = op.deductible_amt.draw(rng, n_claims)
    coinsurance = op.coinsurance_amt.draw(rng, n_claims)
    dx = draw_codes(rng, op.dx, op.n_dx.numbers(rng, n_claims), widths[0])
    inject_signal(rng, dx, model.op_signal_codes, people.cond[risk_year, person])
    hcpcs = draw_codes(rng, op.hcpcs, op.n_hcpcs.numbers(rng, n_claims), widths[1])
    provider = pools.provider(rng, model.state_of[people.state_county[person]])
    physicians = draw_physicians(rng, n_claims, len(pools.npi), op.npi_present.model_dump())
    blood = op.blood_amt.draw(rng, n_claims)
    admitting_dx = (op.dx.index(rng, n_claims), rng.random(n_claims) >= op.admitting_dx_present)
    px = (op.px.index(rng, n_claims), rng.random(n_claims) >= max(op.px_present, 0.0005))
    segment2 = draw_segment2(rng, n_claims, op.segment2_rate, None)
    spending = Spending(
        person=person,
        year=claim_year(day),
        paid=pay,
        responsibility=deductible.astype(float) + coinsurance.astype(float),
        primary_payer=primary.astype(float),
    )
    return Visits(
        person=person,
        first_day=day,
        last_day=last,
        claim_id=ids.take(n_claims),
        payment=pay,
        primary_payer=primary,
        deductible=deductible,
        coinsurance=coinsurance,
        blood=blood,
        dx=dx,
        hcpcs=hcpcs,
        provider=provider,
        physicians=physicians,
        admitting_dx=admitting_dx,
        px=px,
        segment2=segment2,
        spending=spending,
    )


def render_visits(
    model: Model, pools: Pools, people: People, visits: Visits, contract: SourceContract
) -> pa.Table:
    op = model.cal.outpatient
    n_claims = len(visits.person)
    cols = {
        "DESYNPUF_ID": render.people_ids(people.ids, visits.person),
        "CLM_ID": render.integer(visits.claim_id),
        "SEGMENT": render.integer(np.ones(n_claims)),
        "CLM_FROM_DT": render.date(visits.first_day),
        "CLM_THRU_DT": render.date(visits.last_day),
        "PRVDR_NUM": render.take(pools.providers, visits.provider),
        "CLM_PMT_AMT": render.money(visits.payment),
        "NCH_PRMRY_PYR_CLM_PD_AMT": render.text(visits.primary_payer),
        "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": render.text(visits.blood),
        "NCH_BENE_PTB_DDCTBL_AMT": render.text(visits.deductible),
        "NCH_BENE_PTB_COINSRNC_AMT": render.text(visits.coinsurance),
        "ADMTNG_ICD9_DGNS_CD": render.take(op.dx.text, *visits.admitting_dx),
        "ICD9_PRCDR_CD_1": render.take(op.px.text, *visits.px),
    }
    for column, (npi, empty) in visits.physicians.items():
        cols[column] = render.take(pools.npi, npi, empty)
    cols |= render.code_columns(render.numbered(contract, "ICD9_DGNS_CD_"), op.dx.text, visits.dx)
    cols |= render.code_columns(render.numbered(contract, "HCPCS_CD_"), op.hcpcs.text, visits.hcpcs)
    return render.with_segment2(render.table(contract, n_claims, cols), visits.segment2, None)


def code_widths(contract: SourceContract) -> tuple[int, int]:
    """Diagnosis and HCPCS code columns of the outpatient contract."""
    return (len(render.numbered(contract, "ICD9_DGNS_CD_")),
            len(render.numbered(contract, "HCPCS_CD_")))  # fmt: skip


def outpatient(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    contract: SourceContract,
) -> tuple[pa.Table, Spending]:
    """The chunk's outpatient rows and what each visit paid."""
    visits = draw_visits(model, pools, people, rng, ids, code_widths(contract))
    return render_visits(model, pools, people, visits, contract), visits.spending
