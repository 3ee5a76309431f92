"""How learnable is the generator's built-in signal? (not a test: prints and records AUCs)

Usage: python bench/synth/learnability.py DIR [--sample 1] [--out bench/results/synth_signal.json]

DIR holds a generated sample (CSV). Two tasks, features only from before the label:
- 30-day readmission: for each inpatient stay, another admission within 30 days of
  discharge; features: the stay year's CHF/CKD/COPD/diabetes flags, other conditions,
  age, length of stay, admissions in the 365 days before.
- next-year cost: 2010 total Medicare payments in the top 10%, from 2009 flags, age and
  2009 payments and admissions.
Models: logistic regression and gradient boosting (scikit-learn), 70/30 split by person.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

CONDITIONS = ["SP_ALZHDMTA", "SP_CHF", "SP_CHRNKIDN", "SP_CNCR", "SP_COPD", "SP_DEPRESSN",
              "SP_DIABETES", "SP_ISCHMCHT", "SP_OSTEOPRS", "SP_RA_OA", "SP_STRKETIA"]  # fmt: skip


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def _fit(x: pd.DataFrame, y: pd.Series, groups: pd.Series, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    people = groups.unique()
    test_people = set(rng.choice(people, size=int(len(people) * 0.3), replace=False))
    test = groups.isin(test_people).to_numpy()
    out = {"rows": int(len(y)), "positive_rate": round(float(y.mean()), 4)}
    for name, model in (("logistic", LogisticRegression(max_iter=2000)),
                        ("gbm", HistGradientBoostingClassifier(max_iter=200, random_state=0))):  # fmt: skip
        model.fit(x[~test], y[~test])
        out[f"auc_{name}"] = round(
            float(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1])), 4
        )
    return out


def readmission(folder: Path, sample: int) -> dict:
    ip = _read(folder / f"DE1_0_2008_to_2010_Inpatient_Claims_Sample_{sample}.csv")
    ip = ip[ip.SEGMENT == "1"].copy()
    ip["adm"] = pd.to_datetime(ip.CLM_ADMSN_DT, format="%Y%m%d")
    ip["dis"] = pd.to_datetime(ip.NCH_BENE_DSCHRG_DT, format="%Y%m%d")
    ip = ip.sort_values(["DESYNPUF_ID", "adm"]).reset_index(drop=True)
    nxt = ip.groupby("DESYNPUF_ID").adm.shift(-1)
    ip["label"] = ((nxt - ip.dis).dt.days.between(0, 30)).astype(int)
    ip = ip[ip.dis < "2010-12-01"]  # a full 30-day window must be observable
    prior = []
    for _, g in ip.groupby("DESYNPUF_ID", sort=False):
        adm = g.adm.to_numpy()
        prior += [int(((adm < a) & (adm >= a - np.timedelta64(365, "D"))).sum()) for a in adm]
    ip["prior_admissions"] = prior
    ip["year"] = ip.adm.dt.year.clip(2008, 2010)
    benes = []
    for year in (2008, 2009, 2010):
        b = _read(folder / f"DE1_0_{year}_Beneficiary_Summary_File_Sample_{sample}.csv")
        benes.append(b.assign(year=year))
    bene = pd.concat(benes)
    df = ip.merge(bene, on=["DESYNPUF_ID", "year"], how="left")
    x = (df[CONDITIONS] == "1").astype(int)
    x["age"] = df.year - df.BENE_BIRTH_DT.str[:4].astype(int)
    x["los"] = (df.dis - df.adm).dt.days
    x["prior_admissions"] = df.prior_admissions
    return _fit(x, df.label, df.DESYNPUF_ID)


def next_year_cost(folder: Path, sample: int) -> dict:
    b9 = _read(folder / f"DE1_0_2009_Beneficiary_Summary_File_Sample_{sample}.csv")
    b10 = _read(folder / f"DE1_0_2010_Beneficiary_Summary_File_Sample_{sample}.csv")
    pay = ["MEDREIMB_IP", "MEDREIMB_OP", "MEDREIMB_CAR"]
    df = b9.merge(b10[["DESYNPUF_ID", *pay]], on="DESYNPUF_ID", suffixes=("", "_next"))
    cost_next = df[[f"{c}_next" for c in pay]].astype(float).sum(axis=1)
    y = (cost_next >= cost_next.quantile(0.9)).astype(int)
    x = (df[CONDITIONS] == "1").astype(int)
    x["age"] = 2009 - df.BENE_BIRTH_DT.str[:4].astype(int)
    for c in pay:
        x[c] = df[c].astype(float)
    return _fit(x, y, df.DESYNPUF_ID)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sample", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/synth_signal.json"))
    args = parser.parse_args(argv)
    result = {
        "folder": str(args.folder),
        "readmission_30d": readmission(args.folder, args.sample),
        "high_cost_next_year": next_year_cost(args.folder, args.sample),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)


if __name__ == "__main__":
    main()
