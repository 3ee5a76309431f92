"""`cms-pipeline up` / `down` (the local Prefect stack) and `deploy` (to any Prefect server)."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.03 s; the stack imports Prefect's
# client itself, only when it calls the server (measured 2026-12-08, 2 cores).

from __future__ import annotations

from typing import Annotated

import typer

from cms_pipeline.cli.common import JsonOption, LakeOption, console, emit, out, settings_for

PortOption = Annotated[
    int, typer.Option("--port", help="Port of the Prefect server and UI (0: a free one).")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the server to answer.")
]
SchedulesOption = Annotated[
    bool,
    typer.Option(
        "--schedules/--no-schedules",
        help="Run the schedules of prefect.yaml (--no-schedules: the server's scheduler is "
        "off, so only triggers and manual runs start flows).",
    ),
]


def _render_deployed(report: dict) -> None:
    for name in report["deployed"]:
        out.print(f"  deployed {name}")
    for name, why in report["skipped"].items():
        out.print(f"  [yellow]not deployed[/yellow] {name}: {why}")


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up_command(
        lake: LakeOption = None,
        port: PortOption = 4200,
        timeout: TimeoutOption = 300.0,
        schedules: SchedulesOption = True,
        as_json: JsonOption = False,
    ):
        """Start a local Prefect server (SQLite), a worker, every deployment and the
        dashboard (`cms-pipeline web` on a free port).

        The deployments are made by `prefect deploy --all` on prefect.yaml, with their
        schedules and triggers; the server's database and logs live under the metadata
        folder (prefect/). Running it again while the stack is up refreshes the
        deployments. Stop everything with `cms-pipeline down`.
        """
        from cms_pipeline import stack

        settings = settings_for(lake)
        with console.status("starting the Prefect server, work pool, deployments and worker"):
            try:
                state, report = stack.up(
                    settings, port=port or None, timeout=timeout, with_schedules=schedules
                )
            except (RuntimeError, TimeoutError) as exc:
                console.print(f"[red]cms-pipeline up failed[/red]: {exc}")
                raise typer.Exit(1) from exc
        summary = {**state.to_dict(), **report}

        def render(_):
            out.print(f"Prefect UI: [bold]{state.ui_url}[/bold]  (API {state.api_url})")
            out.print(f"Dashboard: [bold]{state.web_url}[/bold]")
            _render_deployed(report)
            for p in state.processes:
                out.print(f"  {p.name}: pid {p.pid}, log {p.log}")
            out.print("Stop with: cms-pipeline down" + (f" --lake {lake}" if lake else ""))

        emit(summary, as_json, render)

    @app.command("deploy")
    def deploy_command(
        api_url: Annotated[
            str | None,
            typer.Option(
                "--api-url",
                envvar="PREFECT_API_URL",
                help="Prefect API of a running server (default: $PREFECT_API_URL).",
            ),
        ] = None,
        as_json: JsonOption = False,
    ):
        """Create the work pool and queues, then `prefect deploy --all` (prefect.yaml:
        deployments, schedules, triggers) on a running Prefect server.

        For a server that `cms-pipeline up` did not start (the containers of
        docker/compose.yaml, a shared server); `up` does this itself.
        """
        from cms_pipeline import stack

        if not api_url:
            console.print("[red]No Prefect server[/red]: pass --api-url or set PREFECT_API_URL.")
            raise typer.Exit(2)
        try:
            report = stack.deploy_to(api_url)
        except RuntimeError as exc:
            console.print(f"[red]cms-pipeline deploy failed[/red]: {exc}")
            raise typer.Exit(1) from exc
        emit(report, as_json, lambda r: _render_deployed(r))
        if report["skipped"]:
            raise typer.Exit(1)

    @app.command("down")
    def down_command(lake: LakeOption = None, as_json: JsonOption = False):
        """Stop the server and worker that `cms-pipeline up` started (nothing else)."""
        from cms_pipeline import stack

        stopped = stack.down(settings_for(lake))
        emit(
            {"stopped": stopped},
            as_json,
            lambda s: out.print(
                "stopped " + ", ".join(s["stopped"]) if s["stopped"] else "nothing to stop"
            ),
        )
