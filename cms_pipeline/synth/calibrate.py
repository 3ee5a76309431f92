"""Derive `config/synth/calibration.json` from the real DE-SynPUF rows in `data/synpuf`.

Run: `python -m cms_pipeline.synth.calibrate [--data DIR] [--out FILE]`.

Everything the generator draws from comes from here: demographics, coverage, chronic
condition profiles (their co-occurrence is kept by sampling whole real profiles) and
year-to-year transitions, deaths, claims per beneficiary-year and how they rise with
conditions, lengths of stay, payments, and code frequencies. Carrier and PDE have no
real volume here, so their section holds plausible assumptions, flagged `"assumed"`.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from cms_pipeline.config import PROJECT_ROOT
from cms_pipeline.synth.calibration import CALIBRATION_FILE, Calibration

DATA_DIR = PROJECT_ROOT / "data" / "synpuf"
OUT_FILE = CALIBRATION_FILE
YEARS = (2008, 2009, 2010)
CONDITIONS = [
    "SP_ALZHDMTA", "SP_CHF", "SP_CHRNKIDN", "SP_CNCR", "SP_COPD", "SP_DEPRESSN",
    "SP_DIABETES", "SP_ISCHMCHT", "SP_OSTEOPRS", "SP_RA_OA", "SP_STRKETIA",
]  # fmt: skip
# CMS's published size of one full sample (DE-SynPUF Sample 1): what scale 1.0 means.
FULL_SAMPLE = {
    "beneficiary": {"2008": 116352, "2009": 114538, "2010": 112754},
    "inpatient": 66773,
    "outpatient": 790790,
    "carrier": 4741335,
    "pde": 5552421,
}
TOP_CODES = 400


def _read_csv(path: Path) -> pd.DataFrame:
    """A real CMS file (CSV, or a ZIP holding one CSV) as text columns, empty = NaN."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            raw = zf.read(zf.namelist()[0])
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_values=[""])
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def _find(data_dir: Path, sample: str, stem: str) -> Path | None:
    for ext in ("csv", "zip"):
        path = data_dir / f"sample_{sample}" / f"{stem}_Sample_{sample}.{ext}"
        if path.exists():
            return path
    return None


def _dist(values, top: int | None = None, digits: int = 6) -> dict:
    """Empirical distribution as {"values": [...], "p": [...]}, most frequent first."""
    counts = Counter(v for v in values if isinstance(v, str) or not pd.isna(v))
    items = counts.most_common(top)
    total = sum(c for _, c in items)
    return {
        "values": [v if isinstance(v, str) else int(v) for v, _ in items],
        "p": [round(c / total, digits) for _, c in items],
    }


def _quantiles(values, n: int = 101) -> list[float]:
    arr = np.asarray(values, dtype=float)
    return [round(float(q), 2) for q in np.quantile(arr, np.linspace(0, 1, n))]


def _codes(df: pd.DataFrame, prefix: str, n: int) -> tuple[list, list]:
    cols = [f"{prefix}{i}" for i in range(1, n + 1)]
    block = df[cols]
    flat = block.to_numpy().ravel()
    per_claim = block.notna().sum(axis=1).to_numpy()
    return [v for v in flat if isinstance(v, str)], per_claim.tolist()


def _days(a: pd.Series, b: pd.Series) -> np.ndarray:
    return (pd.to_datetime(b, format="%Y%m%d") - pd.to_datetime(a, format="%Y%m%d")).dt.days


