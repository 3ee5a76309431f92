"""The dbt files compiled from config/mappings: committed, current, readable (no JVM)."""

from __future__ import annotations

import json
import re

import pytest

from cms_pipeline.config import PROJECT_ROOT, ConfigError, load_settings
from cms_pipeline.dbt_runner import run_dbt
from cms_pipeline.mapping import load_mappings
from cms_pipeline.mapping_sql import (
    DATA_MACRO,
    STAGING_DIR,
    cast_expression,
    compile_mappings,
    compiled_files,
    stale_files,
)


def test_committed_files_are_what_the_mappings_compile_to():
    stale = [str(p.relative_to(PROJECT_ROOT)) for p in stale_files(load_settings())]
    assert not stale, f"{stale} are stale: run `cms-pipeline mappings compile` and commit them"


def test_the_mapping_macro_holds_the_expanded_mappings():
    text = DATA_MACRO.read_text()
    document = text[text.index("{% raw %}") + len("{% raw %}") : text.index("{% endraw %}")]
    assert json.loads(document) == load_mappings(load_settings())


def test_a_staging_model_spells_out_every_mapped_column():
    mapping = load_mappings(load_settings())["inpatient_claims"]
    sql = (STAGING_DIR / "stg_inpatient_claims.sql").read_text()
    assert re.findall(r"^(\w+) as \(", sql, flags=re.M) == [
        "source",
        "superseded",
        "latest",
        "renamed",
        "decoded",
    ]
    for column in mapping["columns"] + mapping["repeated"]:
        expression = cast_expression(column["source"], column["type"], column.get("decode"))
        name = column["name"]
        selected = name if expression == name else f"{expression} as {name}"
        assert f"        {selected},\n" in sql
    assert "partition by CLM_ID, SEGMENT" in sql


def test_a_lookup_becomes_a_join_on_its_seed():
    sql = (STAGING_DIR / "stg_beneficiary_summary.sql").read_text()
    assert "state_codebook.label as state" in sql
    assert "left join {{ ref('codebook_state') }} as state_codebook" in sql
    assert "on state_codebook.code = renamed.state_code" in sql


def test_a_changed_mapping_makes_the_files_stale_and_dbt_refuse(copied_config):
    settings, config = copied_config
    path = config / "mappings" / "outpatient_claims.yaml"
    path.write_text(path.read_text().replace("name: provider_id,", "name: provider_number,"))
    stale = stale_files(settings)
    assert STAGING_DIR / "stg_outpatient_claims.sql" in stale
    assert DATA_MACRO in stale
    staging = compiled_files(settings)[STAGING_DIR / "stg_outpatient_claims.sql"]
    assert "PRVDR_NUM as provider_number," in staging
    with pytest.raises(ConfigError, match="cms-pipeline mappings compile"):
        run_dbt(settings, ["parse"])  # refused before dbt (or Spark) starts


def test_compile_writes_nothing_when_current(copied_config):
    settings, _ = copied_config
    assert compile_mappings(settings) == []  # nothing to write: the committed files are current
