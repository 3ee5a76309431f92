"""`cms-pipeline ingest`: land raw CMS files into Delta bronze."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
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
            out.print(f"[yellow]warning[/yellow] {f.file}: {escape(w)}")
        for e in f.expectation_failures:
            out.print(f"[red]expectation failed[/red] {f.file}: {escape(e)}")
    changed = [f for f in report.loaded if f.changes]
    if changed:
        out.print("\n[bold]What changed[/bold] (difference from each table's previous state)")
        for f in changed:
            flagged = [c for c in f.changes[1:] if c.lstrip().startswith("!")]
            out.print(
                f"  {f.changes[0]}"
                + (f"  [dim]{len(flagged)} columns shifted[/dim]" if flagged else "")
            )
            for line in flagged[:3]:
                out.print(f"    {escape(line.strip())}")
        out.print(
            f"[dim]Profiles and full reports: {changed[-1].report_html.rsplit('/', 1)[0]}/[/dim]"
        )
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
        contract is handled by the contract's on_schema_change policy. Each batch is
        profiled and compared with the table's previous state (JSON and HTML reports).
        Exits 1 when a file was rejected or broke an expectation of its contract.
        """
        settings = settings_for(lake)
        report = run_ingest(settings, source, quiet=as_json)
        emit(report.to_dict(), as_json, lambda _: render_report(report))
        if report.rejected or any(f.expectation_failures for f in report.files):
            raise typer.Exit(1)

    @app.command("compact")
    def compact_command(
        tables: Annotated[
            list[str] | None, typer.Argument(help="Bronze tables (default: all).")
        ] = None,
        lake: LakeOption = None,
        as_json: JsonOption = False,
    ):
        """Rewrite small bronze files into one new batch per table (older versions stay
        readable; Spark picks up the change at the next sync)."""
        from dataclasses import asdict

        from cms_pipeline.bronze_catalog import bronze_tables
        from cms_pipeline.ingest.maintenance import compact

        settings = settings_for(lake)
        results = [asdict(compact(settings, t)) for t in tables or bronze_tables(settings)]
        emit(results, as_json, lambda rows: out.print(table("Compaction", rows)))