def load_real(data_dir: Path) -> dict[str, pd.DataFrame]:
    """Beneficiary-years, inpatient and outpatient rows of samples 1 and 2 (ID-disjoint)."""
    benes, ips, ops = [], [], []
    for sample in ("1", "2"):
        for year in YEARS:
            path = _find(data_dir, sample, f"DE1_0_{year}_Beneficiary_Summary_File")
            if path is not None:
                benes.append(_read_csv(path).assign(year=year, sample=sample))
        ip = _find(data_dir, sample, "DE1_0_2008_to_2010_Inpatient_Claims")
        if ip is not None:
            ips.append(_read_csv(ip).assign(sample=sample))
        op = _find(data_dir, sample, "DE1_0_2008_to_2010_Outpatient_Claims")
        if op is not None:
            ops.append(_read_csv(op).assign(sample=sample))
    if not benes or not ips:
        raise SystemExit(f"{data_dir}: no beneficiary or inpatient files of samples 1-2 found")
    return {
        "bene": pd.concat(benes, ignore_index=True),
        "ip": pd.concat(ips, ignore_index=True),
        "op": pd.concat(ops, ignore_index=True) if ops else pd.DataFrame(),
    }


def beneficiary_stats(bene: pd.DataFrame) -> dict:
    b08 = bene[bene.year == 2008]
    cond = (bene[CONDITIONS] == "1").to_numpy()
    profile = (cond * (1 << np.arange(len(CONDITIONS)))).sum(axis=1)
    bene = bene.assign(_profile=profile)
    coverage = (
        bene.BENE_HI_CVRAGE_TOT_MONS + "|" + bene.BENE_SMI_CVRAGE_TOT_MONS + "|"
        + bene.BENE_HMO_CVRAGE_TOT_MONS + "|" + bene.PLAN_CVRG_MOS_NUM
    )  # fmt: skip
    bene = bene.assign(_coverage=coverage)
    # year-to-year: how often a flag stays set / appears, and coverage stays the same
    pairs = bene[bene.year == 2008].merge(
        bene[bene.year == 2009], on=["DESYNPUF_ID", "sample"], suffixes=("", "_next")
    )
    pairs = pd.concat(
        [
            pairs,
            bene[bene.year == 2009].merge(
                bene[bene.year == 2010], on=["DESYNPUF_ID", "sample"], suffixes=("", "_next")
            ),
        ]
    )
    keep, onset = [], []
    for c in CONDITIONS:
        now, nxt = pairs[c] == "1", pairs[f"{c}_next"] == "1"
        keep.append(round(float(nxt[now].mean()), 4))
        onset.append(round(float(nxt[~now].mean()), 4))
    esrd_now, esrd_next = pairs.BENE_ESRD_IND == "Y", pairs.BENE_ESRD_IND_next == "Y"
    death_rate = {}
    for year in YEARS:
        rows = bene[bene.year == year]
        death_rate[str(year)] = round(float(rows.BENE_DEATH_DT.notna().mean()), 5)
    deaths = bene[bene.BENE_DEATH_DT.notna()]
    dead_profiles = (deaths[CONDITIONS] == "1").sum(axis=1)
    all_profiles = (bene[CONDITIONS] == "1").sum(axis=1)
    return {
        "birth_year": _dist(b08.BENE_BIRTH_DT.str[:4].astype(int)),
        "birth_month": _dist(b08.BENE_BIRTH_DT.str[4:6]),
        "sex": _dist(b08.BENE_SEX_IDENT_CD),
        "race": _dist(b08.BENE_RACE_CD),
        "state_county": _dist(b08.SP_STATE_CODE + "|" + b08.BENE_COUNTY_CD),
        "coverage": _dist(bene._coverage, top=300),
        "coverage_keep": round(float((pairs._coverage == pairs._coverage_next).mean()), 4),
        "esrd": {
            str(y): round(float((bene[bene.year == y].BENE_ESRD_IND == "Y").mean()), 4)
            for y in YEARS
        },  # fmt: skip
        "esrd_keep": round(float(esrd_next[esrd_now].mean()), 4),
        "esrd_onset": round(float(esrd_next[~esrd_now].mean()), 4),
        "conditions": {
            "names": CONDITIONS,
            "profiles_2008": _dist(bene[bene.year == 2008]._profile),
            "keep": keep,
            "onset": onset,
            "prevalence": {
                str(y): [
                    round(float((bene[bene.year == y][c] == "1").mean()), 4) for c in CONDITIONS
                ]
                for y in YEARS
            },  # fmt: skip
        },
        "death_rate": death_rate,
        "death_month": _dist(deaths.BENE_DEATH_DT.str[4:6]),
        "mean_conditions_dead": round(float(dead_profiles.mean()), 3),
        "mean_conditions_all": round(float(all_profiles.mean()), 3),
    }


