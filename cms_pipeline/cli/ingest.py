"""`cms-pipeline ingest`: land raw CMS files into Delta bronze."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.12 s (landing, compaction and
# retraction; measured 2026-12-08, 2 cores).

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
from cms_pipeline.ingest import IngestReport, ingest

# `cms-pipeline ingest` exits 0 when every file is in bronze, 1 when a file broke an
# expectation of its contract, and this when files were refused (now or by an earlier
# run) or are still being copied in, while every other file was loaded.
EXIT_REJECTIONS = 3

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
        f"{t['rejected']} rejected, {t['rejected_before']} rejected before (skipped), "
        f"{t['unsettled']} still being copied (read next run). Rows: {t['rows_read']:,} read "
        f"= {t['rows_bronze']:,} bronze + {t['rows_quarantined']:,} quarantined."
    )
    for f in report.files:
        if f.status == "rejected_before":
            continue  # said below, with the reason
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
    for label, files in [
        ("[red]rejected[/red]", report.rejected),
        ("[red]rejected before[/red]", report.rejected_before),
        ("[yellow]still being copied[/yellow]", report.unsettled),
    ]:
        for f in files:
            out.print(f"{label} {describe_error(f.error)}")
    if report.rejected_before:
        out.print(
            "[dim]Rejected files are not read again: land corrected bytes, or "
            "`cms-pipeline landing retry FILE` to read one again.[/dim]"
        )
    for name in report.ignored:
        out.print(f"[dim]ignored {name}: no contract in config/sources matches its name[/dim]")


def describe_error(e: dict) -> str:
    """`file, line L, column C: problem [kind]. hint` from IngestError.to_dict()."""
    where = e["file"] + (f", line {e['line']}" if e.get("line") else "")
    where += f", column {e['column']}" if e.get("column") else ""
    kind = escape(f"[{e.get('kind', 'invalid')}]")
    return f"{escape(where)}: {escape(e['problem'])} {kind}. {escape(e['hint'])}"


def exit_code(report: IngestReport) -> int:
    if any(f.expectation_failures for f in report.files):
        return 1
    return 0 if report.clean else EXIT_REJECTIONS


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    @writes_lake("ingest")
    def ingest_command(
        source: SourceArg = None, lake: LakeOption = None, as_json: JsonOption = False
    ):
        """Load CMS DE-SynPUF files (CSV or CMS ZIPs) into Delta bronze tables.

        Every row read lands in bronze or in quarantine (with file, line, column and
        reason); the same bytes twice are a no-op; a file whose header differs from its
        contract is handled by the contract's on_schema_change policy. Each batch is
        profiled and compared with the table's previous state (JSON and HTML reports).
        A file refused by its contract is recorded once and not read again (see
        `cms-pipeline landing`); a file still being copied in is read on the next run.
        Exits 0 when every file is in bronze, 1 when a file broke an expectation of its
        contract, 3 when files were refused (now or before) or are still being copied.
        """
        settings = settings_for(lake)
        report = run_ingest(settings, source, quiet=as_json)
        emit(report.to_dict(), as_json, lambda _: render_report(report))
        if code := exit_code(report):
            raise typer.Exit(code)

    @app.command("compact")
    @writes_lake("compact")
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

    landing = typer.Typer(
        help="Files in the landing area that were refused: list them, read one again.",
        no_args_is_help=True,
    )
    app.add_typer(landing, name="landing")

    @landing.command("list")
    def landing_list(lake: LakeOption = None, as_json: JsonOption = False):
        """Files refused by their contract and not read again since, with the reason."""
        from cms_pipeline.ingest.landing import rejected_files

        rows = rejected_files(settings_for(lake))

        def render(rows):
            if not rows:
                out.print("No rejected files.")
                return
            for r in rows:
                when = f"{r['rejected_at']:%Y-%m-%d %H:%M} UTC"
                out.print(f"[red]rejected[/red] {when} {describe_error(r)}")
            out.print("[dim]Read one again: `cms-pipeline landing retry FILE`.[/dim]")

        emit(rows, as_json, render)

    @landing.command("retry")
    @writes_lake("landing retry")
    def landing_retry(
        file: Annotated[
            str,
            typer.Argument(help="The file: a path or URI, or its name in the landing area."),
        ],
        source: Annotated[
            str | None,
            typer.Option(help="Landing area holding FILE (default: the configured one)."),
        ] = None,
        lake: LakeOption = None,
        as_json: JsonOption = False,
    ):
        """Read a rejected file again (after fixing its contract, or to see the reason
        again). Exits 0 when it loads, 3 when it is refused again or still being copied."""
        from cms_pipeline.ingest.landing import LandingError, find_delivery, retry

        settings = settings_for(lake)
        try:
            delivery = find_delivery(settings, file, source)
        except LandingError as exc:
            console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from exc
        report = IngestReport(source or settings.landing, [retry(settings, delivery)])
        emit(report.to_dict(), as_json, lambda _: render_report(report))
        if code := exit_code(report):
            raise typer.Exit(code)
