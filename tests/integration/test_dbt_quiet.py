"""A quiet dbt command (every command the pipeline runs) keeps stdout for our summary."""

from __future__ import annotations

import pytest

from cms_pipeline.dbt_runner import DbtError, run_dbt

pytestmark = pytest.mark.integration  # dbt parses the whole project (a minute under load)


def test_a_failing_quiet_dbt_command_names_its_error_and_prints_nothing(settings, capfd):
    """dbt printed its errors on stdout even when quiet, inside `--json` output; the error
    reaches the caller through the exception instead (no Spark: a missing macro fails at
    compile time)."""
    with pytest.raises(DbtError, match="could not find a macro with the name 'no_such_macro'"):
        run_dbt(settings, ["run-operation", "no_such_macro"], quiet=True)
    assert capfd.readouterr().out == ""
