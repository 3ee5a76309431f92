"""`cms-pipeline run`: the whole gated pipeline as one Prefect flow (ephemeral mode)."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.7 s (Prefect and the flows; measured
# 2026-12-08, 2 cores).

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape

from cms_pipeline.cli.common import (
    JsonOption,
    LakeOption,
    console,
    emit,
    out,
    settings_for,
    table,
    writes_lake,
)
from cms_pipeline.cli.progress import stage_progress

EXIT_WITH_REJECTIONS = 3  # published, but a file was refused (0 = clean, 1 = failed)


def exit_code(summary: dict) -> int:
    """0 clean, 1 failed, 3 published with rejections: what a scheduler needs to tell apart."""
    if not summary["ok"]:
        return 1
    return EXIT_WITH_REJECTIONS if summary.get("rejected_files") else 0


TrainOption = Annotated[
    str,
    typer.Option(
        "--train",
        help="Train 'missing' (use cases without a champion), 'always' (challengers), or 'never'.",
    ),
]


def render_summary(s: dict) -> None:
    ingest = s.get("ingest") or {}
    if ingest:
        t = ingest["totals"]
        out.print(
            f"[bold]Ingest[/bold]  {t['files']} files: {t['loaded']} loaded, "
            f"{t['duplicates']} already loaded, {t['rejected']} rejected; rows "
            f"{t['rows_read']:,} read = {t['rows_bronze']:,} bronze + "
            f"{t['rows_quarantined']:,} quarantined"
        )
    for r in s.get("rejected_files", []):
        where = f", line {r['line']}" if r.get("line") else ""
        out.print(
            f"[yellow bold]{r['status'].replace('_', ' ').title()}[/yellow bold]  "
            f"{escape(r['file'])}{where}: "
            f"{escape(str(r.get('problem')))}. {escape(str(r.get('hint') or ''))}"
        )
    if s.get("bronze_versions"):
        versions = ", ".join(f"{k} v{v}" for k, v in sorted(s["bronze_versions"].items()))
        out.print(f"[bold]Bronze[/bold]  {versions}")
    for layer, g in s.get("gates", {}).items():
        counts = ", ".join(f"{n} {o}" for o, n in g["counts"].items() if n)
        mark = "[green]passed[/green]" if g["passed"] else "[red]FAILED[/red]"
        out.print(f"[bold]Gate {layer}[/bold]  {mark} ({counts})")
        for c in g["checks"]:
            if c["outcome"] in ("warn", "fail", "error"):
                out.print(f"    {c['outcome']:5s} {c['table']}: {escape(str(c['check']))}")
        if absent := [c["table"] for c in g["checks"] if c["outcome"] == "not delivered"]:
            out.print(f"    not delivered (checks not run): {', '.join(absent)}")
    for layer, info in s.get("layers", {}).items():
        if info.get("up_to_date"):
            out.print(
                f"[bold]{layer.title()}[/bold]  up to date: published build "
                f"{info['published']['build_id']} already read these bronze versions with "
                "this code (--rebuild builds it again)"
            )
            continue
        b = info["build"]
        out.print(
            f"[bold]{layer.title()}[/bold]  published build {b['build_id']}: "
            f"{len(b['models'])} tables, {len(b['tests'])} dbt tests"
        )
    if s.get("exports"):
        out.print(f"[bold]Exports[/bold]  {', '.join(s['exports'].get('analytics', {}))}")
    for name, r in s.get("training", {}).items():
        m = r.get("metrics", {})
        out.print(
            f"[bold]Train {name}[/bold]  leader {r.get('leader')}: AUC {m.get('auc', float('nan')):.3f}"
            f", AUCPR {m.get('aucpr', float('nan')):.3f}; {escape(str(r.get('decision')))}"
        )
        board = r.get("leaderboard", [])[:5]
        if board:
            out.print(table(f"Leaderboard {name} (top 5)", board))
    for name, why in s.get("skipped", {}).items():
        out.print(f"[bold]Skip {name}[/bold]  {escape(why)}")
    for name, r in s.get("scoring", {}).items():
        out.print(
            f"[bold]Score {name}[/bold]  {r['rows']:,} rows as of {r.get('as_of')} with model "
            f"v{r['model_version']} -> {r['predictions_table']}"
        )
        for d in r.get("monitoring", []):
            out.print(f"    PSI {d['psi']:.4f} ({d['level']}) against {escape(d['against'])}")
    if s.get("stages"):
        out.print(
            table(
                "Stages",
                s["stages"],
                ["name", "status", "seconds", "cpu_seconds", "jit_seconds", "peak_mib"],
            )
        )
    if s["ok"] and s.get("rejected_files"):
        out.print(
            f"[yellow bold]Pipeline finished, with {len(s['rejected_files'])} rejected "
            "file(s): every gate passed on the rest.[/yellow bold]"
        )
    elif s["ok"]:
        out.print("[green bold]Pipeline finished: every gate passed.[/green bold]")
    else:
        out.print(
            f"[red bold]Pipeline stopped at {s['stopped_at']}[/red bold]\n{escape(s['reason'])}"
        )


def register(app: typer.Typer) -> None:
    @app.command("run")
    @writes_lake("run")
    def run_command(
        source: Annotated[
            str | None,
            typer.Argument(help="Landing folder or URI (default: the bundled sample data)."),
        ] = None,
        lake: LakeOption = None,
        train: TrainOption = "missing",
        rebuild: Annotated[
            bool,
            typer.Option(
                "--rebuild",
                help="Build silver and gold even when nothing changed since the published builds.",
            ),
        ] = False,
        as_json: JsonOption = False,
    ):
        """Run the whole gated pipeline: ingest, bronze gate, silver, gate, gold, gate,
        exports, training where no champion exists yet, and batch scoring. When no
        file is new and the code is unchanged, the published silver and gold are kept.

        Runs as a Prefect flow in ephemeral mode (no server to start). Exit status: 0
        when everything was clean; 1 when a gate (or a stage) failed, which stops what
        follows and leaves the published layers untouched; 3 when the run published but
        a file was refused by its contract (the summary names it and why). Kinds of file
        not delivered yet are empty tables downstream, named "not delivered" by the gates.
        """
        if train not in ("missing", "always", "never"):
            raise typer.BadParameter("use missing, always or never", param_hint="--train")
        settings = settings_for(lake)
        from cms_pipeline.stack import running_api_url

        api_url = running_api_url(settings)
        if api_url:  # `cms-pipeline up` runs for this lake: the run shows in its UI
            os.environ["PREFECT_API_URL"] = api_url
        else:  # ephemeral mode, with a home of its own (never the `up` server's database)
            prefect_home = settings.metadata_path("prefect-ephemeral")
            prefect_home.mkdir(parents=True, exist_ok=True)
            os.environ.setdefault("PREFECT_HOME", str(prefect_home))
        from flows.pipeline import pipeline_flow

        console.print(
            f"[dim]Starting the pipeline flow ({'Prefect server ' + api_url if api_url else 'Prefect ephemeral mode'})...[/dim]"
        )
        with stage_progress(console):
            summary = pipeline_flow(source=source, lake=lake, train=train, rebuild=rebuild)
        emit(summary, as_json, render_summary)
        if code := exit_code(summary):
            raise typer.Exit(code)
