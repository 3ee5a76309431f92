"""Fixtures for integration tests that run Prefect flows."""

from __future__ import annotations

import pytest

from cms_pipeline.runtime import prepare_environment


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (SQLite) for the whole test session.

    Its start-up is slow on 2 busy cores and flaky at Prefect's default timeout, so the
    timeout is generous; the server is started once, when a test first asks for it.
    Yields the API URL (PREFECT_API_URL is set to it while the session runs).
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    prepare_environment()
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()
