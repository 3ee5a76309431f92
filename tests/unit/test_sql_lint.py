"""SQL lint (sqlfluff, `.sqlfluff` at the repository root): scripts/test lints the dbt
project beside ruff, and the staging SQL that `cms-pipeline mappings compile` generates
passes the same rules, so a change to the generator cannot bring back what lint refuses."""

from __future__ import annotations

import configparser

import pytest
from sqlfluff.core import FluffConfig, Linter

from cms_pipeline.config import PROJECT_ROOT, load_settings
from cms_pipeline.mapping_sql import STAGING_DIR, compiled_files


def test_the_lint_uses_the_jinja_templater_with_dbt_builtins_on_spark_sql():
    config = configparser.ConfigParser()
    config.read(PROJECT_ROOT / ".sqlfluff")
    assert config["sqlfluff"]["dialect"] == "sparksql"
    assert config["sqlfluff"]["templater"] == "jinja"
    assert config["sqlfluff:templater:jinja"]["apply_dbt_builtins"] == "True"
    test_script = (PROJECT_ROOT / "scripts" / "test").read_text()
    assert ".venv/bin/sqlfluff lint dbt_project" in test_script


@pytest.mark.parametrize(
    "path",
    [p for p in compiled_files(load_settings()) if p.parent == STAGING_DIR],
    ids=lambda p: p.name,
)
def test_generated_staging_sql_passes_the_lint(path, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # the config's macro path is relative to the root
    sql = compiled_files(load_settings())[path]
    config = FluffConfig.from_path(str(STAGING_DIR))
    result = Linter(config=config).lint_string(sql, fname=str(path))
    problems = [f"L{v.line_no} {v.rule_code()}: {v.desc()}" for v in result.get_violations()]
    assert not problems, problems
