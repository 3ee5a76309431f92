"""Logging set up once for the CLI; the library only logs (`logging.getLogger(__name__)`).

One handler on the root logger writes to stderr, as text for people or as JSON lines
(python-json-logger) for log shippers; stdout keeps the commands' summaries. Our own
packages log from `--log-level` up (INFO by default), other libraries from WARNING up.

Spark's JVMs log the same way: SPARK_CONF_DIR points at a log4j2.properties of that
format (cms_pipeline/log4j2/), which Spark's launcher puts on the JVM's classpath.

Inside Prefect flows, Prefect's run logger sees the library's messages too: Prefect adds
its API handler to the loggers named in PREFECT_LOGGING_EXTRA_LOGGERS when it sets up
logging (once per process, when `from prefect import flow` first loads it), so that
variable is set here, before that.

A flow run that a Prefect worker starts runs in a fresh interpreter (`python -m
prefect.engine`), where the CLI never ran: `configure_flow_run_process` (called when the
flows package is imported, as every deployment's entrypoint is one of its modules) sets
it up there the same way, from the environment the worker passes on.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

FORMAT_ENV = "CMS_PIPELINE_LOG_FORMAT"
LEVEL_ENV = "CMS_PIPELINE_LOG_LEVEL"
OWN_LOGGERS = ("cms_pipeline", "models_ml", "flows")
LOG4J2 = Path(__file__).parent / "log4j2"  # one folder per format: SPARK_CONF_DIR
_RUN_NAMES = ("task_run_name", "flow_run_name")  # attributes of Prefect's run records


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO cms_pipeline.x: message`; a Prefect run's records name the run."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(where)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        run = next((getattr(record, a) for a in _RUN_NAMES if getattr(record, a, None)), None)
        record.where = f"{record.name} {run!r}" if run else record.name
        return super().format(record)


class _UtcJsonFormatter(JsonFormatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_formatter() -> logging.Formatter:
    """One JSON object per line: timestamp (UTC, ISO 8601, milliseconds), level, logger,
    message, plus any `extra` fields."""
    return _UtcJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
    )


_current: LogFormat | None = None


def current_format() -> LogFormat | None:
    """The format `configure` set in this process (None: not configured)."""
    return _current


class StderrHandler(logging.StreamHandler):
    """Writes to sys.stderr as it is when a record comes: while rich shows a live line it
    is rich's proxy, which prints the record above that line (test runners swap it too).
    Its name has no leading underscore: Prefect keeps a root handler only when it has not."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(
    fmt: str | None = None, level: str | None = None, stream: TextIO | None = None
) -> LogFormat:
    """Log to `stream` (default: stderr) in `fmt` (text or json; default
    $CMS_PIPELINE_LOG_FORMAT, else text) from `level` up (default $CMS_PIPELINE_LOG_LEVEL,
    else INFO)."""
    global _current
    fmt_ = LogFormat((fmt or os.environ.get(FORMAT_ENV) or "text").lower())
    name = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    number = logging.getLevelName(name)
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {name!r}: use DEBUG, INFO, WARNING or ERROR")
    handler = logging.StreamHandler(stream) if stream else StderrHandler()
    handler.setFormatter(json_formatter() if fmt_ is LogFormat.json else TextFormatter())
    handler.cms_pipeline = True  # ours: configuring again replaces it
    root = logging.getLogger()
    for old in list(root.handlers):
        # Prefect's console handler, when Prefect was imported first, would write each
        # record a second time and never as JSON
        if getattr(old, "cms_pipeline", False) or type(old).__name__ == "PrefectConsoleHandler":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(number, logging.WARNING))
    for own in OWN_LOGGERS:
        logging.getLogger(own).setLevel(number)
    logging.captureWarnings(True)  # warnings.warn (h2o, pandas...) as records, JSON included
    # Child processes (a Prefect worker and its flow runs, Spark) log the same way.
    os.environ[FORMAT_ENV], os.environ[LEVEL_ENV] = fmt_.value, name
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", ",".join(OWN_LOGGERS))
    # Records made outside a flow run (plain commands, worker threads) skip Prefect's API
    # handler quietly instead of a warning each.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    spark_conf = os.environ.get("SPARK_CONF_DIR", "")
    if not spark_conf or Path(spark_conf).parent == LOG4J2:  # one of a user's own wins
        os.environ["SPARK_CONF_DIR"] = str(LOG4J2 / fmt_.value)
    if fmt_ is LogFormat.json:  # Prefect's own processes (its server, a worker): JSON too
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FORMATTER", "json")
    _current = fmt_
    return fmt_


# Set by Prefect's workers and runners in the environment of the process they start for
# one flow run (`python -m prefect.engine` reads the run's id from it).
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


def configure_flow_run_process() -> bool:
    """In a process started for one Prefect flow run (by a worker: $PREFECT__FLOW_RUN_ID
    set) and not configured yet, `configure()` as the CLI does: format and level from
    $CMS_PIPELINE_LOG_FORMAT and $CMS_PIPELINE_LOG_LEVEL (`cms-pipeline up` passes the
    CLI's to its worker, and so to every flow run). Returns whether it did.

    Without it the library's INFO records were lost there: our loggers kept no level of
    their own, so the root logger's WARNING applied, and neither stderr nor the run's
    logs in Prefect (its UI) had them.

    Prefect set up its logging when the engine imported it, before the flow's module:
    when PREFECT_LOGGING_EXTRA_LOGGERS was not set then (a worker not started by our
    CLI), our loggers get the handlers Prefect gives the loggers named there (those of
    its `prefect.extra` logger: the API handler that sends records to the run's logs).
    """
    if _current is not None or not os.environ.get(FLOW_RUN_ENV):
        return False
    prefect_named_ours = "PREFECT_LOGGING_EXTRA_LOGGERS" in os.environ
    configure()
    configuration = sys.modules.get("prefect.logging.configuration")
    prefect_set_up = bool(configuration and configuration.PROCESS_LOGGING_CONFIG)
    if prefect_set_up and not prefect_named_ours:  # else Prefect did, or will do it
        extra = logging.getLogger("prefect.extra").handlers
        for own in OWN_LOGGERS:
            logger = logging.getLogger(own)
            for handler in extra:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
    return True


class LineLogger(io.TextIOBase):
    """A text stream whose lines become log records: for code that prints (h2o.init, a
    rich console in JSON mode), so its lines are formatted like every other record."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO):
        self.logger, self.level, self._pending = logger, level, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._log(line)
        return len(text)

    def close(self) -> None:  # flush() keeps a partial line: h2o flushes mid-line
        line, self._pending = self._pending, ""
        self._log(line)
        super().close()

    def _log(self, line: str) -> None:
        if line.strip():
            self.logger.log(self.level, line.rstrip())
