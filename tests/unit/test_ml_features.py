"""Feature tables against their use cases, from the dbt docs (no JVM): no column that
stands in for the year reaches a model, and every column a model sees is documented.
The leakage rules themselves are dbt unit tests on constructed rows (_features.yml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from models_ml.usecase import list_use_cases, load_use_case

DOCS = Path(__file__).parents[2] / "dbt_project" / "models" / "gold" / "_features.yml"
# a calendar year or date, or a flag of having a year's data (which years differ in)
YEAR_PROXY = re.compile(r"(^|_)(year|date)$|^has_prior_year|summary_year")


def _documented() -> dict[str, dict[str, str]]:
    models = yaml.safe_load(DOCS.read_text())["models"]
    return {
        m["name"]: {c["name"]: c.get("description", "") for c in m.get("columns", [])}
        for m in models
    }


def _use_cases(settings):
    return [load_use_case(settings, name) for name in list_use_cases(settings)]


def test_every_use_case_table_is_documented(settings):
    documented = _documented()
    for uc in _use_cases(settings):
        model = uc.table.split(".")[-1]
        assert model in documented, f"{DOCS}: no docs for {model} (use case {uc.name})"
        columns = documented[model]
        for column in (uc.target, uc.split.time_column, *uc.population.model_dump().values()):
            if isinstance(column, str):
                assert column in columns, f"{DOCS}: {model} lacks {column} ({uc.name})"


def test_no_year_proxy_reaches_a_model(settings):
    for uc in _use_cases(settings):
        columns = list(_documented()[uc.table.split(".")[-1]])
        proxies = [c for c in uc.feature_columns(columns) if YEAR_PROXY.search(c)]
        assert not proxies, (
            f"{uc.name}: {proxies} would let the model learn the year (the split period); "
            f"list them in exclude_columns of config/ml/{uc.name}.yaml or drop them"
        )


@pytest.mark.parametrize(
    "column", ["discharge_year", "admission_date", "summary_year", "has_prior_year_summary"]
)
def test_the_year_proxy_rule_catches_known_proxies(column):
    assert YEAR_PROXY.search(column)


@pytest.mark.parametrize("column", ["prior_year_part_a_coverage_months", "age", "has_esrd"])
def test_the_year_proxy_rule_lets_values_of_a_year_through(column):
    assert not YEAR_PROXY.search(column)


def test_every_model_input_is_documented(settings):
    for uc in _use_cases(settings):
        columns = _documented()[uc.table.split(".")[-1]]
        bare = [c for c in uc.feature_columns(list(columns)) if not columns[c].strip()]
        assert not bare, f"{DOCS}: {uc.table} columns {bare} have no description"
