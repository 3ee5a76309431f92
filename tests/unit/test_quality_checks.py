"""The SodaCL files themselves: Soda parses them, names are unique, contracts are covered."""

from __future__ import annotations

import csv
import re

import pytest
import yaml

from cms_pipeline.dbt_runner import DBT_PROJECT_DIR
from cms_pipeline.quality.gate import CHECKS_DIR, LAYERS, check_files
from cms_pipeline.quality.metrics import wanted_metrics

ALL_FILES = sorted(p for layer in LAYERS for p in (CHECKS_DIR / layer).glob("*.yml"))
# Variables the gate passes to every scan (cms_pipeline.quality.gate.run_checks).
GATE_VARIABLES = re.compile(
    r"^(prev_(batch_)?(row_count|missing_pct__\w+|avg__\w+)|newest_batch_ids"
    r"|bronze_schema|silver_schema|batch_id|retracted_rows)$"
)


def _sections(path) -> dict:
    return yaml.safe_load(path.read_text())


def _checks(path):
    """The checks of the file's main section `checks for <table>`."""
    section = f"checks for {path.stem}"
    return section, _sections(path)[section]


def _config(check) -> dict:
    """The settings of a check (`name`, `valid values`, ...); none for a one-line check."""
    return {} if isinstance(check, str) else check[next(iter(check))] or {}


def _name(check) -> str:
    return _config(check).get("name", check if isinstance(check, str) else next(iter(check)))


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_soda_parses_every_check_file(path):
    from soda.scan import Scan

    scan = Scan()
    scan.set_data_source_name("spark_df")
    scan.add_variables({"prev_row_count": "NULL"})
    scan.add_sodacl_yaml_file(str(path))
    assert not scan.has_error_logs(), scan.get_error_logs_text()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sections_are_named_after_the_table_with_unique_check_names(path):
    t = path.stem
    sections = _sections(path)
    allowed = {f"checks for {t}", f"checks for {t} [newest_batch]", f"filter {t} [newest_batch]"}
    assert f"checks for {t}" in sections and set(sections) <= allowed, set(sections)
    names = [
        _name(c) for key, checks in sections.items() if key.startswith("checks") for c in checks
    ]
    assert len(names) == len(set(names)), "failed-row samples are matched to checks by name"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_variables_the_gate_provides(path):
    used = set(re.findall(r"\$\{\s*(\w+)\s*\}", path.read_text()))
    assert all(GATE_VARIABLES.match(v) for v in used), used


def test_bronze_schema_checks_cover_every_contract_column(settings):
    from cms_pipeline.lake import FILE_ATTRIBUTE_COLUMNS, LINEAGE_COLUMNS

    files = check_files("bronze")
    for contract in settings.sources.values():
        _, checks = _checks(files[contract.table])
        schema = next(c["schema"] for c in checks if isinstance(c, dict) and "schema" in c)
        required = schema["fail"]["when required column missing"]
        expected = contract.column_names + LINEAGE_COLUMNS + FILE_ATTRIBUTE_COLUMNS
        assert sorted(required) == sorted(expected), contract.table


def test_every_bronze_table_compares_its_newest_batch_with_the_previous_batch(settings):
    files = check_files("bronze")
    for contract in settings.sources.values():
        path = files[contract.table]
        wanted = {(m.scope, m.kind) for m in wanted_metrics(path.read_text())}
        assert wanted == {
            ("table", "row_count"),  # the whole table never shrinks
            ("batch", "row_count"),
            ("batch", "missing_pct"),
            ("batch", "avg"),
        }, contract.table
        sections = _sections(path)
        where = sections[f"filter {path.stem} [newest_batch]"]["where"]
        assert where == "_batch_id IN (${newest_batch_ids})"
        batch_checks = yaml.safe_dump(sections[f"checks for {path.stem} [newest_batch]"])
        assert "prev_batch_avg__" in batch_checks and "prev_batch_missing_pct__" in batch_checks


def test_unknown_layer_or_table_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="bronze, silver, gold"):
        check_files("platinum")
    with pytest.raises(ValueError, match="no check file"):
        check_files("bronze", ["no_such_table"])


def _soda_check_text(check) -> str:
    return " ".join((check if isinstance(check, str) else next(iter(check))).split())


def _seed_codes(seed: str) -> set[str]:
    path = DBT_PROJECT_DIR / "seeds" / f"{seed}.csv"
    return {row["code"] for row in csv.DictReader(path.open())}


def _dbt_tests_left_to_the_gate(yml):
    """(model, expected Soda check, its valid values or None) for each dbt test tagged
    `repeated_by_soda`. A relationship to a codebook seed is the Soda check that the
    column holds only the seed's codes."""
    for model in yaml.safe_load(yml.read_text()).get("models", []):
        name = model["name"]
        tests = [(None, t) for t in model.get("data_tests", [])]
        tests += [(c["name"], t) for c in model.get("columns", []) for t in c.get("data_tests", [])]
        for column, test in tests:
            if not isinstance(test, dict):
                continue
            kind, cfg = next(iter(test.items()))
            if "repeated_by_soda" not in (cfg.get("config") or {}).get("tags", []):
                continue
            args = cfg.get("arguments", {})
            if kind == "not_null":
                yield name, f"missing_count({column}) = 0", None
            elif kind == "unique":
                yield name, f"duplicate_count({column}) = 0", None
            elif kind == "unique_combination_of_columns":
                columns = ", ".join(args["combination_of_columns"])
                yield name, f"duplicate_count({columns}) = 0", None
            elif kind == "relationships":
                parent = re.fullmatch(r"ref\('(\w+)'\)", args["to"]).group(1)
                if parent.startswith("codebook_"):
                    yield name, f"invalid_count({column}) = 0", _seed_codes(parent)
                else:
                    field = args["field"]
                    yield name, f"values in ({column}) must exist in {parent} ({field})", None
            else:
                yield name, f"an equivalent of dbt's {kind}", None


def test_every_dbt_test_left_to_the_gate_is_a_check_of_the_gate():
    # gated builds skip these dbt tests (cms_pipeline.publish): the layer's Soda gate must
    # make the same assertion on the same table, or nothing would check it
    left = [
        (layer, model, expected, codes)
        for layer in ("silver", "gold")
        for yml in (DBT_PROJECT_DIR / "models" / layer).rglob("_*.yml")
        for model, expected, codes in _dbt_tests_left_to_the_gate(yml)
    ]
    assert left, "no dbt test is tagged repeated_by_soda"
    for layer, model, expected, codes in left:
        _, checks = _checks(CHECKS_DIR / layer / f"{model}.yml")
        found = {_soda_check_text(c): c for c in checks}
        # a check that does the work of several names them (Soda keeps check attributes)
        for c in checks:
            for text in (_config(c).get("attributes") or {}).get("repeats", []):
                found[_soda_check_text(text)] = c
        assert expected in found, (layer, model, expected)
        if codes is not None:
            valid = {str(v) for v in _config(found[expected])["valid values"]}
            assert valid == codes, (layer, model, expected, valid, codes)
