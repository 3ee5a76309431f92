"""Synthetic DE-SynPUF samples: all eight CMS files, any scale, same bytes for the same seed.

A sample is generated in chunks of beneficiaries (sorted IDs, so every file comes out
sorted by DESYNPUF_ID as CMS's are); each chunk draws its people, their three years,
deaths and all their claims, then appends rows to the eight files. Memory is bounded by
the chunk, not the scale. Each chunk has its own random stream (seed, sample, chunk),
so output depends only on the seed, the scale and the sample number.

What is drawn from the calibration (real rows) and what is assumed is stated in
`config/synth/calibration.json`. The built-in signal: admissions, readmissions and costs
rise with CHF, CKD, COPD, diabetes, a persistent per-person frailty and prior admissions.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cms_pipeline.config import SourceContract, load_settings
from cms_pipeline.synth.calibration import Categorical, from_quantiles, load_calibration
from cms_pipeline.synth.layout import FILE_KINDS, KINDS, header_bytes, rows_bytes, zip_file

YEARS = (2008, 2009, 2010)
CHUNK_BENES = 5_000  # fixed: changing it changes the bytes for a seed
MIN_SCALE, MAX_SCALE = 0.001, 20.0
DAY0 = np.datetime64("2007-01-01", "D")
LAST_DAY = int((np.datetime64("2010-12-31", "D") - DAY0).astype(int))
# YYYYMMDD for every day from DAY0 on: dates are day offsets until written
_DAYS = np.arange(DAY0, np.datetime64("2011-03-01", "D"))
YMD = np.array([int(str(d).replace("-", "")) for d in _DAYS], dtype=np.int32)
YEAR_START = {y: int((np.datetime64(f"{y}-01-01", "D") - DAY0).astype(int)) for y in YEARS}
# condition columns that carry the built-in risk signal, and the codes they add to claims
SIGNAL = {"SP_CHF": "4280", "SP_CHRNKIDN": "5859", "SP_COPD": "496", "SP_DIABETES": "25000"}
READMIT_WEIGHTS = {"SP_CHF": 0.8, "SP_CHRNKIDN": 0.65, "SP_COPD": 0.65, "SP_DIABETES": 0.45}


_MONEY_LOW, _MONEY_HIGH = -100_000, 1_000_000
_MONEY_POOL: list[pa.Array] = []


def _money(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Whole-dollar amounts as CMS writes them: "26000.00"; masked entries empty.

    Amounts repeat a lot, so each value's text is made once per process and taken.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < _MONEY_LOW or values.max() > _MONEY_HIGH):
        uniq, inverse = np.unique(values, return_inverse=True)
        pool = pa.array([f"{v}.00" for v in uniq.tolist()], pa.string())
        return _take(pool, inverse.ravel(), mask)
    if not _MONEY_POOL:
        _MONEY_POOL.append(
            pa.array([f"{v}.00" for v in range(_MONEY_LOW, _MONEY_HIGH + 1)], pa.string())
        )
    return _take(_MONEY_POOL[0], values - _MONEY_LOW, mask)


def _with_null(pool: pa.Array) -> pa.Array:
    """The pool plus a trailing null: index len(pool) gives an empty field."""
    return pa.concat_arrays([pool, pa.nulls(1, pool.type)])


# "0.00", "10.00", ...: carrier line amounts are whole tens of dollars
_MONEY_TENS = pa.array([f"{10 * v}.00" for v in range(100_000)], pa.string())


def _integer(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), mask=mask)


def _date(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    safe = np.clip(days, 0, len(YMD) - 1)
    return pa.array(YMD[safe], mask=mask)


def _take(pool: pa.Array, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pc.take(pool, pa.array(np.asarray(idx, dtype=np.int64), mask=mask))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept_for_mean(lin: np.ndarray, target: float) -> float:
    """Intercept a with mean(sigmoid(a + lin)) == target (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if _sigmoid(mid + lin).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total over chunks in proportion to weights (largest remainder)."""
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    rest = total - base.sum()
    base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
    return base


@dataclass
class Pools:
    """Code pools of one sample: providers per state, physicians, tax numbers, drugs."""

    providers: pa.Array  # n_states * per_state
    per_state: int
    npi: pa.Array
    tax: pa.Array
    ndc: pa.Array
    ndc_weights: Categorical

    @classmethod
    def build(cls, rng: np.random.Generator, states: list[str], calib: dict) -> Pools:
        per_state = 60
        letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
        prov = []
        for st in states:
            num = rng.integers(0, 100, per_state)
            a, b = rng.choice(letters, per_state), rng.choice(letters, per_state)
            prov += [f"{st}{n:02d}{x}{y}" for n, x, y in zip(num, a, b, strict=True)]
        n_npi = int(calib["carrier"]["npi_pool"])
        npi = [f"{v:010d}" for v in rng.integers(10**8, 10**10, n_npi)]
        tax = [f"{v:09d}" for v in rng.integers(10**7, 10**9, n_npi)]
        n_ndc = int(calib["pde"]["ndc_pool"])
        labeler = rng.integers(0, 100_000, n_ndc // 20)
        ndc = [
            f"{labeler[i % len(labeler)]:05d}{p:04d}{k:02d}"
            for i, (p, k) in enumerate(
                zip(rng.integers(0, 10_000, n_ndc), rng.integers(0, 100, n_ndc), strict=True)
            )
        ]
        zipf = 1.0 / np.arange(1, n_ndc + 1) ** 1.1
        return cls(
            providers=pa.array(prov),
            per_state=per_state,
            npi=pa.array(npi),
            tax=pa.array(tax),
            ndc=pa.array(ndc),
            ndc_weights=Categorical(np.arange(n_ndc, dtype=object), zipf / zipf.sum()),
        )


@dataclass
class Model:
    """Distributions prepared once from the calibration file."""

    calib: dict
    d: dict[str, Categorical] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = self.calib
        b, ip, op = c["beneficiary"], c["inpatient"], c["outpatient"]
        cat = Categorical.of
        self.conditions: list[str] = b["conditions"]["names"]
        self.d = {
            "birth_year": cat(b["birth_year"]),
            "birth_month": cat(b["birth_month"]),
            "sex": cat(b["sex"]),
            "race": cat(b["race"]),
            "state_county": cat(b["state_county"]),
            "coverage": cat(b["coverage"]),
            "profile": cat(b["conditions"]["profiles_2008"]),
            "death_month": cat(b["death_month"]),
            "ip_los": cat(ip["los"]),
            "ip_dx": cat(ip["dx"]),
            "ip_n_dx": cat(ip["n_dx"]),
            "ip_adm_dx": cat(ip["admitting_dx"]),
            "ip_px": cat(ip["px"]),
            "ip_n_px": cat(ip["n_px"]),
            "ip_drg": cat(ip["drg"]),
            "ip_seg2_drg": cat(ip["segment2_drg"]),
            "ip_prim": cat(ip["primary_payer_amt"]),
            "ip_per_diem": cat(ip["per_diem_amt"]),
            "ip_coins": cat(ip["coinsurance_amt"]),
            "ip_blood": cat(ip["blood_amt"]),
            "op_span": cat(op["span_days"]),
            "op_dx": cat(op["dx"]),
            "op_n_dx": cat(op["n_dx"]),
            "op_px": cat(op["px"]),
            "op_hcpcs": cat(op["hcpcs"]),
            "op_n_hcpcs": cat(op["n_hcpcs"]),
            "op_prim": cat(op["primary_payer_amt"]),
            "op_blood": cat(op["blood_amt"]),
            "op_ded": cat(op["deductible_amt"]),
            "op_coins": cat(op["coinsurance_amt"]),
            "car_lines": cat(c["carrier"]["lines"]),
            "car_prcsg": cat(c["carrier"]["processing_indicator"]),
            "pde_qty": cat(c["pde"]["quantity"]),
            "pde_days": cat(c["pde"]["days_supply"]),
        }
        self.ip_deductible = {y: cat(ip["deductible_by_year"][str(y)]) for y in YEARS}
        cov = self.d["coverage"].values
        self.coverage = np.array([[int(x) for x in v.split("|")] for v in cov], dtype=np.int64)
        self.pools_text = {k: pa.array(list(v.values), type=pa.string()) for k, v in self.d.items()
                           if v.values.dtype == object and isinstance(v.values[0], str)}  # fmt: skip
        self.ip_log_rr = np.log([ip["rate_ratio"][n] for n in self.conditions])
        self.op_log_rr = np.log([op["rate_ratio"][n] for n in self.conditions])
        self.states = sorted({v.split("|")[0] for v in self.d["state_county"].values})
        self.signal_idx = [self.conditions.index(n) for n in SIGNAL]
        self.signal_codes = {n: self._code_index(n) for n in SIGNAL}

    def _code_index(self, name: str) -> dict[str, int]:
        code = SIGNAL[name]
        out = {}
        for pool in ("ip_dx", "op_dx"):
            values = list(self.d[pool].values)
            out[pool] = values.index(code) if code in values else -1
        return out

    def pool(self, key: str) -> pa.Array:
        return self.pools_text[key]


@dataclass
class People:
    """One chunk's beneficiaries and their three years."""

    n: int
    ids: list[str]
    birth_year: np.ndarray
    birth: np.ndarray  # YYYYMMDD
    sex: np.ndarray
    race: np.ndarray
    state_county: np.ndarray  # index into the state_county distribution
    frailty: np.ndarray
    coverage: np.ndarray  # (3, n) index into coverage tuples
    esrd: np.ndarray  # (3, n) bool
    cond: np.ndarray  # (3, n, k) bool
    death_year: np.ndarray  # 0 = alive through 2010
    death_day: np.ndarray  # day offset of the death date (first of a month)

    def in_file(self, y: int) -> np.ndarray:
        """Listed in year y's beneficiary file: alive on 1 January."""
        return (self.death_year == 0) | (self.death_year >= y)

    def alive_end(self) -> np.ndarray:
        """Last day a claim may start: the day before death, or 2010-12-31."""
        return np.where(self.death_year > 0, self.death_day - 1, LAST_DAY)


def draw_people(m: Model, rng: np.random.Generator, ids: np.ndarray, deaths: list[int]) -> People:
    n = len(ids)
    d = m.d
    birth_year = d["birth_year"].numbers(rng, n)
    birth = (
        birth_year * 10000
        + d["birth_month"].values.astype(int)[d["birth_month"].index(rng, n)] * 100
        + 1
    )
    k = len(m.conditions)
    b = m.calib["beneficiary"]
    keep, onset = np.array(b["conditions"]["keep"]), np.array(b["conditions"]["onset"])
    cond = np.zeros((3, n, k), dtype=bool)
    profile = d["profile"].numbers(rng, n)
    cond[0] = (profile[:, None] >> np.arange(k)) & 1 == 1
    esrd = np.zeros((3, n), dtype=bool)
    esrd[0] = rng.random(n) < b["esrd"]["2008"]
    coverage = np.zeros((3, n), dtype=np.int64)
    coverage[0] = d["coverage"].index(rng, n)
    for t in (1, 2):
        u = rng.random((n, k))
        cond[t] = np.where(cond[t - 1], u < keep, u < onset)
        ue = rng.random(n)
        esrd[t] = np.where(esrd[t - 1], ue < b["esrd_keep"], ue < b["esrd_onset"])
        redraw = rng.random(n) >= b["coverage_keep"]
        coverage[t] = np.where(redraw, d["coverage"].index(rng, n), coverage[t - 1])
    frailty = rng.standard_normal(n)
    death_year = np.zeros(n, dtype=np.int64)
    death_day = np.zeros(n, dtype=np.int64)
    sig = m.signal_idx
    for t, y in enumerate(YEARS):
        alive = np.flatnonzero(death_year == 0)
        count = min(deaths[t], len(alive))
        if count == 0:
            continue
        # older and sicker die first: weighted sampling without replacement (Gumbel top-k)
        age = y - birth_year[alive]
        burden = cond[t][alive][:, sig].sum(axis=1)
        log_h = 0.05 * (age - 75) + 0.3 * burden + 0.4 * frailty[alive]
        key = log_h + rng.gumbel(size=len(alive))
        dead = alive[np.argsort(-key, kind="stable")[:count]]
        month = d["death_month"].values.astype(int)[d["death_month"].index(rng, count)]
        death_year[dead] = y
        death_day[dead] = (
            np.array(
                [np.datetime64(f"{y}-{mo:02d}-01", "D") for mo in month], dtype="datetime64[D]"
            )
            - DAY0
        ).astype(np.int64)
    return People(
        n=n,
        ids=[f"{v:016X}" for v in ids],
        birth_year=birth_year,
        birth=birth,
        sex=d["sex"].index(rng, n),
        race=d["race"].index(rng, n),
        state_county=d["state_county"].index(rng, n),
        frailty=frailty,
        coverage=coverage,
        esrd=esrd,
        cond=cond,
        death_year=death_year,
        death_day=death_day,
    )


def _into_2008(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The real files' claims that start in late 2007 all end in 2008 or later: each
    belongs to a year that has a beneficiary summary."""
    return np.where(start < YEAR_START[2008], np.maximum(end, YEAR_START[2008]), end)


def _year_window(p: People, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who is in year t's file, the first and last day a claim may start, and the fraction alive."""
    y = YEARS[t]
    listed = p.in_file(y)
    start = np.full(p.n, YEAR_START[y])
    end = np.minimum(p.alive_end(), YEAR_START[y] + (365 if y == 2008 else 364))
    frac = np.where(listed, np.clip((end - start + 1) / 365.0, 0, 1), 0.0)
    return listed, start, end, frac


def _counts(rng, weight: np.ndarray, frac: np.ndarray, per_bene_year: float, shape: float | None):
    """Claim counts per person: mean per listed bene-year preserved, rising with `weight`."""
    listed = frac > 0
    lam = weight * frac
    norm = lam[listed].mean() if listed.any() else 1.0
    lam = per_bene_year * lam / max(norm, 1e-12)
    if shape is not None:  # negative binomial: gamma-mixed Poisson
        lam = rng.gamma(shape, lam / shape)
    return rng.poisson(lam)


def _spread(rng, counts: np.ndarray, start: np.ndarray, end: np.ndarray, strata: bool = False):
    """Person index and a uniform start day within [start, end] for each claim.

    With `strata`, a person's k events fall one in each k-th of the window, so that
    closely spaced events (readmissions) come from the readmission model, not by chance.
    """
    who = np.repeat(np.arange(len(counts)), counts)
    width = np.maximum(end[who] - start[who] + 1, 1)
    u = rng.random(len(who))
    if strata:
        rank = np.arange(len(who)) - np.repeat(np.cumsum(counts) - counts, counts)
        u = (rank + u) / counts[who]
    return who, start[who] + np.floor(u * width).astype(np.int64)


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


def _codes_block(rng, pool: Categorical, n_codes: np.ndarray, width: int):
    """(rows, width) code indices and a mask of empty slots beyond each row's count."""
    idx = pool.index(rng, len(n_codes) * width).reshape(len(n_codes), width)
    empty = np.arange(width)[None, :] >= n_codes[:, None]
    return idx, empty


def _inject_signal(m: Model, p: People, who, t_of, idx, empty, pool_key: str, rng) -> None:
    """Put the ICD-9 code of a signal condition on claims of people who have it."""
    for name, pos in m.signal_codes.items():
        code = pos[pool_key]
        if code < 0:
            continue
        ci = m.conditions.index(name)
        has = p.cond[t_of, who, ci] & (rng.random(len(who)) < 0.6)
        slot = np.minimum((~empty).sum(axis=1), idx.shape[1] - 1)
        rows = np.flatnonzero(has)
        slot = np.minimum(slot[rows], rng.integers(0, idx.shape[1], len(rows)))
        idx[rows, slot] = code
        empty[rows, slot] = False


def _table(contract: SourceContract, m_rows: int, cols: dict[str, pa.Array]) -> pa.Table:
    unknown = set(cols) - set(contract.column_names)
    if unknown:
        raise KeyError(f"{contract.name}: columns not in the contract: {sorted(unknown)}")
    empty = pa.nulls(m_rows, pa.string())
    arrays = [cols.get(c, empty) for c in contract.column_names]
    return pa.table(arrays, names=contract.column_names)


def _order(who: np.ndarray, day: np.ndarray) -> np.ndarray:
    return np.lexsort((day, who))


class SampleWriter:
    """Generates one sample chunk by chunk and appends rows to its eight files."""

    def __init__(self, m: Model, contracts: dict[str, SourceContract], seed: int, sample: int):
        self.m, self.contracts, self.seed, self.sample = m, contracts, seed, sample
        self.pools = Pools.build(self._rng(10**6), m.states, m.calib)
        sc = m.d["state_county"].values
        self.state_of = np.array([m.states.index(v.split("|")[0]) for v in sc], dtype=np.int64)
        self.state_text = pa.array([v.split("|")[0] for v in sc])
        q = np.round(np.asarray(m.calib["carrier"]["line_payment_quantiles"]), -1)
        self.line_pay = Categorical(q.astype(np.int64).astype(object), np.full(len(q), 1 / len(q)))
        self.county_text = pa.array([v.split("|")[1] for v in sc])

    def _rng(self, chunk: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.sample, chunk])

    # -- claims -----------------------------------------------------------------------
    def inpatient(self, p: People, rng) -> tuple[pa.Table, dict]:
        m, cal = self.m, self.m.calib
        ip = cal["inpatient"]
        per_year = cal["full_sample"]["inpatient"] / sum(cal["full_sample"]["beneficiary"].values())
        # modelled readmissions; frequent admitters add a few chance ones on top
        readmit_target = 0.85 * ip["readmit_30d_rate"]
        base = per_year / (1 + readmit_target)
        prior = np.zeros(p.n)
        who_l, adm_l, los_l, t_l = [], [], [], []
        sig = m.signal_idx
        w_sig = np.array([READMIT_WEIGHTS[n] for n in SIGNAL])
        alive_end = p.alive_end()
        for t in range(3):
            listed, start, end, frac = _year_window(p, t)
            # admissions: this year's conditions, last year's signal conditions, frailty, prior stays
            before = p.cond[max(t - 1, 0)][:, sig].sum(axis=1)
            lin = (
                0.35 * (p.cond[t] @ m.ip_log_rr)
                + 0.2 * before
                + 0.45 * p.frailty
                + 0.35 * np.minimum(prior, 3)
            )
            n_adm = _counts(rng, np.exp(lin), frac, base, None)
            who, adm = _spread(rng, n_adm, start, end, strata=True)
            if t == 0:  # the real files' few stays admitted in late 2007
                early = rng.random(len(who)) < ip["from_2007_rate"]
                adm[early] = YEAR_START[2008] - rng.integers(1, 25, early.sum())
            los = m.d["ip_los"].numbers(rng, len(who))
            # readmission within 30 days: risk from signal conditions, prior stays, frailty
            r_lin = (
                p.cond[t][who][:, sig] @ w_sig
                + 0.4 * np.minimum(prior[who], 3)
                + 0.5 * p.frailty[who]
                + 0.2 * (los > 7)
            )
            a = _intercept_for_mean(r_lin, readmit_target) if len(who) else 0.0
            back = rng.random(len(who)) < _sigmoid(a + r_lin)
            r_who = who[back]
            gap = 1 + np.floor(29 * rng.random(back.sum()) ** 1.6).astype(np.int64)
            r_adm = adm[back] + los[back] + gap
            r_los = m.d["ip_los"].numbers(rng, len(r_who))
            ok = r_adm <= alive_end[r_who]
            who = np.concatenate([who, r_who[ok]])
            adm = np.concatenate([adm, r_adm[ok]])
            los = np.concatenate([los, r_los[ok]])
            prior = np.bincount(who, minlength=p.n).astype(float)
            who_l.append(who), adm_l.append(adm), los_l.append(los)
            t_l.append(np.full(len(who), t))
        who, adm, los, t_of = (np.concatenate(x) for x in (who_l, adm_l, los_l, t_l))
        order = _order(who, adm)
        who, adm, los, t_of = who[order], adm[order], los[order], t_of[order]
        # discharge no later than death or the end of 2010
        dis = np.minimum(adm + los, np.maximum(alive_end[who], adm))
        dis = np.minimum(dis, LAST_DAY)
        dis = _into_2008(adm, dis)
        los = dis - adm
        k = len(who)
        bucket = np.digitize(los, [3, 6, 11])
        u = _sigmoid(0.8 * p.frailty[who] + rng.standard_normal(k))
        pay = np.zeros(k)
        for i, label in enumerate(["0-2", "3-5", "6-10", "11+"]):
            sel = bucket == i
            pay[sel] = from_quantiles(ip["payment_quantiles_by_los"][label], u[sel])
        pay = np.where(np.abs(pay) >= 1000, np.round(pay, -3), np.round(pay, -1)).astype(np.int64)
        claim_year = np.clip(
            np.searchsorted([YEAR_START[2009], YEAR_START[2010]], adm, side="right"), 0, 2
        )
        ded = np.empty(k, dtype=object)
        for t, y in enumerate(YEARS):
            sel = claim_year == t
            ded[sel] = m.ip_deductible[y].draw(rng, int(sel.sum()))
        d = m.d
        prim = d["ip_prim"].draw(rng, k)
        coins = d["ip_coins"].draw(rng, k)
        dx_idx, dx_empty = _codes_block(rng, d["ip_dx"], d["ip_n_dx"].numbers(rng, k), 10)
        _inject_signal(m, p, who, t_of, dx_idx, dx_empty, "ip_dx", rng)
        px_idx, px_empty = _codes_block(rng, d["ip_px"], d["ip_n_px"].numbers(rng, k), 6)
        npi_n = len(self.pools.npi)
        present = ip["npi_present"]
        provider = self.state_of[p.state_county[who]] * self.pools.per_state + rng.integers(
            0, self.pools.per_state, k
        )
        util = np.where(rng.random(k) < ip["utilization_equals_los"], los, 0)
        cols = {
            "DESYNPUF_ID": pa.array(p.ids).take(pa.array(who)),
            "CLM_ID": _integer(self.ids["ip"].take(k)),
            "SEGMENT": _integer(np.ones(k)),
            "CLM_FROM_DT": _date(adm),
            "CLM_THRU_DT": _date(dis),
            "PRVDR_NUM": _take(self.pools.providers, provider),
            "CLM_PMT_AMT": _money(pay),
            "NCH_PRMRY_PYR_CLM_PD_AMT": pa.array(prim, pa.string()),
            "AT_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["AT_PHYSN_NPI"]),
            "OP_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["OP_PHYSN_NPI"]),
            "OT_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["OT_PHYSN_NPI"]),
            "CLM_ADMSN_DT": _date(adm),
            "ADMTNG_ICD9_DGNS_CD": _take(m.pool("ip_adm_dx"), d["ip_adm_dx"].index(rng, k)),
            "CLM_PASS_THRU_PER_DIEM_AMT": pa.array(d["ip_per_diem"].draw(rng, k), pa.string()),
            "NCH_BENE_IP_DDCTBL_AMT": pa.array(ded, pa.string()),
            "NCH_BENE_PTA_COINSRNC_LBLTY_AM": pa.array(coins, pa.string()),
            "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": pa.array(d["ip_blood"].draw(rng, k), pa.string()),
            "CLM_UTLZTN_DAY_CNT": _integer(util),
            "NCH_BENE_DSCHRG_DT": _date(dis),
            "CLM_DRG_CD": _take(m.pool("ip_drg"), d["ip_drg"].index(rng, k)),
        }  # fmt: skip
        for j in range(10):
            cols[f"ICD9_DGNS_CD_{j + 1}"] = _take(m.pool("ip_dx"), dx_idx[:, j], dx_empty[:, j])
        for j in range(6):
            cols[f"ICD9_PRCDR_CD_{j + 1}"] = _take(m.pool("ip_px"), px_idx[:, j], px_empty[:, j])
        table = _table(self.contracts["inpatient_claims"], k, cols)
        table = self._with_segment2(table, rng, ip["segment2_rate"], "ip_seg2_drg")
        money = {
            "pay": pay,
            "res": np.array([float(x) for x in ded]) + np.array([float(x) for x in coins]),
            "prim": np.array([float(x) for x in prim]),
        }
        return table, {"who": who, "year": claim_year, **money}

    def _with_segment2(self, table: pa.Table, rng, rate: float, drg_key: str | None) -> pa.Table:
        """A few claims continue on a SEGMENT 2 row: same claim, dates and codes left empty."""
        k = table.num_rows
        pick = np.flatnonzero(rng.random(k) < rate)
        if len(pick) == 0:
            return table
        keep = {"DESYNPUF_ID", "CLM_ID", "PRVDR_NUM", "CLM_ADMSN_DT", "NCH_BENE_DSCHRG_DT"}
        seg = {}
        for name in table.column_names:
            col = table.column(name).take(pa.array(pick))
            if name in keep:
                seg[name] = col
            elif name == "SEGMENT":
                seg[name] = pa.array(np.full(len(pick), 2, dtype=np.int64))
            elif name == "CLM_DRG_CD" and drg_key:
                seg[name] = _take(self.m.pool(drg_key), self.m.d[drg_key].index(rng, len(pick)))
            elif name.endswith(("_AMT", "_AM")):
                seg[name] = col
            else:
                seg[name] = pa.nulls(len(pick), col.type)
        seg_table = pa.table(seg, schema=table.schema)
        # place each SEGMENT 2 row right after its first segment
        both = pa.concat_tables([table, seg_table])
        pos = np.concatenate([np.arange(k) * 2, pick * 2 + 1])
        return both.take(pa.array(np.argsort(pos, kind="stable")))

    def outpatient(self, p: People, rng) -> tuple[pa.Table, dict]:
        m, cal = self.m, self.m.calib
        op = cal["outpatient"]
        d = m.d
        who_l, day_l, t_l = [], [], []
        for t in range(3):
            listed, start, end, frac = _year_window(p, t)
            w = np.exp(0.6 * (p.cond[t] @ m.op_log_rr) + 0.4 * p.frailty)
            n = _counts(rng, w, frac, op["claims_per_bene_year"], 0.8)
            who, day = _spread(rng, n, start, end)
            if t == 0:
                early = rng.random(len(who)) < op["from_2007_rate"]
                day[early] = YEAR_START[2008] - rng.integers(1, 60, early.sum())
            who_l.append(who), day_l.append(day), t_l.append(np.full(len(who), t))
        who, day, t_of = (np.concatenate(x) for x in (who_l, day_l, t_l))
        order = _order(who, day)
        who, day, t_of = who[order], day[order], t_of[order]
        k = len(who)
        thru = np.minimum(day + d["op_span"].numbers(rng, k), np.maximum(p.alive_end()[who], day))
        thru = _into_2008(day, thru)
        u = _sigmoid(0.6 * p.frailty[who] + rng.standard_normal(k))
        pay = np.round(from_quantiles(op["payment_quantiles"], u), -1).astype(np.int64)
        prim, ded, coins = (d[key].draw(rng, k) for key in ("op_prim", "op_ded", "op_coins"))
        dx_idx, dx_empty = _codes_block(rng, d["op_dx"], d["op_n_dx"].numbers(rng, k), 10)
        _inject_signal(m, p, who, t_of, dx_idx, dx_empty, "op_dx", rng)
        hc_idx, hc_empty = _codes_block(rng, d["op_hcpcs"], d["op_n_hcpcs"].numbers(rng, k), 45)
        npi_n = len(self.pools.npi)
        present = op["npi_present"]
        provider = self.state_of[p.state_county[who]] * self.pools.per_state + rng.integers(
            0, self.pools.per_state, k
        )
        cols = {
            "DESYNPUF_ID": pa.array(p.ids).take(pa.array(who)),
            "CLM_ID": _integer(self.ids["op"].take(k)),
            "SEGMENT": _integer(np.ones(k)),
            "CLM_FROM_DT": _date(day),
            "CLM_THRU_DT": _date(thru),
            "PRVDR_NUM": _take(self.pools.providers, provider),
            "CLM_PMT_AMT": _money(pay),
            "NCH_PRMRY_PYR_CLM_PD_AMT": pa.array(prim, pa.string()),
            "AT_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["AT_PHYSN_NPI"]),
            "OP_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["OP_PHYSN_NPI"]),
            "OT_PHYSN_NPI": _take(self.pools.npi, rng.integers(0, npi_n, k),
                                  rng.random(k) >= present["OT_PHYSN_NPI"]),
            "NCH_BENE_BLOOD_DDCTBL_LBLTY_AM": pa.array(d["op_blood"].draw(rng, k), pa.string()),
            "NCH_BENE_PTB_DDCTBL_AMT": pa.array(ded, pa.string()),
            "NCH_BENE_PTB_COINSRNC_AMT": pa.array(coins, pa.string()),
            "ADMTNG_ICD9_DGNS_CD": _take(m.pool("op_dx"), d["op_dx"].index(rng, k),
                                         rng.random(k) >= op["admitting_dx_present"]),
            "ICD9_PRCDR_CD_1": _take(m.pool("op_px"), d["op_px"].index(rng, k),
                                     rng.random(k) >= max(op["px_present"], 0.0005)),
        }  # fmt: skip
        for j in range(10):
            cols[f"ICD9_DGNS_CD_{j + 1}"] = _take(m.pool("op_dx"), dx_idx[:, j], dx_empty[:, j])
        for j in range(45):
            cols[f"HCPCS_CD_{j + 1}"] = _take(m.pool("op_hcpcs"), hc_idx[:, j], hc_empty[:, j])
        table = _table(self.contracts["outpatient_claims"], k, cols)
        table = self._with_segment2(table, rng, op["segment2_rate"], None)
        claim_year = np.clip(
            np.searchsorted([YEAR_START[2009], YEAR_START[2010]], day, side="right"), 0, 2
        )
        res = ded.astype(float) + coins.astype(float)
        return table, {"who": who, "year": claim_year, "pay": pay, "res": res,
                       "prim": prim.astype(float)}  # fmt: skip

    def carrier(self, p: People, rng) -> tuple[pa.Table, np.ndarray, dict]:
        m, cal = self.m, self.m.calib
        car = cal["carrier"]
        d = m.d
        who_l, day_l, t_l = [], [], []
        for t in range(3):
            listed, start, end, frac = _year_window(p, t)
            w = np.exp(0.4 * (p.cond[t] @ m.op_log_rr) + 0.3 * p.frailty)
            n = _counts(rng, w, frac, car["claims_per_bene_year"], 1.2)
            who, day = _spread(rng, n, start, end)
            who_l.append(who), day_l.append(day), t_l.append(np.full(len(who), t))
        who, day, t_of = (np.concatenate(x) for x in (who_l, day_l, t_l))
        order = _order(who, day)
        who, day, t_of = who[order], day[order], t_of[order]
        k = len(who)
        lines = d["car_lines"].numbers(rng, k)
        dx_idx, dx_empty = _codes_block(
            rng, d["op_dx"], np.minimum(d["op_n_dx"].numbers(rng, k), 8), 8
        )
        _inject_signal(m, p, who, t_of, dx_idx, dx_empty, "op_dx", rng)
        # line items: drawn only for the lines each claim has, laid out (line, claim)
        used = np.arange(13)[:, None] < lines[None, :]
        line_no, claim = np.nonzero(used)
        n_used = len(claim)
        npi_n = len(self.pools.npi)
        # one performing physician per claim mostly, sometimes another on a line
        doc = rng.integers(0, npi_n, k)[claim]
        other = rng.random(n_used) < 0.15
        doc[other] = rng.integers(0, npi_n, other.sum())
        tens = self.line_pay.numbers(rng, n_used) // 10  # payments in tens of dollars
        coins = (tens + 2) // 4
        ded = np.where(rng.random(n_used) < 0.05, tens // 2, 0)
        allowed = tens + coins + ded
        prim = np.where(rng.random(n_used) < 0.02, allowed, 0)
        n_dx = np.maximum((~dx_empty).sum(axis=1), 1)
        line_dx = dx_idx[claim, np.floor(rng.random(n_used) * n_dx[claim]).astype(np.int64)]

        def lay(values: np.ndarray, fill: int) -> np.ndarray:
            out = np.full((13, k), fill, dtype=np.int32)
            out[line_no, claim] = values
            return out

        npi, tax = _with_null(self.pools.npi), _with_null(self.pools.tax)
        hc_pool, pr_pool = _with_null(m.pool("op_hcpcs")), _with_null(m.pool("car_prcsg"))
        dx_pool = _with_null(m.pool("op_dx"))
        blocks = {
            "PRF_PHYSN_NPI": (npi, lay(doc, npi_n)),
            "TAX_NUM": (tax, lay(doc, npi_n)),
            "HCPCS_CD": (hc_pool, lay(d["op_hcpcs"].index(rng, n_used), len(hc_pool) - 1)),
            "LINE_NCH_PMT_AMT": (_MONEY_TENS, lay(tens, 0)),
            "LINE_BENE_PTB_DDCTBL_AMT": (_MONEY_TENS, lay(ded, 0)),
            "LINE_BENE_PRMRY_PYR_PD_AMT": (_MONEY_TENS, lay(prim, 0)),
            "LINE_COINSRNC_AMT": (_MONEY_TENS, lay(coins, 0)),
            "LINE_ALOWD_CHRG_AMT": (_MONEY_TENS, lay(allowed, 0)),
            "LINE_PRCSG_IND_CD": (
                pr_pool,
                lay(d["car_prcsg"].index(rng, n_used), len(pr_pool) - 1),
            ),
            "LINE_ICD9_DGNS_CD": (dx_pool, lay(line_dx, len(dx_pool) - 1)),
        }
        cols = {
            "DESYNPUF_ID": pa.array(p.ids).take(pa.array(who)),
            "CLM_ID": _integer(self.ids["car"].take(k)),
            "CLM_FROM_DT": _date(day),
            "CLM_THRU_DT": _date(day),
        }
        for j in range(8):
            cols[f"ICD9_DGNS_CD_{j + 1}"] = _take(m.pool("op_dx"), dx_idx[:, j], dx_empty[:, j])
        for name, (pool, idx) in blocks.items():
            for j in range(13):
                cols[f"{name}_{j + 1}"] = pc.take(pool, pa.array(idx[j]))
        table = _table(self.contracts["carrier_claims"], k, cols)
        claim_year = np.clip(
            np.searchsorted([YEAR_START[2009], YEAR_START[2010]], day, side="right"), 0, 2
        )
        money = {
            key: 10 * np.bincount(claim, weights=v, minlength=k)
            for key, v in (("pay", tens), ("res", ded + coins), ("prim", prim))
        }
        return table, who, {"who": who, "year": claim_year, **money}

    def pde(self, p: People, rng) -> pa.Table:
        m, cal = self.m, self.m.calib
        pde = cal["pde"]
        who_l, day_l = [], []
        for t in range(3):
            listed, start, end, frac = _year_window(p, t)
            plan = m.coverage[p.coverage[t], 3] / 12.0
            w = np.exp(0.15 * p.cond[t].sum(axis=1) + 0.2 * p.frailty) * plan
            n = _counts(rng, w, frac, pde["events_per_bene_year"], 2.0)
            who, day = _spread(rng, n, start, end)
            who_l.append(who), day_l.append(day)
        who, day = np.concatenate(who_l), np.concatenate(day_l)
        order = _order(who, day)
        who, day = who[order], day[order]
        k = len(who)
        u = rng.random(k)
        cost = np.round(from_quantiles(pde["cost_quantiles"], u), -1).astype(np.int64)
        share = np.asarray(pde["patient_share"])[rng.integers(0, len(pde["patient_share"]), k)]
        cols = {
            "DESYNPUF_ID": pa.array(p.ids).take(pa.array(who)),
            "PDE_ID": _integer(self.ids["pde"].take(k)),
            "SRVC_DT": _date(day),
            "PROD_SRVC_ID": _take(self.pools.ndc, self.pools.ndc_weights.index(rng, k)),
            "QTY_DSPNSD_NUM": _integer(self.m.d["pde_qty"].numbers(rng, k)),
            "DAYS_SUPLY_NUM": _integer(self.m.d["pde_days"].numbers(rng, k)),
            # the real PDE file writes whole-dollar amounts without cents
            "PTNT_PAY_AMT": _integer(np.round(cost * share, -1)),
            "TOT_RX_CST_AMT": _integer(cost),
        }
        return _table(self.contracts["prescription_drug_events"], k, cols)

    # -- beneficiary files --------------------------------------------------------------
    def beneficiaries(self, p: People, t: int, spend: dict[str, dict]) -> pa.Table:
        y = YEARS[t]
        rows = np.flatnonzero(p.in_file(y))
        cov = self.m.coverage[p.coverage[t, rows]]
        cols = {
            "DESYNPUF_ID": pa.array(p.ids).take(pa.array(rows)),
            "BENE_BIRTH_DT": _integer(p.birth[rows]),
            "BENE_DEATH_DT": pa.array(
                YMD[np.clip(p.death_day[rows], 0, len(YMD) - 1)], mask=p.death_year[rows] != y
            ),
            "BENE_SEX_IDENT_CD": _take(self.m.pool("sex"), p.sex[rows]),
            "BENE_RACE_CD": _take(self.m.pool("race"), p.race[rows]),
            "BENE_ESRD_IND": pa.array(np.where(p.esrd[t, rows], "Y", "0")),
            "SP_STATE_CODE": _take(self.state_text, p.state_county[rows]),
            "BENE_COUNTY_CD": _take(self.county_text, p.state_county[rows]),
            "BENE_HI_CVRAGE_TOT_MONS": _integer(cov[:, 0]),
            "BENE_SMI_CVRAGE_TOT_MONS": _integer(cov[:, 1]),
            "BENE_HMO_CVRAGE_TOT_MONS": _integer(cov[:, 2]),
            "PLAN_CVRG_MOS_NUM": pa.array([f"{v:02d}" for v in cov[:, 3]]),
        }
        for j, name in enumerate(self.m.conditions):
            cols[name] = pa.array(np.where(p.cond[t, rows, j], "1", "2"))
        for part, s in spend.items():
            sel = s["year"] == t
            for key, col in (("pay", "MEDREIMB"), ("res", "BENRES"), ("prim", "PPPYMT")):
                total = np.bincount(s["who"][sel], weights=s[key][sel], minlength=p.n)
                cols[f"{col}_{part}"] = _money(np.round(total[rows]))
        return _table(self.contracts["beneficiary_summary"], len(rows), cols)

    def chunk(self, index: int, ids: np.ndarray, deaths: list[int]) -> dict[str, pa.Table]:
        rng = self._rng(index)
        self.ids = {
            k: ClaimIds(prefix, self.sample, index)
            for k, prefix in (("ip", 196), ("op", 542), ("car", 887), ("pde", 834))
        }
        p = draw_people(self.m, rng, ids, deaths)
        ip, ip_spend = self.inpatient(p, rng)
        op, op_spend = self.outpatient(p, rng)
        car, car_who, car_spend = self.carrier(p, rng)
        pde = self.pde(p, rng)
        spend = {"IP": ip_spend, "OP": op_spend, "CAR": car_spend}
        # carrier claims are split over two files by beneficiary ID (A: first half of the ID
        # space); rows are sorted by ID, so A is a prefix of the chunk's carrier rows
        n_a = int(np.searchsorted(car_who, np.searchsorted(p.ids, "8")))
        out = {f"bene_{y}": self.beneficiaries(p, t, spend) for t, y in enumerate(YEARS)}
        out.update(
            inpatient=ip,
            outpatient=op,
            carrier_a=car.slice(0, n_a),
            carrier_b=car.slice(n_a),
            pde=pde,
        )
        return out


def plan_sample(calib: dict, scale: float) -> tuple[int, list[int]]:
    """Beneficiaries in 2008 and deaths per year for a scale (1.0 = CMS's full sample)."""
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale {scale} out of range: use {MIN_SCALE} to {MAX_SCALE}")
    full = calib["full_sample"]["beneficiary"]
    n = [max(1, round(full[str(y)] * scale)) for y in YEARS]
    n[1], n[2] = min(n[1], n[0]), min(n[2], n[1])
    death_2010 = round(n[2] * calib["beneficiary"]["death_rate"]["2010"])
    return n[0], [n[0] - n[1], n[1] - n[2], death_2010]


def _chunk_ids(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n distinct sorted IDs in [lo, hi) of the 64-bit ID space."""
    ids = np.unique(rng.integers(lo, hi, n, dtype=np.uint64, endpoint=False))
    while len(ids) < n:
        extra = rng.integers(lo, hi, n - len(ids), dtype=np.uint64, endpoint=False)
        ids = np.unique(np.concatenate([ids, extra]))
    return ids


_WORKER: dict = {}


def _chunk_bytes(job: tuple) -> dict[str, tuple[int, bytes]]:
    """One chunk's rows for the eight files (runs in a worker process)."""
    seed, sample, c, n_benes, lo, hi, deaths = job
    writer = _WORKER.get((seed, sample))
    if writer is None:
        _WORKER.clear()
        writer = _WORKER[(seed, sample)] = SampleWriter(
            Model(_WORKER_ARGS["calib"]), _WORKER_ARGS["contracts"], seed, sample
        )
    ids = _chunk_ids(np.random.default_rng([seed, sample, c, 7]), n_benes, lo, hi)
    tables = writer.chunk(c, ids, deaths)
    return {key: (t.num_rows, rows_bytes(t)) for key, t in tables.items()}


_WORKER_ARGS: dict = {}


def _init_worker(calib: dict, contracts: dict) -> None:
    _WORKER_ARGS.update(calib=calib, contracts=contracts)


def _jobs(calib: dict, scale: float, seed: int, sample: int) -> list[tuple]:
    n, deaths = plan_sample(calib, scale)
    n_chunks = -(-n // CHUNK_BENES)
    sizes = _allocate(n, np.ones(n_chunks))
    chunk_deaths = np.stack([_allocate(d, sizes.astype(float)) for d in deaths], axis=1)
    bounds = [c * 2**64 // n_chunks for c in range(n_chunks + 1)]
    return [
        (seed, sample, c, int(sizes[c]), bounds[c], min(bounds[c + 1], 2**64 - 1),
         [int(x) for x in chunk_deaths[c]])
        for c in range(n_chunks)
    ]  # fmt: skip


def _run_jobs(jobs: list[tuple], calib: dict, contracts: dict, workers: int):
    """Chunk results in order; with workers > 1, a bounded number in flight at once."""
    _init_worker(calib, contracts)
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _chunk_bytes(job)
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, ctx, _init_worker, (calib, contracts)) as pool:
        pending = []
        for job in jobs:
            pending.append(pool.submit(_chunk_bytes, job))
            if len(pending) > workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def generate_sample(
    out_dir: Path | str,
    scale: float,
    seed: int,
    sample: int,
    as_zip: bool = False,
    calib: dict | None = None,
    contracts: dict[str, SourceContract] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, dict]:
    """Write the eight files of one sample; returns {file name: {"rows": n, "path": ...}}."""
    calib = calib or load_calibration()
    contracts = contracts or load_settings().sources
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(calib, scale, seed, sample)
    paths = {k.key: out_dir / k.file_name(sample) for k in FILE_KINDS}
    rows = dict.fromkeys(paths, 0)
    handles = {key: path.open("wb") for key, path in paths.items()}
    try:
        for key, fh in handles.items():
            fh.write(header_bytes(contracts[KINDS[key].contract]))
        for done, chunk in enumerate(_run_jobs(jobs, calib, contracts, workers), start=1):
            for key, (n_rows, data) in chunk.items():
                handles[key].write(data)
                rows[key] += n_rows
            if on_progress:
                on_progress(done, len(jobs))
    finally:
        for fh in handles.values():
            fh.close()
    result = {}
    for key, path in paths.items():
        if as_zip:
            zpath = path.with_suffix(".zip")
            zip_file(path, zpath)
            path.unlink()
            path = zpath
        result[path.name] = {"kind": key, "sample": sample, "rows": rows[key], "path": str(path)}
    return result


def generate(
    out_dir: Path | str,
    scale: float = 0.01,
    seed: int = 0,
    samples: int = 1,
    as_zip: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, dict]:
    """Samples 1..`samples`, each a full set of eight files in `out_dir`."""
    calib = load_calibration()
    contracts = load_settings().sources
    result = {}
    for sample in range(1, samples + 1):
        progress = None
        if on_progress:

            def progress(done, total, s=sample):
                on_progress(s, done, total)

        result.update(
            generate_sample(
                out_dir, scale, seed, sample, as_zip, calib, contracts, progress, workers
            )
        )
    return result
