"""Options and output helpers shared by every CLI command."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cms_pipeline.config import ConfigError, Settings, load_settings

console = Console(stderr=True)
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
