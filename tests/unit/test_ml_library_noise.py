"""What H2O and MLflow would print into a pipeline run's output, kept out of it: H2O's
notice that its build is old (no H2O setting turns it off: it becomes a DEBUG record) and
MLflow's artefact download bars (off through its documented environment variable)."""

from __future__ import annotations

import contextlib
import logging
import os
from types import SimpleNamespace

import h2o
from h2o.backend.cluster import H2OCluster
from mlflow.utils.file_utils import ArtifactProgressBar

from cms_pipeline.runtime import prepare_environment
from models_ml.h2o_cluster import InitNotes


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_h2os_build_age_notice_is_a_debug_record_and_other_notes_stay_warnings():
    logger = logging.getLogger("test_ml_library_noise.h2o")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    seen = _Records()
    logger.addHandler(seen)
    # the H2O client's own check, as h2o.init runs it on connecting to a server that says
    # its build is too old (same version: no mismatch warning)
    cluster = SimpleNamespace(
        version=h2o.__version__, build_too_old=True, build_age="7 months and 25 days"
    )
    with contextlib.closing(InitNotes(logger)) as notes, contextlib.redirect_stdout(notes):
        H2OCluster.check_version(cluster)
        print("Server is running at http://127.0.0.1:54321")
    logger.removeHandler(seen)

    levels = {record.getMessage(): record.levelno for record in seen.records}
    age = [message for message in levels if "7 months and 25 days" in message]
    assert age and levels[age[0]] == logging.DEBUG
    link = [message for message in levels if "latest_stable" in message]
    assert link and levels[link[0]] == logging.DEBUG
    assert levels["Server is running at http://127.0.0.1:54321"] == logging.WARNING
    assert len(levels) == 3


def test_mlflow_draws_no_download_bars_once_the_environment_is_prepared(monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    with ArtifactProgressBar.files(desc="Downloading artifacts", total=3) as bar:
        assert bar.pbar is not None  # what `scripts/run` showed

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    prepare_environment()
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    with ArtifactProgressBar.files(desc="Downloading artifacts", total=3) as bar:
        assert bar.pbar is None
