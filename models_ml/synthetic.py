"""Generated feature tables with a known signal, shaped like the gold ML tables.

For tests and benchmarks only (real training reads the dbt-built gold tables): the
label depends on a few features through a logistic model, so AutoML has something real
to find, and ids / dates / years carry no signal. Like the gold tables, each frame holds
training rows and a scoring population (`is_training_row` false, label null): readmission
discharges of the last 30 days, high-cost rows of the last year.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from cms_pipeline.sql import statement

STATES = ["01", "05", "10", "33", "45", "52"]


def _logistic(z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype("int32")


def _unlabelled(label: np.ndarray, training: np.ndarray) -> pd.Series:
    """The label with None (Spark: null) on scoring rows."""
    out = pd.Series(label, dtype=object)
    out[~training] = None
    return out


def readmission_frame(rows: int = 1500, years=(2008, 2009, 2010), seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    year = rng.choice(list(years), size=rows)
    start = {y: date(int(y), 1, 1) for y in years}
    discharge = [
        start[y] + timedelta(days=int(d))
        for y, d in zip(year, rng.integers(0, 365, rows), strict=True)
    ]
    window_observed = np.array(discharge) <= date(int(max(years)), 12, 31) - timedelta(days=30)
    age = rng.integers(65, 95, rows)
    los = rng.integers(1, 20, rows)
    prior = rng.poisson(0.7, rows)
    chronic = rng.integers(0, 11, rows)
    sex = rng.choice(["1", "2"], rows)
    state = rng.choice(STATES, rows)
    cost = np.round(rng.gamma(2.0, 4000.0, rows), 2)
    cost[rng.random(rows) < 0.05] = np.nan  # some missing values, as in real data
    z = -2.2 + 0.6 * prior + 0.12 * chronic + 0.05 * los + 0.4 * (state == "33")
    # a few beneficiaries with several admissions, as in the real data
    people = [f"{rng.integers(0, 16**15):016X}" for _ in range(rows * 2 // 3)]
    return pd.DataFrame(
        {
            "admission_id": [f"A{i:07d}" for i in range(rows)],
            "desynpuf_id": rng.choice(people, rows),
            "discharge_date": discharge,
            "discharge_year": year.astype("int32"),
            "is_training_row": window_observed,
            "age_at_admission": age.astype("int32"),
            "sex_code": sex,
            "state_code": state,
            "length_of_stay_days": los.astype("int32"),
            "prior_admissions_12m": prior.astype("int32"),
            "chronic_condition_count": chronic.astype("int32"),
            "prior_year_total_cost": cost,
            "is_readmitted_30d": _unlabelled(_logistic(z, rng), window_observed),
        }
    )


def high_cost_frame(rows: int = 1500, years=(2008, 2009, 2010), seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # two rows per beneficiary (CV folds group them), in two different years: the key is
    # (desynpuf_id, feature_year) as in gold.features_high_cost
    pair = np.arange(rows) // 2
    first = rng.integers(0, len(years), pair[-1] + 1)
    year = np.asarray(years)[(first[pair] + np.arange(rows) % 2) % len(years)]
    training = year < max(years)
    chronic = rng.integers(0, 11, rows)
    stays = rng.poisson(0.4, rows)
    cost = np.round(rng.gamma(1.5, 3000.0, rows) * (1 + stays), 2)
    z = -3.5 + 0.25 * chronic + 0.7 * stays + 0.00005 * cost
    return pd.DataFrame(
        {
            "desynpuf_id": [f"{i:016X}" for i in pair],
            "feature_year": year.astype("int32"),
            "prediction_date": [date(int(y), 12, 31) for y in year],
            "is_training_row": training,
            "age": rng.integers(65, 95, rows).astype("int32"),
            "sex_code": rng.choice(["1", "2"], rows),
            "state_code": rng.choice(STATES, rows),
            "chronic_condition_count": chronic.astype("int32"),
            "inpatient_stays": stays.astype("int32"),
            "total_cost": cost,
            "is_high_cost_next_year": _unlabelled(_logistic(z, rng), training),
        }
    )


def write_table(spark, frame: pd.DataFrame, table: str) -> None:
    """Save a pandas frame as a Spark (Parquet) table, creating its database."""
    database = table.split(".")[0]
    spark.sql(statement("create_database", database=database))
    spark.createDataFrame(frame).write.mode("overwrite").format("parquet").saveAsTable(table)
