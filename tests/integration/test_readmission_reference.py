"""The readmission measure on the real bundled rows (dbt_project/models/gold/readmissions,
gold.inpatient_admissions and gold.readmission_rates) against an independent reference.

The reference (readmission_reference.sql) recomputes, with DuckDB from the raw inpatient
and summary CSVs and ZIPs of the bundled samples and the lookup seeds' CSVs, the
hospitalizations after merging transfers, the index admissions (with cohort, exclusion and
planned flags), the 30-day unplanned readmissions and the observed rates, by the same rules
written in plain SQL. Checked on the gold build the session's pipeline run made of every
bundled sample (tests/integration/conftest.py `published_builds`).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, SAMPLE_DATA

pytestmark = pytest.mark.integration

SAMPLES = ("sample_0", "sample_1", "sample_2")  # what the session's pipeline run lands
REFERENCE = Path(__file__).with_name("readmission_reference.sql")
DBT_PROJECT = PROJECT_ROOT / "dbt_project"
RULES = DBT_PROJECT / "models" / "gold" / "readmissions"
KIND = re.compile(r"(Inpatient|Beneficiary_Summary)")
SEEDS = {  # reference view -> seed CSV
    "dx_ccs": "vocab_icd9_dx_ccs",
    "pr_ccs": "readmission_icd9_procedure_ccs",
    "pr1": "readmission_pr1_always_planned_procedure_ccs",
    "pr2": "readmission_pr2_always_planned_diagnosis_ccs",
    "pr3": "readmission_pr3_potentially_planned_procedure_ccs",
    "pr4": "readmission_pr4_acute_diagnosis_ccs",
    "exclusions": "readmission_cohort_exclusion_ccs",
    "cohorts": "readmission_specialty_cohort_ccs",
}
COMPARED = (  # columns of gold.inpatient_admissions the reference recomputes
    "desynpuf_id",
    "admission_date",
    "discharge_date",
    "discharge_year",
    "claim_count",
    "principal_ccs_category",
    "specialty_cohort",
    "exclusion_reason",
    "is_planned",
    "is_index_admission",
    "is_readmitted_30d",
)


def _raw_files(folder: Path) -> dict[str, list[str]]:
    """The samples' inpatient and summary CSVs (ZIPs unpacked into `folder`), by kind."""
    files: dict[str, list[str]] = {"inpatient": [], "summary": []}
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
                    files["summary" if kind[1] == "Beneficiary_Summary" else "inpatient"].append(
                        str(csv)
                    )
    return files


