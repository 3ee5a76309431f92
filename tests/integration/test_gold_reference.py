"""Independent reference for the key gold figures (issue 28 item 8).

The figures are recomputed with DuckDB from the raw CMS files of every bundled sample (CSVs,
and ZIPs unpacked here) by gold_reference.sql, without the dbt models, and compared with
the gold build the session's pipeline run published from those same files
(tests/integration/conftest.py `published_builds`): beneficiary-years and distinct
beneficiaries, claims per type, payments by year and type (every claim, and the claims a
beneficiary-year holds), and the summary file against the claims per year and setting.
"""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration

SAMPLES = ("sample_0", "sample_1", "sample_2")  # what the session's pipeline run lands
REFERENCE = Path(__file__).with_name("gold_reference.sql")
KINDS = {
    "Beneficiary_Summary": "summary",
    "Inpatient": "inpatient",
    "Outpatient": "outpatient",
    "Carrier": "carrier",
    "Prescription_Drug_Events": "pde",
}
KIND = re.compile("|".join(KINDS))


def _raw_files(folder: Path) -> dict[str, list[str]]:
    """The samples' CSVs (ZIPs unpacked into `folder`), by view name."""
    files: dict[str, list[str]] = {view: [] for view in KINDS.values()}
    for sample in SAMPLES:
        for path in sorted((SAMPLE_DATA / sample).iterdir()):
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(folder)
                    csvs = [folder / name for name in archive.namelist()]
            else:
                csvs = [path]
            for csv in csvs:
                if kind := KIND.search(csv.name):
                    files[KINDS[kind[0]]].append(str(csv))
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict]]:
    import duckdb

    files = _raw_files(tmp_path_factory.mktemp("raw"))
    assert all(files.values()), {view: len(paths) for view, paths in files.items()}
    con = duckdb.connect()
    for view, paths in files.items():
        con.read_csv(
            paths, header=True, all_varchar=True, filename=True, union_by_name=True
        ).create_view(view)
    parts = re.split(r"^-- name: (\w+)\n", REFERENCE.read_text(), flags=re.M)
    results = {}
    for name, sql in zip(parts[1::2], parts[2::2], strict=True):
        relation = con.sql(sql)
        if relation is not None:
            results[name] = [
                dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()
            ]
    return results


@pytest.fixture(scope="module")
def gold(published_builds, spark):
    schema = published_builds["gold"].schema
    return lambda table: spark.table(f"{schema}.{table}")


def _rows(frame) -> list[dict]:
    return [row.asDict() for row in frame.collect()]


def test_beneficiary_years_and_distinct_beneficiaries(gold, reference):
    [expected] = reference["beneficiary_years"]
    assert expected["beneficiary_year_count"] == expected["distinct_beneficiary_year_count"]
    years = gold("beneficiary_year")
    assert years.count() == expected["beneficiary_year_count"]
    assert years.select("desynpuf_id").distinct().count() == expected["beneficiary_count"]
    assert gold("dim_beneficiary").count() == expected["beneficiary_count"]
    by_year = Counter(row["beneficiary_year"] for row in _rows(years.select("beneficiary_year")))
    assert by_year == {
        r["beneficiary_year"]: r["beneficiary_year_count"]
        for r in reference["beneficiary_years_by_year"]
    }


def test_claims_per_type(gold, reference):
    claims = _rows(gold("fct_claims").groupBy("claim_type").count())
    expected = {r["claim_type"]: r["claim_count"] for r in reference["claims_by_type"]}
    assert set(expected) == {"inpatient", "outpatient", "carrier", "pde"}
    assert {r["claim_type"]: r["count"] for r in claims} == expected


def test_payments_by_year_and_type(gold, reference):
    from pyspark.sql import functions as F

    claims = gold("fct_claims").groupBy("claim_type", "claim_year")
    totals = claims.agg(F.count("*").alias("claim_count"), F.sum("payment_amount").alias("paid"))
    assert {
        (r["claim_type"], r["claim_year"]): (r["claim_count"], r["paid"]) for r in _rows(totals)
    } == {
        (r["claim_type"], r["claim_year"]): (r["claim_count"], r["payment_amount"])
        for r in reference["payments_by_year_and_type"]
    }


def test_payments_placed_in_beneficiary_years_by_year_and_type(gold, reference):
    from pyspark.sql import functions as F

    types = ("inpatient", "outpatient", "carrier", "pde")
    sums = [
        F.sum(f"{t}_{m}").alias(f"{t}_{m}")
        for t in types
        for m in ("claim_count", "payment_amount")
    ]
    placed = {}
    for row in _rows(gold("beneficiary_year").groupBy("beneficiary_year").agg(*sums)):
        for t in types:
            if row[f"{t}_claim_count"]:
                key = (t, row["beneficiary_year"])
                placed[key] = (row[f"{t}_claim_count"], row[f"{t}_payment_amount"])
    assert placed == {
        (r["claim_type"], r["claim_year"]): (r["claim_count"], r["payment_amount"])
        for r in reference["placed_payments_by_year_and_type"]
    }


def test_summary_against_claims_by_year_and_setting(gold, reference):
    from pyspark.sql import functions as F

    marts = (
        gold("reconcile_summary_state_year")
        .where(F.col("measure") == "medicare_paid")
        .groupBy("beneficiary_year", "setting")
        .agg(
            *(
                F.sum(c).alias(c)
                for c in (
                    "beneficiary_year_count",
                    "matched_count",
                    "summary_amount",
                    "claims_amount",
                )
            )
        )
    )
    columns = ("beneficiary_year_count", "matched_count", "summary_amount", "claims_amount")
    expected = {
        (r["beneficiary_year"], r["setting"]): tuple(r[c] for c in columns)
        for r in reference["summary_against_claims_by_year_and_setting"]
    }
    assert {
        (r["beneficiary_year"], r["setting"]): tuple(r[c] for c in columns) for r in _rows(marts)
    } == expected
    assert any(setting == "inpatient" for _, setting in expected)
