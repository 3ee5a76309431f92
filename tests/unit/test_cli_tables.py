"""Tables of the CLI's summaries (cms_pipeline/cli/common.py): numbers rounded to one
precision per column, and full width when stdout is not a terminal."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from cms_pipeline.cli import common, pipeline
from cms_pipeline.cli.common import decimals, stdout_console, table

# A leaderboard as H2O gives it (extra columns included): long model ids, metrics with
# 16 decimals.
LEADERBOARD = [
    {
        "model_id": "StackedEnsemble_BestOfFamily_1_AutoML_1_20261207_213000_with_a_long_tail",
        "auc": 0.8123456789012345,
        "logloss": 0.4567890123456789,
        "aucpr": 0.3456789012345678,
        "mean_per_class_error": 0.2345678901234567,
        "rmse": 0.3901234567890123,
        "mse": 0.1521963190184049,
        "training_time_ms": 48213,
        "predict_time_per_row_ms": 0.0312345678901234,
        "algo": "StackedEnsemble",
    },
    {
        "model_id": "GBM_grid_1_AutoML_1_20261207_213000_model_12",
        "auc": 0.8,
        "logloss": 0.4612345678901234,
        "aucpr": 0.3312345678901234,
        "mean_per_class_error": 0.2498765432109876,
        "rmse": 0.3923456789012345,
        "mse": 0.1539351234567890,
        "training_time_ms": 9120,
        "predict_time_per_row_ms": 0.0098765432109876,
        "algo": "GBM",
    },
]


def _render(renderable, terminal: bool = False, width: int | None = None) -> str:
    text = io.StringIO()
    console = stdout_console(text, terminal=terminal)
    if width:
        console = common.Console(file=text, width=width, force_terminal=True, color_system=None)
    console.print(renderable)
    return text.getvalue()


def test_a_wide_leaderboard_is_whole_and_rounded_when_stdout_is_a_file():
    text = _render(table("Leaderboard readmission_30d (top 5)", LEADERBOARD))
    assert "…" not in text and "mean_per_class_error" in text
    first = next(line for line in text.splitlines() if "with_a_long_tail" in line)
    # the whole row on one line: id and every metric, each to 4 decimals
    for value in ("0.8123", "0.4568", "0.3457", "0.2346", "0.3901", "0.1522", "0.03123"):
        assert value in first
    assert "0.81234" not in text and "0.8000" in text  # one precision per column
    assert len(first) > 160  # wider than the old fixed width: nothing squeezed


def test_in_a_narrow_terminal_text_folds_and_numbers_stay_whole():
    text = _render(table("Leaderboard", LEADERBOARD), width=110)
    assert all(len(line) <= 110 for line in text.splitlines())
    assert "…" not in text and "GBM " in text  # the last column is there
    for value in ("0.8123", "0.2346", "0.03123", "48213", "0.00988"):
        assert value in text  # numbers are never split across lines
    assert "StackedEnsemble_BestOfFamily_1_AutoML_1_20261207_213000_with_a_long_tail" not in text


@pytest.mark.parametrize(
    ("values", "places"),
    [
        ([0.8123456789012345, 0.5], 4),  # metrics
        ([0.0123456789012345], 5),  # small ones keep 4 significant digits
        ([9.312345678901234, 0.2], 2),
        ([86.21234567890123, 2.49], 1),
        ([200.7812345678901, 2.49], 0),
        ([3228.612345678901], 0),
        ([0.0, 0.0], 0),
        ([float("nan"), 0.25], 4),
    ],
)
def test_a_columns_decimals_follow_its_largest_number(values, places):
    assert decimals(values) == places


def test_cells_round_fractions_and_leave_whole_numbers_and_text_alone():
    rows = [
        {"year": 2008, "pmpm": Decimal("1234.5678"), "seconds": 2.4912345678901234, "ok": True},
        {"year": 2009, "pmpm": Decimal("87.1"), "seconds": None, "ok": False},
    ]
    text = _render(table("t", rows))
    assert "2008" in text and "2,008" not in text  # years, versions, ids: as they are
    assert "1,235" in text and "   87 " in text  # thousands separated, one precision
    assert "2.49" in text and "2.491" not in text and "True" in text


def test_the_run_summary_prints_its_leaderboard_and_stages_whole(monkeypatch):
    text = io.StringIO()
    monkeypatch.setattr(pipeline, "out", stdout_console(text, terminal=False))
    pipeline.render_summary(
        {
            "ok": True,
            "training": {
                "readmission_30d": {
                    "leader": LEADERBOARD[0]["model_id"],
                    "metrics": {"auc": 0.8123456789012345, "aucpr": 0.3456789012345678},
                    "decision": "promoted: first model",
                    "leaderboard": LEADERBOARD,
                }
            },
            "stages": [
                {
                    "name": "train readmission_30d",
                    "status": "ok",
                    "seconds": 123.45678901234567,
                    "cpu_seconds": 201.12345678901234,
                    "jit_seconds": 0.0,
                    "peak_mib": 4812.345678901234,
                }
            ],
        }
    )
    summary = text.getvalue()
    assert "mean_per_class_error" in summary and "…" not in summary
    assert "0.2346" in summary and "0.23456" not in summary
    stage = next(line for line in summary.splitlines() if "train readmission_30d" in line)
    assert "123 " in stage and "201 " in stage and "4,812" in stage and ".4567" not in stage
