"""Comorbidity on the real bundled rows: gold.comorbidity_beneficiary_year scores every
beneficiary-year as pycomorb itself does from the same diagnosis codes.

Read from the gold build the session's pipeline run made of every bundled sample
(tests/integration/conftest.py `published_builds`). The expected indexes come from
pycomorb's CharlsonComorbidityIndex and ElixhauserComorbidityIndex (Quan ICD-9-CM
algorithms, the model's default weights) run on each beneficiary-year's codes: silver
claim_diagnoses except the admitting diagnosis, in the year of their claim (fct_claims).
So the seeds (one code at a time) and the model's SQL together must give the package's
answer, prefix matching and severe-over-mild rules included.
"""

from __future__ import annotations

import polars as pl
import pytest

pytestmark = pytest.mark.integration

WEIGHTS = {"charlson": "charlson", "elixhauser": "van_walraven"}  # the model's default vars


@pytest.fixture(scope="module")
def gold(spark, published_builds) -> pl.DataFrame:
    table = f"{published_builds['gold'].schema}.comorbidity_beneficiary_year"
    return pl.DataFrame([r.asDict() for r in spark.table(table).collect()])


@pytest.fixture(scope="module")
def diagnoses(spark, published_builds) -> pl.DataFrame:
    """(beneficiary-year id, code): the codes the model reads, from silver and fct_claims."""
    from pyspark.sql import functions as F

    codes = spark.table(f"{published_builds['silver'].schema}.claim_diagnoses").where(
        "diagnosis_position > 0"
    )
    claims = spark.table(f"{published_builds['gold'].schema}.fct_claims")
    joined = codes.join(
        claims, claims.claim_key == F.concat(codes.claim_type, F.lit(":"), codes.claim_id)
    ).select(
        F.concat_ws("|", codes.desynpuf_id, claims.claim_year.cast("string")).alias("id"),
        codes.icd9_dgns_cd.alias("code"),
    )
    rows = joined.distinct().collect()
    return pl.DataFrame({"id": [r.id for r in rows], "code": [r.code for r in rows]})


def _expected(diagnoses: pl.DataFrame) -> pl.DataFrame:
    from pycomorb import CharlsonComorbidityIndex, ElixhauserComorbidityIndex

    charlson = CharlsonComorbidityIndex(
        diagnoses.with_columns(age=pl.lit(0)),
        icd_version="icd9",
        implementation="quan",
        weights=WEIGHTS["charlson"],
    ).select("id", pl.col("Charlson Comorbidity Index").alias("charlson_index"))
    elixhauser = ElixhauserComorbidityIndex(
        diagnoses, icd_version="icd9", implementation="quan", weights=WEIGHTS["elixhauser"]
    ).select("id", pl.col("Elixhauser Comorbidity Index").alias("elixhauser_index"))
    return charlson.join(elixhauser, on="id")


def test_every_beneficiary_year_scores_as_pycomorb_does(gold, diagnoses):
    assert set(gold["charlson_weight_scheme"]) == {WEIGHTS["charlson"]}
    assert set(gold["elixhauser_weight_scheme"]) == {WEIGHTS["elixhauser"]}
    ours = gold.select(
        pl.concat_str("desynpuf_id", pl.col("beneficiary_year").cast(pl.Utf8), separator="|").alias(
            "id"
        ),
        "charlson_index",
        "elixhauser_index",
    )
    expected = _expected(diagnoses)
    # beneficiary-years with codes: the package's index; without: 0 (the package sees none)
    compared = ours.join(expected, on="id", how="left", suffix="_pycomorb").with_columns(
        pl.col("charlson_index_pycomorb").fill_null(0),
        pl.col("elixhauser_index_pycomorb").fill_null(0),
    )
    differ = compared.filter(
        (pl.col("charlson_index") != pl.col("charlson_index_pycomorb"))
        | (pl.col("elixhauser_index") != pl.col("elixhauser_index_pycomorb"))
    )
    assert differ.is_empty(), differ.head(5).to_dicts()
    # the comparison means something: the real rows carry comorbidity
    assert compared["charlson_index"].sum() > 0 and compared["elixhauser_index"].sum() != 0
