"""What drawing needs beyond the calibration: derived arrays (prepared once per process) and
the code pools of one sample (providers, physicians, drugs)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cms_pipeline.synth.calibration import Calibration, Categorical

# condition columns that carry the built-in risk signal, and the codes they add to claims
SIGNAL = {"SP_CHF": "4280", "SP_CHRNKIDN": "5859", "SP_COPD": "496", "SP_DIABETES": "25000"}
READMIT_WEIGHTS = {"SP_CHF": 0.8, "SP_CHRNKIDN": 0.65, "SP_COPD": 0.65, "SP_DIABETES": 0.45}


def _signal_codes(conditions: list[str], dist: Categorical) -> list[tuple[int, int]]:
    """(condition column, code index in `dist`) of each signal condition whose code it has."""
    values = list(dist.values)
    return [(conditions.index(name), values.index(code))
            for name, code in SIGNAL.items() if code in values]  # fmt: skip


@dataclass(frozen=True)
class Model:
    """The calibration and the arrays derived from it that every chunk uses."""

    cal: Calibration
    conditions: list[str]  # SP_* columns; bit i of a profile is conditions[i]
    coverage: np.ndarray  # (coverage values, 4): HI, SMI, HMO, plan months
    ip_log_rate_ratio: np.ndarray  # by condition
    op_log_rate_ratio: np.ndarray
    states: list[str]
    state_of: np.ndarray  # state index of each state_county value
    state_text: pa.Array  # SP_STATE_CODE of each state_county value
    county_text: pa.Array  # BENE_COUNTY_CD of each state_county value
    signal: list[int]  # columns of the SIGNAL conditions
    readmit_weights: np.ndarray  # READMIT_WEIGHTS in SIGNAL order
    ip_signal_codes: list[tuple[int, int]]
    op_signal_codes: list[tuple[int, int]]
    carrier_line_pay: Categorical  # whole tens of dollars, evenly spaced quantiles

    @classmethod
    def of(cls, cal: Calibration) -> Model:
        conditions = cal.beneficiary.conditions.names
        state_county = [v.split("|") for v in cal.beneficiary.state_county.values]
        states = sorted({state for state, _ in state_county})
        coverage = [[int(x) for x in v.split("|")] for v in cal.beneficiary.coverage.values]
        q = np.round(np.asarray(cal.carrier.line_payment_quantiles), -1)
        return cls(
            cal=cal,
            conditions=conditions,
            coverage=np.array(coverage, dtype=np.int64),
            ip_log_rate_ratio=np.log([cal.inpatient.rate_ratio[n] for n in conditions]),
            op_log_rate_ratio=np.log([cal.outpatient.rate_ratio[n] for n in conditions]),
            states=states,
            state_of=np.array([states.index(s) for s, _ in state_county], dtype=np.int64),
            state_text=pa.array([s for s, _ in state_county]),
            county_text=pa.array([c for _, c in state_county]),
            signal=[conditions.index(n) for n in SIGNAL],
            readmit_weights=np.array([READMIT_WEIGHTS[n] for n in SIGNAL]),
            ip_signal_codes=_signal_codes(conditions, cal.inpatient.dx),
            op_signal_codes=_signal_codes(conditions, cal.outpatient.dx),
            carrier_line_pay=Categorical(
                q.astype(np.int64).astype(object), np.full(len(q), 1 / len(q))
            ),
        )


@dataclass(frozen=True)
class Pools:
    """Code pools of one sample: providers per state, physicians, tax numbers, drugs."""

    providers: pa.Array  # n_states * per_state
    per_state: int
    npi: pa.Array
    tax: pa.Array  # one per NPI
    ndc: pa.Array
    ndc_weights: Categorical  # index into ndc, Zipf-like

    @classmethod
    def build(cls, rng: np.random.Generator, model: Model) -> Pools:
        per_state = 60
        letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
        providers = []
        for state in model.states:
            num = rng.integers(0, 100, per_state)
            a, b = rng.choice(letters, per_state), rng.choice(letters, per_state)
            providers += [f"{state}{n:02d}{x}{y}" for n, x, y in zip(num, a, b, strict=True)]
        n_npi = model.cal.carrier.npi_pool
        npi = [f"{v:010d}" for v in rng.integers(10**8, 10**10, n_npi)]
        tax = [f"{v:09d}" for v in rng.integers(10**7, 10**9, n_npi)]
        n_ndc = model.cal.pde.ndc_pool
        labeler = rng.integers(0, 100_000, n_ndc // 20)
        products = zip(rng.integers(0, 10_000, n_ndc), rng.integers(0, 100, n_ndc), strict=True)
        ndc = [f"{labeler[i % len(labeler)]:05d}{product:04d}{package:02d}"
               for i, (product, package) in enumerate(products)]  # fmt: skip
        zipf = 1.0 / np.arange(1, n_ndc + 1) ** 1.1
        return cls(
            providers=pa.array(providers),
            per_state=per_state,
            npi=pa.array(npi),
            tax=pa.array(tax),
            ndc=pa.array(ndc),
            ndc_weights=Categorical(np.arange(n_ndc, dtype=object), zipf / zipf.sum()),
        )

    def provider(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """A provider (index into `providers`) in each claim's state."""
        return state * self.per_state + rng.integers(0, self.per_state, len(state))
