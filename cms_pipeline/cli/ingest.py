"""`cms-pipeline ingest`: land raw CMS files into Delta bronze."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cms_pipeline.cli.common import JsonOption, LakeOption, console, emit, out, settings_for, table
from cms_pipeline.ingest import IngestReport, ingest

SourceArg = Annotated[
    str | None,
    typer.Argument(
        help="Folder or s3:// gs:// abfs:// URI holding CMS files (CSV or ZIP). "
        "Default: the configured landing area (the bundled sample data)."
    ),
]


def run_ingest(settings, source: str | None, quiet: bool = False) -> IngestReport:
    """Ingest with a progress bar on stderr (shared with `cms-pipeline run`)."""
    progress = Progress(
        TextColumn("[bold]ingest[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("discovering files", total=None)

        def started(deliveries):
            progress.update(task, total=len(deliveries), description="files")

        def done(delivery, result):
            progress.update(task, advance=1, description=delivery.name)

        return ingest(settings, source, on_file=done, on_start=started)


def render_report(report: IngestReport) -> None:
    rows = [
        {
            "file": f.file.rsplit("/", 1)[-1],
            "table": f.table,
            "status": f.status,
            "rows read": f"{f.rows_read:,}",
            "bronze": f"{f.rows_bronze:,}",
            "quarantined": f"{f.rows_quarantined:,}",
            "version": f.bronze_version,
            "s": f.seconds,
        }
        for f in report.files
    ]
    out.print(table(f"Row accounting for {report.source}", rows))
    t = report.totals()
    out.print(
        f"{t['files']} files: {t['loaded']} loaded, {t['duplicates']} already loaded (no-op), "
        f"{t['rejected']} rejected. Rows: {t['rows_read']:,} read = {t['rows_bronze']:,} bronze "
        f"+ {t['rows_quarantined']:,} quarantined."
    )
    for f in report.files:
        for w in f.warnings:
            out.print(f"[yellow]warning[/yellow] {f.file}: {w}")
    for f in report.rejected:
        e = f.error
        where = e["file"] + (f", line {e['line']}" if e.get("line") else "")
        where += f", column {e['column']}" if e.get("column") else ""
        out.print(f"[red]rejected[/red] {where}: {e['problem']}. {e['hint']}")
    for name in report.ignored:
        out.print(f"[dim]ignored {name}: no contract in config/sources matches its name[/dim]")


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_command(
        source: SourceArg = None, lake: LakeOption = None, as_json: JsonOption = False
    ):
        """Load CMS DE-SynPUF files (CSV or CMS ZIPs) into Delta bronze tables.

        Every row read lands in bronze or in quarantine (with file, line, column and
        reason); the same bytes twice are a no-op; a file whose header differs from its
        contract is handled by the contract's on_schema_change policy. Exits 1 when a
        file was rejected.
        """
        settings = settings_for(lake)
        report = run_ingest(settings, source, quiet=as_json)
        emit(report.to_dict(), as_json, lambda _: render_report(report))
        if report.rejected:
            raise typer.Exit(1)
