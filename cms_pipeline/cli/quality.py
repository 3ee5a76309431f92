"""`cms-pipeline check LAYER`: run a layer's Soda gate, or show its history."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.04 s; the gate imports Soda itself,
# only when it scans (measured 2026-12-08, 2 cores).

from __future__ import annotations

import json
from typing import Annotated

import typer

from cms_pipeline.cli.common import (
    JsonOption,
    LakeOption,
    ProfileOption,
    emit,
    lake_writer,
    out,
    settings_for,
    table,
)

# each outcome of quality.results.CheckResult (not imported here: the CLI starts without
# Soda); a table whose files are not delivered yet has its checks shown dimmed, not run
_STYLE = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red", "not delivered": "dim"}

LayerArg = Annotated[str, typer.Argument(help="Layer to check: bronze, silver or gold.")]
SchemaOption = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="Schema to scan, e.g. a build schema `silver_build_<id>` (default: the published layer).",
    ),
]
TableOption = Annotated[
    list[str] | None, typer.Option("--table", "-t", help="Check only this table (repeatable).")
]
BatchOption = Annotated[
    str | None, typer.Option("--batch-id", help="Ingestion batch being checked (recorded).")
]
HistoryOption = Annotated[
    bool,
    typer.Option(
        "--history", help="Show stored results of earlier runs (trends) instead of checking."
    ),
]
LastOption = Annotated[int, typer.Option("--last", help="How many runs --history shows.")]


def _value(value) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _detail(check: dict) -> str:
    parts = [check["message"]] if check["message"] else []
    if check["failed_rows"]:
        parts.append("e.g. " + json.dumps(check["failed_rows"][0], default=str))
    return "; ".join(parts)


def render_gate(summary: dict) -> None:
    rows = [
        {
            "table": c["table"],
            "check": c["check"],
            "outcome": f"[{_STYLE[c['outcome']]}]{c['outcome']}[/]",
            "value": _value(c["value"]),
            "detail": _detail(c),
        }
        for c in sorted(summary["checks"], key=lambda c: (c["outcome"] == "pass", c["table"]))
    ]
    out.print(
        table(f"{summary['layer']} checks on {summary['schema']} (run {summary['run_id']})", rows)
    )
    out.print(gate_verdict(summary))


def gate_verdict(gate: dict) -> str:
    """One line: the layer's gate passed or failed on which schema, with its counts."""
    verdict = "[green]passed[/]" if gate["passed"] else "[red]FAILED: not to be published[/]"
    counts = ", ".join(f"{n} {o}" for o, n in gate["counts"].items() if n)
    return f"{gate['layer']} gate {verdict} on {gate['schema']} ({counts})"


def render_history(summary: dict) -> None:
    runs = [
        {
            **r,
            "passed": "[green]yes[/]" if r["passed"] else "[red]no[/]",
            "checked_at": str(r["checked_at"])[:19],
        }
        for r in summary["runs"]
    ]
    cols = ["checked_at", "layer", "schema", "passed", "pass", "warn", "fail", "error", "run_id"]
    out.print(table("Gate runs, newest first", runs, cols))
    moving = [
        t for t in summary["checks"] if any(s and s["outcome"] != "pass" for s in t["series"])
    ]
    trend_rows = [
        {
            "layer": t["layer"],
            "table": t["table"],
            "check": t["check"],
            "oldest -> newest": "  ".join(
                "-"
                if s is None
                else f"[{_STYLE[s['outcome']]}]{_value(s['value']) or s['outcome']}[/]"
                for s in t["series"]
            ),
        }
        for t in moving
    ]
    if trend_rows:
        out.print(table("Checks that warned or failed in these runs", trend_rows))


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_command(
        layer: LayerArg,
        schema: SchemaOption = None,
        tables: TableOption = None,
        batch_id: BatchOption = None,
        history: HistoryOption = False,
        last: LastOption = 10,
        lake: LakeOption = None,
        profile: ProfileOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Run the Soda checks of LAYER (soda_checks/LAYER/*.yml); exit 1 when the gate fails."""
        from cms_pipeline.quality import history as quality_history
        from cms_pipeline.quality import run_checks
        from cms_pipeline.quality.gate import LAYERS

        if layer not in LAYERS:
            raise typer.BadParameter(f"expected one of {', '.join(LAYERS)}", param_hint="LAYER")
        settings = settings_for(lake, profile)
        if history:
            emit(quality_history(settings, layer, last), as_json, render_history)
            return
        from cms_pipeline.spark import get_spark

        try:
            with lake_writer(settings, "check"):  # check results are stored in the lake
                gate = run_checks(
                    get_spark(settings),
                    settings,
                    layer,
                    schema=schema,
                    batch_id=batch_id,
                    tables=tables,
                )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        emit(gate.to_dict(), as_json, render_gate)
        if not gate.passed:
            raise typer.Exit(1)
