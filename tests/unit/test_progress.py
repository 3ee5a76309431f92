"""Live progress of the pipeline's stages (cms_pipeline/cli/progress.py)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cms_pipeline import stages
from cms_pipeline.cli.progress import stage_progress
from cms_pipeline.stages import StageLog


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, force_terminal=terminal, width=120, color_system=None), text


def test_outside_a_terminal_each_stage_gets_a_start_and_an_end_line():
    console, text = _console(terminal=False)
    log = StageLog()
    with stage_progress(console):
        with log.stage("ingest"):
            pass
        with pytest.raises(RuntimeError), log.stage("silver"):
            raise RuntimeError("dbt failed")
    lines = text.getvalue().splitlines()
    assert [line.split(" ", 1)[1].split(" in ")[0] for line in lines] == [
        "ingest: started",
        "ingest: ok",
        "silver: started",
        "silver: failed",
    ]
    ingest = log.stages[0]
    assert f"in {ingest.seconds:.1f} s (CPU {ingest.cpu_seconds:.1f} s" in lines[1]


def test_in_a_terminal_a_finished_stage_leaves_its_outcome_line():
    console, text = _console(terminal=True)
    with stage_progress(console), StageLog().stage("gold"):
        pass
    assert "gold: ok in " in text.getvalue()
    assert "started" not in text.getvalue()  # the running line is transient


def test_a_broken_listener_never_stops_a_stage_and_listeners_end_with_the_block():
    def broken(event, stage):
        raise ValueError("display gone")

    log = StageLog()
    with stages.reporting_to(broken), log.stage("export"):
        pass
    assert log.stages[0].status == "ok"
    console, text = _console(terminal=False)
    with stage_progress(console):
        pass
    with log.stage("after"):
        pass
    assert text.getvalue() == "" and not stages._LISTENERS