def _statements() -> dict[str, str]:
    parts = re.split(r"^-- name: (\w+)\n", REFERENCE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _parameters() -> dict[str, object]:
    """The dbt vars the rules read, as dbt_project.yml sets them."""
    dbt_vars = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())["vars"]
    # the reference applies neither optional enrollment requirement: the shipped default
    for optional in ("readmission_require_age_65", "readmission_require_prior_part_a_12m"):
        assert not dbt_vars[optional], f"{optional} is on: {REFERENCE.name} does not apply it"
    return {
        "data_end_date": dbt_vars["data_end_date"],
        "window_days": dbt_vars["readmission_window_days"],
        "transfer_gap_days": dbt_vars["transfer_gap_days"],
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict]]:
    import duckdb

    con = duckdb.connect()
    for view, paths in _raw_files(tmp_path_factory.mktemp("raw")).items():
        # union_by_name: every file is read, whatever its line ends (CRLF or LF); without
        # it DuckDB 2.0 keeps the rows of the first file's dialect only
        con.read_csv(
            paths, header=True, all_varchar=True, filename=True, union_by_name=True
        ).create(view)
    for view, seed in SEEDS.items():
        path = DBT_PROJECT / "seeds" / f"{seed}.csv"
        con.read_csv(str(path), header=True, all_varchar=True).create(view)
    results = {}
    for name, sql in _statements().items():
        params = {key: value for key, value in _parameters().items() if f"${key}" in sql}
        cursor = con.execute(sql, params)
        if not re.match(r"(\s*--[^\n]*\n)*\s*create ", sql, flags=re.I):  # a query
            columns = [c[0] for c in cursor.description]
            results[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return results


@pytest.fixture(scope="module")
def gold(published_builds):
    return published_builds["gold"]


def _rows(spark, gold, table: str) -> list[dict]:
    return [r.asDict() for r in spark.table(f"{gold.schema}.{table}").collect()]


def _unit_test_names() -> dict[str, str]:
    """unit test name -> model, from the readmission rule and gold yml files."""
    files = [*RULES.glob("*.yml"), *(DBT_PROJECT / "models" / "gold").glob("_readmission*.yml")]
    files.append(DBT_PROJECT / "models" / "gold" / "_inpatient_admissions.yml")
    tests = {}
    for path in files:
        for test in yaml.safe_load(path.read_text()).get("unit_tests") or []:
            tests[test["name"]] = test["model"]
    return tests


def test_every_rule_model_has_a_unit_test():
    tested = set(_unit_test_names().values())
    rules = {path.stem for path in RULES.glob("*.sql")}
    assert rules - tested == set()
    assert {"inpatient_admissions", "readmission_rates"} <= tested


def test_the_rules_unit_tests_pass_in_the_build(gold):
    status = {t["name"]: t["status"] for t in gold.tests}
    for name in _unit_test_names():
        assert status.get(name) == "pass", (name, status.get(name))


def test_admissions_after_merging_equal_the_reference(spark, gold, reference):
    expected = {r["admission_id"]: r for r in reference["admissions"]}
    published = {r["admission_id"]: r for r in _rows(spark, gold, "inpatient_admissions")}
    assert published.keys() == expected.keys()
    # the samples hold transfers: the merge is exercised
    assert any(r["claim_count"] > 1 for r in expected.values())
    for column in ("desynpuf_id", "admission_date", "discharge_date", "discharge_year"):
        differ = [a for a in expected if published[a][column] != expected[a][column]]
        assert not differ, (column, differ[:5])
    differ = [a for a in expected if published[a]["claim_count"] != expected[a]["claim_count"]]
    assert not differ, differ[:5]


@pytest.mark.parametrize(
    "column",
    [c for c in COMPARED if c not in ("desynpuf_id", "admission_date", "discharge_date")],
)
def test_each_rule_equals_the_reference_per_admission(spark, gold, reference, column):
    expected = {r["admission_id"]: r[column] for r in reference["admissions"]}
    published = {r["admission_id"]: r[column] for r in _rows(spark, gold, "inpatient_admissions")}
    differ = {a: (published.get(a), v) for a, v in expected.items() if published.get(a) != v}
    assert not differ, list(differ.items())[:5]


def test_the_samples_hold_every_outcome(reference):
    """The comparison means something: index admissions, readmissions, planned stays and
    exclusions all occur in the samples (counts from the data, none asserted)."""
    rows = reference["admissions"]
    for flag in ("is_index_admission", "is_readmitted_30d", "is_planned"):
        assert any(r[flag] for r in rows), flag
        assert not all(r[flag] for r in rows), flag
    assert any(r["exclusion_reason"] for r in rows)
    assert len({r["specialty_cohort"] for r in rows if r["is_index_admission"]}) > 1


def test_readmission_rates_equal_the_reference(spark, gold, reference):
    key = ("discharge_year", "state_code", "specialty_cohort")
    expected = {
        tuple(r[k] for k in key): (r["index_admission_count"], r["readmission_count"])
        for r in reference["rates"]
    }
    rates = _rows(spark, gold, "readmission_rates")
    published = {
        tuple(r[k] for k in key): (r["index_admission_count"], r["readmission_count"])
        for r in rates
    }
    assert published == expected
    for r in rates:
        assert float(r["readmission_rate"]) == pytest.approx(
            r["readmission_count"] / r["index_admission_count"], abs=1e-6
        )