def _per_bene_year(claims: pd.DataFrame, bene: pd.DataFrame, year_col: str) -> pd.DataFrame:
    """Claims (first segments) counted per beneficiary-year, with the year's condition flags."""
    first = claims[claims.SEGMENT == "1"]
    years = first[year_col].str[:4].astype(int).clip(lower=2008)
    counts = first.assign(year=years).groupby(["DESYNPUF_ID", "year"]).size().rename("n")
    out = bene.set_index(["DESYNPUF_ID", "year"]).join(counts).fillna({"n": 0})
    return out.reset_index()


def _rate_ratios(per: pd.DataFrame, names: list[str]) -> dict:
    base = per.n.mean()
    return {c: round(float(per[per[c] == "1"].n.mean() / base), 3) for c in names}


def readmission_rate(ip: pd.DataFrame) -> float:
    """Share of inpatient stays followed by another admission within 30 days of discharge."""
    first = ip[ip.SEGMENT == "1"].dropna(subset=["CLM_ADMSN_DT", "NCH_BENE_DSCHRG_DT"])
    first = first.assign(
        adm=pd.to_datetime(first.CLM_ADMSN_DT, format="%Y%m%d"),
        dis=pd.to_datetime(first.NCH_BENE_DSCHRG_DT, format="%Y%m%d"),
    ).sort_values(["DESYNPUF_ID", "adm"])
    nxt = first.groupby("DESYNPUF_ID").adm.shift(-1)
    gap = (nxt - first.dis).dt.days
    return round(float(((gap >= 0) & (gap <= 30)).mean()), 4)


def _amounts(series: pd.Series, top: int = 30) -> dict:
    return _dist(series.dropna().astype(float).round(2).map(lambda v: f"{v:.2f}"), top=top)


def inpatient_stats(ip: pd.DataFrame, bene: pd.DataFrame) -> dict:
    first = ip[ip.SEGMENT == "1"]
    los = _days(first.CLM_FROM_DT, first.CLM_THRU_DT).dropna().astype(int).clip(0, 60)
    pay = first.CLM_PMT_AMT.astype(float)
    bucket = np.digitize(los, [3, 6, 11])
    per = _per_bene_year(ip, bene, "CLM_FROM_DT")
    dx, n_dx = _codes(first, "ICD9_DGNS_CD_", 10)
    px, n_px = _codes(first, "ICD9_PRCDR_CD_", 6)
    from_year = first.CLM_FROM_DT.str[:4]
    ded = {str(y): _amounts(first[from_year == str(y)].NCH_BENE_IP_DDCTBL_AMT, 5) for y in YEARS}
    return {
        "claims_per_bene_year": round(float(per.n.mean()), 5),
        "count_dist": _dist(per.n.astype(int).clip(upper=8)),
        "rate_ratio": _rate_ratios(per, CONDITIONS),
        "readmit_30d_rate": readmission_rate(ip),
        "los": _dist(los),
        "utilization_equals_los": round(
            float(
                (
                    first.CLM_UTLZTN_DAY_CNT.astype(float)
                    == _days(first.CLM_FROM_DT, first.CLM_THRU_DT)
                ).mean()
            ),
            4,
        ),  # fmt: skip
        "payment_quantiles_by_los": {
            label: _quantiles(pay.to_numpy()[bucket == i])
            for i, label in enumerate(["0-2", "3-5", "6-10", "11+"])
        },
        "deductible_by_year": ded,
        "primary_payer_amt": _amounts(first.NCH_PRMRY_PYR_CLM_PD_AMT),
        "per_diem_amt": _amounts(first.CLM_PASS_THRU_PER_DIEM_AMT),
        "coinsurance_amt": _amounts(first.NCH_BENE_PTA_COINSRNC_LBLTY_AM),
        "blood_amt": _amounts(first.NCH_BENE_BLOOD_DDCTBL_LBLTY_AM),
        "dx": _dist(dx, top=TOP_CODES),
        "n_dx": _dist(n_dx),
        "admitting_dx": _dist(first.ADMTNG_ICD9_DGNS_CD.dropna(), top=TOP_CODES),
        "px": _dist(px, top=TOP_CODES),
        "n_px": _dist(n_px),
        "drg": _dist(first.CLM_DRG_CD.dropna(), top=TOP_CODES),
        "segment2_rate": round(float((ip.SEGMENT == "2").sum() / len(first)), 5),
        "segment2_drg": _dist(ip[ip.SEGMENT == "2"].CLM_DRG_CD.dropna()),
        "from_2007_rate": round(float((first.CLM_FROM_DT.str[:4] == "2007").mean()), 5),
        "npi_present": {
            c: round(float(first[c].notna().mean()), 4)
            for c in ["AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI"]
        },  # fmt: skip
    }


