"""Claim semantics on the real bundled rows (dbt_project/models/gold/fct_claims.sql): a split
institutional claim counts as its segment 1, a claim counts in the beneficiary-year of its
through date, and every claim is either placed in a beneficiary-year or counted in
gold.reconcile_unplaced_claims, which the gold gate warns on.

Checked on the gold build the session's pipeline run made of every bundled sample
(tests/integration/conftest.py `published_builds`), and on its gold gate. The expected
figures are computed here with DuckDB from the raw CSVs and ZIPs of the inpatient,
outpatient and summary files (claim_semantics_reference.sql), not from the models.
"""

from __future__ import annotations

import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration

SAMPLES = ("sample_0", "sample_1", "sample_2")  # what the session's pipeline run lands
REFERENCE = Path(__file__).with_name("claim_semantics_reference.sql")
TYPES = ("inpatient", "outpatient")  # the kinds the reference reads
KIND = re.compile(r"(Inpatient|Outpatient|Beneficiary_Summary)")
WARN_ABOVE_PCT = 1  # soda_checks/gold/reconcile_unplaced_claims.yml


def _raw_files(folder: Path) -> dict[str, list[str]]:
    """The samples' CSVs (ZIPs unpacked into `folder`), by kind."""
    files: dict[str, list[str]] = {"inpatient": [], "outpatient": [], "summary": []}
    for sample in SAMPLES:
        for path in sorted((SAMPLE_DATA / sample).iterdir()):
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(folder)
                    csvs = [folder / name for name in archive.namelist()]
            else:
                csvs = [path]
            for csv in csvs:
                if not (kind := KIND.search(csv.name)):
                    continue  # carrier and drug events: not read by these rules
                key = {"Beneficiary_Summary": "summary"}.get(kind[1], kind[1].lower())
                files[key].append(str(csv))
    return files


def _statements() -> dict[str, str]:
    parts = re.split(r"^-- name: (\w+)\n", REFERENCE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict]]:
    import duckdb

    files = _raw_files(tmp_path_factory.mktemp("raw"))
    con = duckdb.connect()
    for view, paths in files.items():
        # union_by_name: the files differ in line ends (sample_0 LF, the others CRLF), and
        # without it DuckDB reads the first file's rows only
        raw = con.read_csv(paths, header=True, all_varchar=True, filename=True, union_by_name=True)
        assert len(raw.select("filename").distinct().fetchall()) == len(paths), view
        raw.create_view(view)
    results = {}
    for name, sql in _statements().items():
        relation = con.sql(sql)
        if relation is not None:
            results[name] = [
                dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()
            ]
    return results


@pytest.fixture(scope="module")
def gold(published_builds, pipeline_runs):
    """The published gold build and the gold gate of the run that built it."""
    build = published_builds["gold"]
    [run] = [
        r
        for r in pipeline_runs
        if r["layers"].get("gold", {}).get("build", {}).get("build_id") == build.build_id
    ]
    return {"build": build, "gate": run["gates"]["gold"]}


def _rows(spark, gold, table: str) -> list[dict]:
    return [r.asDict() for r in spark.table(f"{gold['build'].schema}.{table}").collect()]


def test_the_rules_dbt_tests_pass_in_the_build(gold):
    names = {t["name"]: t["status"] for t in gold["build"].tests}
    for name in (
        "reconcile_payments_silver_gold",
        "reconcile_claims_placed_unplaced",
        "split_claim_counts_once_as_its_first_segment",
        "claim_year_is_the_year_of_the_through_date",
        "claims_count_in_the_beneficiary_year_of_their_through_date",
        "claims_no_beneficiary_year_holds_land_in_the_unplaced_table",
        "a_split_claim_is_a_stay_of_its_first_segment",
    ):
        assert names.get(name) == "pass", (name, names.get(name))


def test_a_beneficiary_year_whose_only_stay_is_split_is_paid_segment_1(spark, gold, reference):
    expected = reference["split_only_inpatient_years"]
    assert expected, "the samples hold beneficiary-years whose only stay is a split claim"
    years = {
        (r["desynpuf_id"], r["beneficiary_year"]): r["inpatient_payment_amount"]
        for r in _rows(spark, gold, "beneficiary_year")
    }
    for row in expected:
        paid = years[(row["desynpuf_id"], row["claim_year"])]
        assert paid == row["segment_1_payment"], row
    # segment 2 adds nothing: where it carries money, the sum would differ from gold
    assert any(row["later_segment_payment"] for row in expected)


