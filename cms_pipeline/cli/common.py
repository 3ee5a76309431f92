"""Options and output helpers shared by every CLI command."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cms_pipeline import lease
from cms_pipeline.config import ConfigError, Settings, load_settings

# Messages name files: never broken into lines (a path cut in two cannot be copied).
console = Console(stderr=True, soft_wrap=True)
# Wide enough for tables when output goes to a file or a CI log.
out = Console(width=None if sys.stdout.isatty() else 160)

LakeOption = Annotated[
    str | None,
    typer.Option(
        "--lake", help="Where the lake lives (path or s3://, gs://, abfs:// URI); overrides config."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a machine-readable JSON summary on stdout.")
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="Config profile (default: $CMS_PIPELINE_ENV or 'local')."),
]


def settings_for(lake: str | None = None, profile: str | None = None) -> Settings:
    try:
        return load_settings(lake=lake, profile=profile)
    except ConfigError as exc:
        console.print(f"[red]Configuration error[/red]\n{exc}")
        raise typer.Exit(2) from exc


def _lease_note(message: str) -> None:
    console.print(f"[yellow]{escape(message)}[/yellow]")


def _lease_busy(exc: lease.LeaseBusy) -> None:
    console.print(
        f"[red]The lake is busy.[/red] {escape(str(exc))}.\n"
        "Run this again when that command has finished, or let writers wait longer "
        "(lease.wait_seconds in config/pipeline.yaml, or $CMS_LEASE_WAIT_SECONDS)."
    )
    raise typer.Exit(lease.LEASE_BUSY_EXIT) from exc


def writes_lake(command: str):
    """Decorator of a command that writes to the lake (under `@app.command`): it holds
    the lake's writer lease while it runs (cms_pipeline/lease.py). A second writer waits
    up to lease.wait_seconds, saying who holds it, then exits with LEASE_BUSY_EXIT."""
    return lease.writes_lake(
        f"cms-pipeline {command}",
        settings_for=settings_for,
        on_busy=_lease_busy,
        notify=_lease_note,
    )


@contextmanager
def lake_writer(settings: Settings, command: str) -> Iterator[None]:
    """`writes_lake` for part of a command (one that also has a read-only mode)."""
    try:
        with lease.lake_lease(settings, f"cms-pipeline {command}", notify=_lease_note):
            yield
    except lease.LeaseBusy as exc:
        _lease_busy(exc)


def table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    """A rich table of dict rows; columns default to the first row's keys."""
    columns = columns or (list(rows[0]) if rows else [])
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return t


def emit(summary: Any, as_json: bool, render=None) -> None:
    """JSON on stdout with --json; otherwise the human rendering (`render(summary)`)."""
    if as_json:
        out.print_json(json.dumps(summary, default=str))
    elif render is not None:
        render(summary)
    else:
        out.print(summary)
