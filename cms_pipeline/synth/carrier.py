"""Carrier claims: drawing physician claims and their line items, and rendering them.

A claim has 1 to 13 lines (LINE_*_1..13); each line's amounts are whole tens of dollars,
its diagnosis one of the claim's. CMS splits the file in two by beneficiary (A and B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import SourceContract
from cms_pipeline.synth import render
from cms_pipeline.synth.beneficiary import People
from cms_pipeline.synth.draws import (
    ClaimIds,
    Codes,
    Spending,
    by_person_and_day,
    claim_counts,
    claim_year,
    draw_codes,
    inject_signal,
    spread,
)
from cms_pipeline.synth.model import Model, Pools

CLAIM_ID_PREFIX = 887


@dataclass(frozen=True)
class Lines:
    """The line items of a chunk's carrier claims, one entry per used line."""

    number: np.ndarray  # 0-based line number within its claim
    claim: np.ndarray  # index of its claim
    physician: np.ndarray  # index into the NPI (and tax number) pool
    hcpcs: np.ndarray  # index into the HCPCS distribution
    payment_tens: np.ndarray  # amounts in tens of dollars
    deductible_tens: np.ndarray
    primary_payer_tens: np.ndarray
    coinsurance_tens: np.ndarray
    allowed_tens: np.ndarray
    processing: np.ndarray  # index into the processing indicator distribution
    dx: np.ndarray  # index into the diagnosis distribution


@dataclass(frozen=True)
class CarrierClaims:
    """One chunk's carrier claims, sorted by person and day."""

    person: np.ndarray
    day: np.ndarray  # day offsets (from and thru are the same day)
    claim_id: np.ndarray
    dx: Codes
    lines: Lines
    spending: Spending


