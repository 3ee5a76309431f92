"""Logging (cms_pipeline/logs.py): text or JSON lines on stderr, summaries on stdout."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from cms_pipeline import logs
from cms_pipeline.cli.progress import stage_progress
from cms_pipeline.stages import StageLog

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT_ROOT / "data/synpuf/sample_0/DE1_0_2008_Beneficiary_Summary_File_Sample_0.csv"
ENV_KEYS = (
    logs.FORMAT_ENV,
    logs.LEVEL_ENV,
    "PREFECT_LOGGING_EXTRA_LOGGERS",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FORMATTER",
    "SPARK_CONF_DIR",
)


@pytest.fixture
def configured(monkeypatch):
    """configure() writing to a buffer; logging and the environment restored after."""
    for key in ENV_KEYS:
        # set first, so that undoing restores the absence of a variable configure() sets
        # (delenv of an absent one records nothing: it leaked into later tests)
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._current)
    own = {name: logging.getLogger(name).level for name in logs.OWN_LOGGERS}
    buffer = io.StringIO()

    def configure(fmt: str, level: str = "INFO") -> io.StringIO:
        logs.configure(fmt, level, stream=buffer)
        return buffer

    yield configure
    root.handlers[:], root.level, logs._current = saved
    for name, level in own.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(SAMPLE, landing)
    (landing / "notes.txt").write_text("not a CMS file\n")
    return landing


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cms_pipeline", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_json_log_lines_on_stderr_and_the_summary_alone_on_stdout(tmp_path):
    landing = _landing(tmp_path)
    lake = str(tmp_path / "lake")
    result = _cli("--log-format", "json", "ingest", str(landing), "--lake", lake, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # nothing else on stdout
    assert summary["totals"]["rows_bronze"] == 2
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert records and all({"timestamp", "level", "logger", "message"} <= r.keys() for r in records)
    loaded = [r for r in records if r.get("status") == "loaded"]
    assert len(loaded) == 1 and loaded[0]["logger"] == "cms_pipeline.ingest"
    assert loaded[0]["level"] == "INFO" and loaded[0]["rows_read"] == 2
    assert loaded[0]["file"] == SAMPLE.name and SAMPLE.name in loaded[0]["message"]
    assert any("ignored notes.txt" in r["message"] for r in records)


def test_the_environment_picks_the_format_and_the_level(tmp_path):
    landing = _landing(tmp_path)
    lake = str(tmp_path / "lake")
    text = _cli("ingest", str(landing), "--lake", lake, "--json")
    assert text.returncode == 0, text.stderr[-3000:]
    assert " INFO cms_pipeline.ingest: ignored notes.txt" in text.stderr
    assert not text.stderr.lstrip().startswith("{")
    quiet = _cli(
        "ingest",
        str(landing),
        "--lake",
        lake,
        "--json",
        env={logs.FORMAT_ENV: "json", logs.LEVEL_ENV: "warning"},
    )
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["totals"]["duplicates"] == 1
    assert quiet.stderr.strip() == ""  # INFO records (the duplicate, the ignored file) left out


def test_an_unknown_level_is_refused(tmp_path):
    result = _cli("--log-level", "chatty", "catalog", "--lake", str(tmp_path / "lake"))
    assert result.returncode == 2 and "unknown log level 'CHATTY'" in result.stderr


def test_text_records_name_their_logger_and_levels_apply(configured):
    buffer = configured("text", "WARNING")
    logging.getLogger("cms_pipeline.ingest").info("not shown")
    logging.getLogger("cms_pipeline.ingest").warning("shown")
    logging.getLogger("some_library").warning("theirs")
    lines = buffer.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "WARNING cms_pipeline.ingest: shown",
        "WARNING some_library: theirs",
    ]
    buffer = configured("text", "DEBUG")
    logging.getLogger("models_ml.train").debug("ours at DEBUG")
    logging.getLogger("some_library").info("theirs at INFO: not shown")
    assert buffer.getvalue().splitlines()[-1].endswith("DEBUG models_ml.train: ours at DEBUG")


def test_a_prefect_runs_record_names_the_run_in_text(configured):
    buffer = configured("text")
    # where Prefect's logging was set up earlier in this process (another test), its API
    # handler on prefect.* warns that no flow run is current: not what this test reads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("prefect.task_runs").warning(
            "Finished in state Failed()", extra={"task_run_name": "quality gate-c83"}
        )
    (line,) = [x for x in buffer.getvalue().splitlines() if "prefect.task_runs" in x]
    assert line.split(" ", 1)[1] == (
        "WARNING prefect.task_runs 'quality gate-c83': Finished in state Failed()"
    )


def test_configuring_again_replaces_the_handler_and_json_keeps_extra_fields(configured):
    configured("text")
    buffer = configured("json")
    assert sum(getattr(h, "cms_pipeline", False) for h in logging.getLogger().handlers) == 1
    logging.getLogger("cms_pipeline.x").error("bad %s", "file.csv", extra={"line": 7})
    (record,) = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert record["message"] == "bad file.csv" and record["line"] == 7
    assert record["level"] == "ERROR" and record["logger"] == "cms_pipeline.x"
    assert datetime.fromisoformat(record["timestamp"]).utcoffset() == timedelta(0)


def test_a_line_logger_logs_whole_lines_only(configured):
    buffer = configured("json")
    stream = logs.LineLogger(logging.getLogger("cms_pipeline.h2o"))
    stream.write("Checking whether there is an H2O instance running ...")
    stream.flush()  # h2o flushes mid-line: no record yet
    stream.write(" not found.\n\nStarting server\nlast")
    stream.close()
    messages = [json.loads(line)["message"] for line in buffer.getvalue().splitlines()]
    assert messages == [
        "Checking whether there is an H2O instance running ... not found.",
        "Starting server",
        "last",
    ]


def test_with_json_logs_each_stage_is_a_record_with_its_numbers(configured):
    buffer = configured("json")
    console = Console(file=io.StringIO(), force_terminal=False)
    log = StageLog()
    with stage_progress(console):
        with log.stage("ingest"):
            pass
        with pytest.raises(RuntimeError), log.stage("silver"):
            raise RuntimeError("dbt failed")
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(r["stage"], r["event"], r["level"]) for r in records] == [
        ("ingest", "start", "INFO"),
        ("ingest", "end", "INFO"),
        ("silver", "start", "INFO"),
        ("silver", "end", "ERROR"),
    ]
    assert records[1]["seconds"] == log.stages[0].seconds and records[3]["status"] == "failed"
    assert console.file.getvalue() == ""  # nothing printed besides the records


def test_prefect_gets_its_api_handler_on_the_library_loggers():
    """Prefect adds its API handler (a flow run's logs) to PREFECT_LOGGING_EXTRA_LOGGERS
    when it sets up logging (`from prefect import flow`); configure() names our loggers
    there before that."""
    code = (
        "import logging; from cms_pipeline import logs; logs.configure('json'); "
        "from prefect import flow; "
        "print(sorted({type(h).__name__ for n in logs.OWN_LOGGERS "
        "for h in logging.getLogger(n).handlers}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "['APILogHandler']"


def test_spark_gets_the_log4j2_settings_of_the_format_unless_the_user_has_some(
    configured, monkeypatch
):
    configured("json")
    json_dir = Path(os.environ["SPARK_CONF_DIR"])
    assert json_dir == logs.LOG4J2 / "json" and (json_dir / "log4j2.properties").is_file()
    configured("text")  # configuring again follows the format
    assert Path(os.environ["SPARK_CONF_DIR"]) == logs.LOG4J2 / "text"
    monkeypatch.setenv("SPARK_CONF_DIR", "/etc/spark/conf")
    configured("json")
    assert os.environ["SPARK_CONF_DIR"] == "/etc/spark/conf"
