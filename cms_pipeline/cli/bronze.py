"""`cms-pipeline bronze retract`: take a committed delivery back out of bronze."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast; here that adds nothing today only because cli/ingest.py already loads
# cms_pipeline.ingest at the top (measured 2026-12-08, 2 cores).

from __future__ import annotations

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


def register(app: typer.Typer) -> None:
    bronze = typer.Typer(help="Bronze upkeep: retract a delivery.", no_args_is_help=True)
    app.add_typer(bronze, name="bronze")

    @bronze.command("retract")
    @writes_lake("bronze retract")
    def retract_command(
        target: Annotated[
            str,
            typer.Argument(
                help="The delivery: its batch id, its file (path below the landing area, "
                "or name when only one delivery has it), or its content hash.",
                metavar="BATCH|FILE",
            ),
        ],
        lake: LakeOption = None,
        as_json: JsonOption = False,
    ):
        """Remove a committed delivery from the current bronze version (earlier versions
        still read it), record it in the file ledger and the table's Delta history, so
        the next `cms-pipeline run` or `transform` builds silver and gold without it.

        For a delivery that failed the bronze gate: retract it, fix or replace the file,
        run again. The same bytes landing again are not read (`landing retry` does).
        Exits 2 when TARGET names no delivery, or more than one.
        """
        from cms_pipeline.ingest.retract import RetractError, retract

        settings = settings_for(lake)
        try:
            done = [r.to_dict() for r in retract(settings, target)]
        except RetractError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from exc

        def render(rows: list[dict]) -> None:
            columns = ["source_file", "table", "batch_id", "rows_bronze", "rows_quarantined"]
            out.print(table("Retracted", rows, [*columns, "bronze_version", "status"]))
            out.print(
                "[dim]The next `cms-pipeline run` (or `transform`) rebuilds silver and gold "
                "without it.[/dim]"
            )

        emit(done, as_json, render)