def draw_claims(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    widths: tuple[int, int],
) -> CarrierClaims:
    """The chunk's claims; `widths` = (diagnosis, line) columns of the contract."""
    car, op = model.cal.carrier, model.cal.outpatient
    dx_width, line_width = widths
    persons, days, years = [], [], []
    for t in range(3):
        start, end, fraction = people.year_window(t)
        weight = np.exp(0.4 * (people.cond[t] @ model.op_log_rate_ratio) + 0.3 * people.frailty)
        counts = claim_counts(rng, weight, fraction, car.claims_per_bene_year, 1.2)
        person, day = spread(rng, counts, start, end)
        persons.append(person), days.append(day), years.append(np.full(len(person), t))
    person, day, risk_year = (np.concatenate(x) for x in (persons, days, years))
    order = by_person_and_day(person, day)
    person, day, risk_year = person[order], day[order], risk_year[order]
    n_claims = len(person)
    n_lines = car.lines.numbers(rng, n_claims)
    # carrier diagnoses follow the outpatient frequencies
    dx = draw_codes(rng, op.dx, np.minimum(op.n_dx.numbers(rng, n_claims), dx_width), dx_width)
    inject_signal(rng, dx, model.op_signal_codes, people.cond[risk_year, person])
    # line items: drawn only for the lines each claim has
    number, claim = np.nonzero(np.arange(line_width)[:, None] < n_lines[None, :])
    n_used = len(claim)
    n_npi = len(pools.npi)
    # one performing physician per claim mostly, sometimes another on a line
    physician = rng.integers(0, n_npi, n_claims)[claim]
    other = rng.random(n_used) < 0.15
    physician[other] = rng.integers(0, n_npi, other.sum())
    tens = model.carrier_line_pay.numbers(rng, n_used) // 10
    coinsurance = (tens + 2) // 4
    deductible = np.where(rng.random(n_used) < 0.05, tens // 2, 0)
    allowed = tens + coinsurance + deductible
    primary = np.where(rng.random(n_used) < 0.02, allowed, 0)
    n_dx = np.maximum((~dx.empty).sum(axis=1), 1)
    line_dx = dx.index[claim, np.floor(rng.random(n_used) * n_dx[claim]).astype(np.int64)]
    hcpcs = op.hcpcs.index(rng, n_used)
    processing = car.processing_indicator.index(rng, n_used)
    lines = Lines(number, claim, physician, hcpcs, tens, deductible, primary, coinsurance,
                  allowed, processing, line_dx)  # fmt: skip
    per_claim = {
        name: 10 * np.bincount(claim, weights=amounts, minlength=n_claims)
        for name, amounts in (("paid", tens), ("responsibility", deductible + coinsurance),
                        ("primary_payer", primary))
    }  # fmt: skip
    spending = Spending(person=person, year=claim_year(day), **per_claim)
    return CarrierClaims(person, day, ids.take(n_claims), dx, lines, spending)


def render_claims(
    model: Model, pools: Pools, people: People, claims: CarrierClaims, contract: SourceContract
) -> pa.Table:
    op, car = model.cal.outpatient, model.cal.carrier
    n_claims, lines = len(claims.person), claims.lines
    line_width = len(render.numbered(contract, "LINE_NCH_PMT_AMT_"))

    def laid_out(values: np.ndarray, fill: int) -> np.ndarray:
        """(line, claim) pool indices; lines a claim does not have get `fill`."""
        out = np.full((line_width, n_claims), fill, dtype=np.int32)
        out[lines.number, lines.claim] = values
        return out

    npi, tax = render.with_null(pools.npi), render.with_null(pools.tax)
    hcpcs = render.with_null(op.hcpcs.text)
    processing = render.with_null(car.processing_indicator.text)
    dx = render.with_null(op.dx.text)
    tens = render.MONEY_TENS
    blocks = {
        "PRF_PHYSN_NPI": (npi, laid_out(lines.physician, len(pools.npi))),
        "TAX_NUM": (tax, laid_out(lines.physician, len(pools.npi))),
        "HCPCS_CD": (hcpcs, laid_out(lines.hcpcs, len(hcpcs) - 1)),
        "LINE_NCH_PMT_AMT": (tens, laid_out(lines.payment_tens, 0)),
        "LINE_BENE_PTB_DDCTBL_AMT": (tens, laid_out(lines.deductible_tens, 0)),
        "LINE_BENE_PRMRY_PYR_PD_AMT": (tens, laid_out(lines.primary_payer_tens, 0)),
        "LINE_COINSRNC_AMT": (tens, laid_out(lines.coinsurance_tens, 0)),
        "LINE_ALOWD_CHRG_AMT": (tens, laid_out(lines.allowed_tens, 0)),
        "LINE_PRCSG_IND_CD": (processing, laid_out(lines.processing, len(processing) - 1)),
        "LINE_ICD9_DGNS_CD": (dx, laid_out(lines.dx, len(dx) - 1)),
    }
    cols = {
        "DESYNPUF_ID": render.people_ids(people.ids, claims.person),
        "CLM_ID": render.integer(claims.claim_id),
        "CLM_FROM_DT": render.date(claims.day),
        "CLM_THRU_DT": render.date(claims.day),
    }
    cols |= render.code_columns(render.numbered(contract, "ICD9_DGNS_CD_"), op.dx.text, claims.dx)
    for stem, (pool, idx) in blocks.items():
        for j, name in enumerate(render.numbered(contract, f"{stem}_")):
            cols[name] = pc.take(pool, pa.array(idx[j]))
    return render.table(contract, n_claims, cols)


def widths(contract: SourceContract) -> tuple[int, int]:
    """Diagnosis and line columns of the carrier contract."""
    return (len(render.numbered(contract, "ICD9_DGNS_CD_")),
            len(render.numbered(contract, "LINE_NCH_PMT_AMT_")))  # fmt: skip


def carrier(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    contract: SourceContract,
) -> tuple[pa.Table, np.ndarray, Spending]:
    """The chunk's carrier rows, the person of each row and what each claim paid."""
    claims = draw_claims(model, pools, people, rng, ids, widths(contract))
    return render_claims(model, pools, people, claims, contract), claims.person, claims.spending
