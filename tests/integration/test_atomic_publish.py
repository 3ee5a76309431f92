"""A publish killed half way is completed by the next command; predictions are replaced
whole. Real processes, really killed (SIGKILL), each on a lake of its own
(tests/integration/publish_child.py): the test process never opens that lake's metastore.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.publish.publishing import intent_path, publish_history

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("publish_child.py")
CLI = Path(sys.executable).with_name("cms-pipeline")


def _child(command: str, lake: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHILD), command, str(lake)],
        capture_output=True,
        text=True,
        timeout=900,
    )


def _seen(done: subprocess.CompletedProcess) -> dict:
    """The reader's JSON line of a child's output."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no reader output:\n{done.stdout}\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])


def _builds(seen: dict) -> dict[str, set[str]]:
    """{view: the builds its rows come from} of the publish's views."""
    return {
        view: {row["build_id"] for row in rows}
        for view, rows in seen["views"].items()
        if not view.startswith("predictions_")
    }


def _predictions(seen: dict) -> set[str]:
    return {row["v"] for row in seen["views"]["predictions_tiny"]}


def test_a_killed_publish_is_completed_and_one_that_cannot_be_is_undone(tmp_path):
    lake = tmp_path / "lake"
    settings = load_settings(lake=str(lake))

    killed = _child("publish-killed", lake)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    intent = json.loads(intent_path(settings, "gold").read_text())
    assert intent["build_id"] == "b2"
    assert [h["build_id"] for h in publish_history(settings, "gold")] == ["b1", "b0"]

    # a reader of the killed publish (readers take no lease and complete nothing): half
    # old, half new is what the intent is there for; then predictions v2 killed
    mixed = _child("read-then-predictions-killed", lake)
    assert mixed.returncode == -signal.SIGKILL, mixed.stderr[-3000:]
    seen = _seen(mixed)
    assert _builds(seen) == {"t_a": {"b2"}, "t_b": {"b1"}, "t_old": {"b1"}}
    assert _predictions(seen) == {"v1"}

    # the next writing command (here: an ingest of nothing) takes the lease and completes it
    empty = tmp_path / "empty"
    empty.mkdir()
    follow_up = subprocess.run(
        [str(CLI), "ingest", str(empty), "--lake", str(lake)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert follow_up.returncode == 0, follow_up.stdout[-2000:] + follow_up.stderr[-3000:]
    assert "completing the interrupted publish of gold build b2" in follow_up.stderr
    assert not intent_path(settings, "gold").exists()
    history = [h["build_id"] for h in publish_history(settings, "gold")]
    assert history == ["b2", "b1"]  # recorded once; b0 is no longer kept

    # then b3's publish fails half way (its build lacks a table its record names)
    failed = _child("read-then-publish-fails", lake)
    assert failed.returncode == 1 and "gold_build_b3`.`t_d` cannot be found" in failed.stderr
    seen = _seen(failed)
    # every view of the layer reads the new build; the view b2 no longer has is gone
    assert _builds(seen) == {"t_a": {"b2"}, "t_b": {"b2"}, "t_c": {"b2"}}
    # the build being published and the one before are kept, the older one dropped
    builds = {s for s in seen["schemas"] if s.startswith("gold_build_")}
    assert builds == {"gold_build_b1", "gold_build_b2"}
    # predictions: the view never left v1 (the killed v2 is a version nobody reads), and
    # publishing gold left the predictions view alone
    assert _predictions(seen) == {"v1"}
    assert seen["prediction_versions"] == ["predictions_tiny__v1", "predictions_tiny__v2"]

    # b3 cannot be rolled forward: the next writer undoes it, back to b2 as history says
    assert json.loads(intent_path(settings, "gold").read_text())["build_id"] == "b3"
    undone = _child("complete-then-read", lake)
    assert undone.returncode == 0, undone.stderr[-3000:]
    assert "could not be completed" in undone.stderr and "undone" in undone.stderr
    seen = _seen(undone)
    assert _builds(seen) == {"t_a": {"b2"}, "t_b": {"b2"}, "t_c": {"b2"}}
    assert {"gold_build_b1", "gold_build_b2"} <= set(seen["schemas"])  # rollback kept
    assert not intent_path(settings, "gold").exists()
    assert [h["build_id"] for h in publish_history(settings, "gold")] == ["b2", "b1"]


def test_predictions_are_replaced_as_a_view_on_versions(spark, tmp_path):
    """Each replacement is a new version table and one view update; the version the view
    read before is kept (a reader may be half way through it), older ones are dropped."""
    import pandas as pd

    from models_ml.predictions_store import predictions_versions, replace_predictions

    public = "atomic_publish_test.predictions_demo"
    for version in ("v1", "v2", "v3"):
        rows = spark.createDataFrame(pd.DataFrame({"id": [1, 2], "v": version}))
        table = replace_predictions(spark, public, rows, version)
        assert {r.v for r in spark.table(public).collect()} == {version}
        assert spark.table(table).count() == rows.count()
    assert spark.catalog.getTable(public).tableType == "VIEW"
    assert predictions_versions(spark, public) == [
        "predictions.predictions_demo__v2",
        "predictions.predictions_demo__v3",
    ]
