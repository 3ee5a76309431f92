"""Prescription drug events: drawing fills (only in months with a Part D plan) and rendering."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cms_pipeline.config import SourceContract
from cms_pipeline.synth import render
from cms_pipeline.synth.beneficiary import People
from cms_pipeline.synth.calibration import from_quantiles
from cms_pipeline.synth.draws import ClaimIds, by_person_and_day, claim_counts, spread
from cms_pipeline.synth.model import Model, Pools

CLAIM_ID_PREFIX = 834


@dataclass(frozen=True)
class Fills:
    """One chunk's drug events, sorted by person and service day."""

    person: np.ndarray
    day: np.ndarray  # day offsets
    event_id: np.ndarray
    drug: np.ndarray  # index into the sample's NDC pool
    quantity: np.ndarray
    days_supply: np.ndarray
    patient_pays: np.ndarray  # whole dollars
    total_cost: np.ndarray


def draw_fills(
    model: Model, pools: Pools, people: People, rng: np.random.Generator, ids: ClaimIds
) -> Fills:
    pde = model.cal.pde
    persons, days = [], []
    for t in range(3):
        start, end, fraction = people.year_window(t)
        plan_share = model.coverage[people.coverage[t], 3] / 12.0  # Part D plan months
        weight = np.exp(0.15 * people.cond[t].sum(axis=1) + 0.2 * people.frailty) * plan_share
        counts = claim_counts(rng, weight, fraction, pde.events_per_bene_year, 2.0)
        person, day = spread(rng, counts, start, end)
        persons.append(person), days.append(day)
    person, day = np.concatenate(persons), np.concatenate(days)
    order = by_person_and_day(person, day)
    person, day = person[order], day[order]
    n_claims = len(person)
    u = rng.random(n_claims)
    cost = np.round(from_quantiles(pde.cost_quantiles, u), -1).astype(np.int64)
    share = np.asarray(pde.patient_share)[rng.integers(0, len(pde.patient_share), n_claims)]
    return Fills(
        person=person,
        day=day,
        event_id=ids.take(n_claims),
        drug=pools.ndc_weights.index(rng, n_claims),
        quantity=pde.quantity.numbers(rng, n_claims),
        days_supply=pde.days_supply.numbers(rng, n_claims),
        patient_pays=np.round(cost * share, -1),
        total_cost=cost,
    )


def render_fills(pools: Pools, people: People, fills: Fills, contract: SourceContract) -> pa.Table:
    cols = {
        "DESYNPUF_ID": render.people_ids(people.ids, fills.person),
        "PDE_ID": render.integer(fills.event_id),
        "SRVC_DT": render.date(fills.day),
        "PROD_SRVC_ID": render.take(pools.ndc, fills.drug),
        "QTY_DSPNSD_NUM": render.integer(fills.quantity),
        "DAYS_SUPLY_NUM": render.integer(fills.days_supply),
        # the real PDE file writes whole-dollar amounts without cents
        "PTNT_PAY_AMT": render.integer(fills.patient_pays),
        "TOT_RX_CST_AMT": render.integer(fills.total_cost),
    }
    return render.table(contract, len(fills.person), cols)


def drug_events(
    model: Model,
    pools: Pools,
    people: People,
    rng: np.random.Generator,
    ids: ClaimIds,
    contract: SourceContract,
) -> pa.Table:
    """The chunk's prescription drug event rows."""
    return render_fills(pools, people, draw_fills(model, pools, people, rng, ids), contract)
