"""Publish intents without a JVM: what undoing one publishes, whose intent may be taken
over, and that no intent means no work (the Spark-side protocol is tested in
tests/integration/test_atomic_publish.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from cms_pipeline.lease import process_start_time
from cms_pipeline.publish.layers import PublishError
from cms_pipeline.publish.publishing import (
    _refuse_live_writer,
    complete_interrupted_publish,
    intent_path,
    publish_intent,
    undo_intent,
)

PREVIOUS = {"build_id": "b1", "schema": "gold_build_b1", "models": ["t_a", "t_b", "t_old"]}
INTENT = {
    "layer": "gold",
    "build_id": "b2",
    "macro_args": {
        "layer": "gold",
        "build_schema": "gold_build_b2",
        "relations": ["t_a", "t_b", "t_c"],
        "unpublish": ["t_old"],
        "keep": ["b2", "b1"],
    },
    "vars": {"build_layer": "gold", "build_id": "b2"},
    "history": [{"build_id": "b2", "models": ["t_a", "t_b", "t_c"]}, PREVIOUS],
}


def test_undo_puts_the_layer_back_on_the_previous_build_and_keeps_every_build():
    before = {"build_id": "b0", "schema": "gold_build_b0", "models": ["t_a"]}
    undo = undo_intent(INTENT, [PREVIOUS, before])
    args = undo["macro_args"]
    assert args["build_schema"] == "gold_build_b1"
    assert args["relations"] == PREVIOUS["models"]
    assert args["unpublish"] == ["t_c"]  # made by the interrupted publish only
    # never drops a build the intent names, nor the rollback target of the history kept
    assert args["keep"] == ["b2", "b1", "b0"]
    assert undo["history"] == [PREVIOUS, before]  # the history stays as it was


def test_undoing_a_first_publish_drops_its_views():
    args = undo_intent(INTENT, [])["macro_args"]
    assert args["relations"] == [] and args["unpublish"] == ["t_a", "t_b", "t_c"]


def test_no_intent_means_nothing_to_do_and_no_spark(settings):
    assert complete_interrupted_publish(settings, spark=None) == []
    assert not settings.metadata_path("publish").exists()


def test_a_hand_broken_intent_is_named(settings):
    path = intent_path(settings, "gold")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(PublishError, match=r"gold\.intent\.json: publish intent is not valid"):
        publish_intent(settings, "gold")


def _written_by(pid: int, started: float | None) -> dict:
    return {**INTENT, "writer": {"host": socket.gethostname(), "pid": pid, "started": started}}


def test_an_intent_whose_writer_still_runs_is_not_taken_over(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start_time(live.pid)
        with pytest.raises(PublishError, match=f"pid {live.pid} is publishing gold build b2"):
            _refuse_live_writer(_written_by(live.pid, started), tmp_path / "gold.intent.json")
        # the same pid with another start time is another process: its writer is gone
        _refuse_live_writer(_written_by(live.pid, started - 3600), tmp_path / "i.json")
    finally:
        live.kill()
        live.wait()
    _refuse_live_writer(_written_by(live.pid, started), tmp_path / "i.json")  # dead now


def test_an_intent_is_json_the_next_process_reads(settings):
    path = intent_path(settings, "silver")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**INTENT, "layer": "silver"}))
    assert publish_intent(settings, "silver")["build_id"] == "b2"
    assert publish_intent(settings, "gold") is None
