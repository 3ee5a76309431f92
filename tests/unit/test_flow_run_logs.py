"""Logging in a flow-run process a Prefect worker started (cms_pipeline/logs.py
`configure_flow_run_process`, called by flows/__init__.py): configured as the CLI does, from
the environment, and only there. tests/integration/test_flow_logs.py runs a real one."""

from __future__ import annotations

import logging

import pytest

from cms_pipeline import logs

ENV_KEYS = (
    logs.FORMAT_ENV,
    logs.LEVEL_ENV,
    logs.FLOW_RUN_ENV,
    "PREFECT_LOGGING_EXTRA_LOGGERS",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FORMATTER",
    "SPARK_CONF_DIR",
)


@pytest.fixture
def fresh(monkeypatch):
    """This process as a fresh one (not configured, none of the variables set), with
    Prefect's logging set up as the engine's import of Prefect does; logging and the
    environment restored after."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    for key in ENV_KEYS:
        # set first, so that undoing restores the absence of a variable configure() sets
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._current)
    own = {
        n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers))
        for n in logs.OWN_LOGGERS
    }
    for name in logs.OWN_LOGGERS:  # as Prefect left them: not named, no level
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs._current = None
    yield monkeypatch
    root.handlers[:], root.level, logs._current = saved
    for name, (level, handlers) in own.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers
    logging.captureWarnings(False)


def _handlers(name: str) -> set[str]:
    return {type(h).__name__ for h in logging.getLogger(name).handlers}


def test_outside_a_flow_run_process_nothing_is_configured(fresh):
    assert logs.configure_flow_run_process() is False
    assert logs.current_format() is None
    assert logging.getLogger("cms_pipeline").level == logging.NOTSET


def test_a_process_the_cli_configured_is_left_as_it_is(fresh):
    fresh.setenv(logs.FLOW_RUN_ENV, "4f0c6d1e-0000-0000-0000-000000000000")
    logs.configure("text", "WARNING")
    assert logs.configure_flow_run_process() is False
    assert logging.getLogger("cms_pipeline").level == logging.WARNING


def test_a_flow_run_process_logs_as_the_environment_says_and_to_the_runs_logs(fresh):
    fresh.setenv(logs.FLOW_RUN_ENV, "4f0c6d1e-0000-0000-0000-000000000000")
    fresh.setenv(logs.FORMAT_ENV, "json")
    fresh.setenv(logs.LEVEL_ENV, "debug")
    assert logs.configure_flow_run_process() is True
    assert logs.current_format() is logs.LogFormat.json
    for name in logs.OWN_LOGGERS:
        assert logging.getLogger(name).level == logging.DEBUG
        # PREFECT_LOGGING_EXTRA_LOGGERS was unset when Prefect set up its logging
        assert "APILogHandler" in _handlers(name)
    assert logging.getLogger().level == logging.WARNING  # other libraries: as the CLI


def test_extra_loggers_the_user_chose_are_left_to_prefect(fresh):
    fresh.setenv(logs.FLOW_RUN_ENV, "4f0c6d1e-0000-0000-0000-000000000000")
    fresh.setenv("PREFECT_LOGGING_EXTRA_LOGGERS", "dask")
    assert logs.configure_flow_run_process() is True
    assert logging.getLogger("cms_pipeline").level == logging.INFO
    assert "APILogHandler" not in _handlers("cms_pipeline")