def test_a_split_stay_takes_its_dates_and_drg_from_segment_1(spark, gold, reference):
    expected = {r["claim_id"]: r for r in reference["split_inpatient_stays"]}
    assert expected
    facts = {
        r["claim_id"]: r
        for r in _rows(spark, gold, "fct_claims")
        if r["claim_type"] == "inpatient" and r["claim_id"] in expected
    }
    stays = {r["admission_id"]: r for r in _rows(spark, gold, "inpatient_admissions")}
    for claim_id, row in expected.items():
        fact = facts[claim_id]
        assert (fact["claim_end_date"], fact["drg_code"]) == (
            row["claim_end_date"],
            row["drg_code"],
        )
        assert fact["claim_year"] == row["claim_end_date"].year
        stay = stays.get(claim_id)
        if stay and stay["claim_count"] == 1:  # a stay of this claim alone (no transfer)
            assert stay["admission_date"] == row["admission_date"], claim_id
            assert stay["drg_code"] == row["drg_code"], claim_id
    # the later segments' earlier admission dates and OTH/000 DRGs were there to be taken
    assert any(r["later_segment_admission_date"] < r["admission_date"] for r in expected.values())


def test_claims_placed_plus_unplaced_are_all_claims(spark, gold, reference):
    expected = {r["claim_type"]: r for r in reference["placement_by_claim_type"]}
    claims = {t: [0, Decimal(0)] for t in TYPES}
    for r in _rows(spark, gold, "fct_claims"):
        if r["claim_type"] not in TYPES:
            continue
        claims[r["claim_type"]][0] += 1
        claims[r["claim_type"]][1] += r["payment_amount"]
    placed = {t: [0, Decimal(0)] for t in TYPES}
    for r in _rows(spark, gold, "beneficiary_year"):
        for t in TYPES:
            placed[t][0] += r[f"{t}_claim_count"]
            placed[t][1] += r[f"{t}_payment_amount"]
    unplaced = {t: [0, Decimal(0)] for t in TYPES}
    for r in _rows(spark, gold, "reconcile_unplaced_claims"):
        if r["claim_type"] not in TYPES:
            continue
        unplaced[r["claim_type"]][0] += r["claim_count"]
        unplaced[r["claim_type"]][1] += r["payment_amount"]
    for t in TYPES:
        raw = expected[t]
        assert claims[t] == [raw["claim_count"], raw["payment_amount"]], t
        assert placed[t] == [raw["placed_claim_count"], raw["placed_payment_amount"]], t
        assert unplaced[t] == [raw["unplaced_claim_count"], raw["unplaced_payment_amount"]], t
        assert claims[t] == [placed[t][0] + unplaced[t][0], placed[t][1] + unplaced[t][1]], t


def test_the_gold_gate_reports_unplaced_claims(spark, gold):
    checks = {c["check"]: c for c in gold["gate"]["checks"]}
    assert gold["gate"]["passed"], gold["gate"]["counts"]
    for name in (
        "Payments placed in beneficiary_year plus unplaced payments add up to fct_claims",
        "Claims placed in beneficiary_year plus unplaced claims add up to fct_claims",
    ):
        assert checks[name]["outcome"] == "pass", name
    totals = {}
    for r in _rows(spark, gold, "fct_claims"):
        count, amount = totals.get(r["claim_type"], (0, Decimal(0)))
        totals[r["claim_type"]] = (count + 1, amount + r["payment_amount"])
    over = [
        r
        for r in _rows(spark, gold, "reconcile_unplaced_claims")
        if 100 * r["claim_count"] / totals[r["claim_type"]][0] > WARN_ABOVE_PCT
        or 100 * abs(r["payment_amount"]) > WARN_ABOVE_PCT * abs(totals[r["claim_type"]][1])
    ]
    warned = checks["Unplaced claims stay under 1% of their claim type's claims and payments"]
    assert warned["outcome"] == ("warn" if over else "pass")
    assert warned["value"] == len(over)
