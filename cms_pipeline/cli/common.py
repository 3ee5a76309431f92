"""Options and output helpers shared by every CLI command."""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cms_pipeline import lease
from cms_pipeline.config import ConfigError, Settings, load_settings

# Messages name files: never broken into lines (a path cut in two cannot be copied).
console = Console(stderr=True, soft_wrap=True)
UNLIMITED = 100_000  # columns: "as wide as it needs" for a console that is no terminal


def stdout_console(file: IO[str] | None = None, terminal: bool | None = None) -> Console:
    """The console of summaries. In a terminal rich fits them to its width; elsewhere (a
    file, a pipe, a CI log) nothing is folded or cut: tables keep their natural width and
    lines are not wrapped, whatever width the log is read at."""
    terminal = sys.stdout.isatty() if terminal is None else terminal
    if terminal:
        return Console(file=file)
    return Console(file=file, width=UNLIMITED, soft_wrap=True)


out = stdout_console()

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


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool)


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and not isinstance(value, numbers.Integral)


def decimals(values: list[Any]) -> int:
    """Decimals for a column of numbers, from its largest: 4 significant digits below 1
    (AUC 0.8123, MSE 0.01234), 3 above (9.30 s, 86.2 s, 201 s), none from 100 up."""
    largest = max((abs(float(v)) for v in values if math.isfinite(v)), default=0.0)
    if largest == 0:
        return 0
    digits = math.floor(math.log10(largest)) + 1
    return min(6, max(0, (4 if largest < 1 else 3) - digits))


def cell(value: Any, places: int | None = None) -> str:
    """A table cell: numbers with fractions to `places` decimals, thousands separated."""
    if value is None:
        return ""
    if places is not None and _is_fraction(value):
        return f"{float(value):,.{places}f}" if math.isfinite(value) else str(value)
    return str(value)


def table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Table:
    """A rich table of dict rows; columns default to the first row's keys. A column's
    numbers are rounded to one precision (`decimals`), right-aligned and never split;
    no cell is cut: in a narrow terminal long text folds onto more lines."""
    columns = columns or (list(rows[0]) if rows else [])
    t = Table(title=title, title_justify="left")
    cells: dict[str, list[str]] = {}
    for col in columns:
        values = [row.get(col) for row in rows]
        fractions = [v for v in values if _is_fraction(v)]
        places = decimals(fractions) if fractions else None
        cells[col] = [cell(v, places) for v in values]
        present = [v for v in values if v is not None]
        if present and all(_is_number(v) for v in present):
            width = max(len(c) for c in cells[col])
            t.add_column(col, overflow="fold", justify="right", min_width=width)
        else:
            t.add_column(col, overflow="fold")
    for i in range(len(rows)):
        t.add_row(*(cells[c][i] for c in columns))
    return t


def emit(summary: Any, as_json: bool, render=None) -> None:
    """JSON on stdout with --json; otherwise the human rendering (`render(summary)`)."""
    if as_json:
        out.print_json(json.dumps(summary, default=str))
    elif render is not None:
        render(summary)
    else:
        out.print(summary)


def serve_until_stopped(server) -> None:
    """Serve (a socketserver server) until Ctrl-C, then close its socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