def outpatient_stats(op: pd.DataFrame, ip_stats: dict) -> dict:
    """Outpatient rows here are the first rows of a full sample's file: few of their
    beneficiaries are in the beneficiary rows, so the yearly rate comes from CMS's
    published file size and the rate ratios are assumed (square roots of inpatient's)."""
    first = op[op.SEGMENT == "1"]
    # claims over 2008-2010 per beneficiary who has any (the last one may be cut off)
    per_bene = first[first.DESYNPUF_ID < first.DESYNPUF_ID.max()].groupby("DESYNPUF_ID").size()
    bene_years = sum(FULL_SAMPLE["beneficiary"].values())
    dx, n_dx = _codes(first, "ICD9_DGNS_CD_", 10)
    px, n_px = _codes(first, "ICD9_PRCDR_CD_", 6)
    hcpcs, n_hcpcs = _codes(first, "HCPCS_CD_", 45)
    span = _days(first.CLM_FROM_DT, first.CLM_THRU_DT).dropna().astype(int).clip(0, 31)
    return {
        "claims_per_bene_year": round(FULL_SAMPLE["outpatient"] / bene_years, 5),
        "claims_per_bene_with_any": _dist(per_bene.clip(upper=60)),
        "rate_ratio": {c: round(float(np.sqrt(r)), 3) for c, r in ip_stats["rate_ratio"].items()},
        "rate_ratio_assumed": True,
        "span_days": _dist(span),
        "payment_quantiles": _quantiles(first.CLM_PMT_AMT.astype(float)),
        "primary_payer_amt": _amounts(first.NCH_PRMRY_PYR_CLM_PD_AMT),
        "blood_amt": _amounts(first.NCH_BENE_BLOOD_DDCTBL_LBLTY_AM),
        "deductible_amt": _amounts(first.NCH_BENE_PTB_DDCTBL_AMT),
        "coinsurance_amt": _amounts(first.NCH_BENE_PTB_COINSRNC_AMT),
        "dx": _dist(dx, top=TOP_CODES),
        "n_dx": _dist(n_dx),
        "admitting_dx_present": round(float(first.ADMTNG_ICD9_DGNS_CD.notna().mean()), 4),
        "px": _dist(px, top=TOP_CODES),
        "px_present": round(float(first.ICD9_PRCDR_CD_1.notna().mean()), 5),
        "hcpcs": _dist(hcpcs, top=TOP_CODES),
        "n_hcpcs": _dist(n_hcpcs),
        "segment2_rate": round(float((op.SEGMENT == "2").sum() / len(op[op.SEGMENT == "1"])), 5),
        "from_2007_rate": round(float((first.CLM_FROM_DT.str[:4] == "2007").mean()), 5),
        "npi_present": {
            c: round(float(first[c].notna().mean()), 4)
            for c in ["AT_PHYSN_NPI", "OP_PHYSN_NPI", "OT_PHYSN_NPI"]
        },  # fmt: skip
    }


