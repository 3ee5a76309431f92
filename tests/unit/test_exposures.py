"""dbt exposures say what leaves dbt: they must list what the pipeline really exports."""

from __future__ import annotations

import re

import yaml

from cms_pipeline.config import CONFIG_DIR
from cms_pipeline.dbt_runner import DBT_PROJECT_DIR


def test_analytics_export_exposure_lists_every_exported_table():
    exposures = yaml.safe_load((DBT_PROJECT_DIR / "models" / "_exposures.yml").read_text())
    (analytics,) = [e for e in exposures["exposures"] if e["name"] == "analytics_export"]
    refs = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in analytics["depends_on"]}
    storage = yaml.safe_load((CONFIG_DIR / "storage.yaml").read_text())
    assert refs == set(storage["exports"]["analytics"]["tables"])
    gold = {p.stem for p in (DBT_PROJECT_DIR / "models" / "gold").glob("*.sql")}
    assert refs <= gold


def test_web_export_exposure_lists_every_table_the_web_export_reads():
    exposures = yaml.safe_load((DBT_PROJECT_DIR / "models" / "_exposures.yml").read_text())
    (web,) = [e for e in exposures["exposures"] if e["name"] == "web_export"]
    refs = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in web["depends_on"]}
    storage = yaml.safe_load((CONFIG_DIR / "storage.yaml").read_text())
    assert set(storage["exports"]["web"]["tables"]) <= refs
    assert {"pmpm_by_state_year", "dim_beneficiary", "beneficiary_year"} <= refs