def assumed_stats() -> dict:
    """Carrier and PDE: no real volume here, so these are stated assumptions."""
    bene_years = sum(FULL_SAMPLE["beneficiary"].values())
    # fmt: off
    return {
        "carrier": {
            "assumed": True,
            "why": "no real carrier rows at volume; rate from CMS's published file size, "
            "line counts and amounts are plausible choices, codes reuse outpatient frequencies",
            "claims_per_bene_year": round(FULL_SAMPLE["carrier"] / bene_years, 5),
            "lines": {
                "values": list(range(1, 14)),
                "p": [0.46, 0.22, 0.12, 0.07, 0.04, 0.03, 0.02, 0.015, 0.01, 0.006, 0.004,
                      0.003, 0.002],
            },
            "line_payment_quantiles": [0, 0, 10, 10, 20, 20, 30, 40, 40, 50, 60, 70, 80, 100,
                                       120, 150, 200, 300, 500, 900, 3000],
            "processing_indicator": {
                "values": ["A", "R", "S", "I", "O", "M", "Q"],
                "p": [0.88, 0.04, 0.02, 0.02, 0.02, 0.01, 0.01],
            },
            "npi_pool": 20000,
        },
        "pde": {
            "assumed": True,
            "why": "no real PDE rows at volume; rate from CMS's published file size, only "
            "beneficiaries with Part D months fill; quantities, supplies and costs plausible",
            "events_per_bene_year": round(FULL_SAMPLE["pde"] / bene_years, 5),
            "quantity": {
                "values": [30, 60, 90, 10, 15, 20, 100, 120, 180, 270],
                "p": [0.42, 0.16, 0.13, 0.05, 0.04, 0.05, 0.04, 0.05, 0.04, 0.02],
            },
            "days_supply": {
                "values": [30, 90, 10, 20, 60, 14, 7, 0],
                "p": [0.55, 0.17, 0.06, 0.07, 0.06, 0.04, 0.04, 0.01],
            },
            "cost_quantiles": [0, 10, 10, 10, 20, 20, 30, 40, 50, 60, 70, 90, 100, 130, 160,
                               200, 270, 400, 600, 1000, 5000],
            "patient_share": [0.0, 0.1, 0.2, 0.25, 0.33, 0.5, 1.0],
            "ndc_pool": 6000,
        },
    }
    # fmt: on


def calibrate(data_dir: Path = DATA_DIR) -> dict:
    real = load_real(data_dir)
    bene, ip, op = real["bene"], real["ip"], real["op"]
    assumed = assumed_stats()
    ip_stats = inpatient_stats(ip, bene)
    return {
        "about": "Derived by `python -m cms_pipeline.synth.calibrate` from the real rows in "
        "data/synpuf (samples 1 and 2); carrier and pde are assumptions (no real volume).",
        "source_rows": {
            "beneficiary_years": int(len(bene)),
            "inpatient": int(len(ip)),
            "outpatient": int(len(op)),
        },  # fmt: skip
        "full_sample": FULL_SAMPLE,
        "beneficiary": beneficiary_stats(bene),
        "inpatient": ip_stats,
        "outpatient": outpatient_stats(op, ip_stats),
        **assumed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=OUT_FILE)
    args = parser.parse_args(argv)
    stats = calibrate(args.data)
    Calibration.model_validate(stats)  # writes only what the generator reads
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stats, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
