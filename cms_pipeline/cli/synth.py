"""`cms-pipeline synth` (synthetic CMS files at any scale) and `cms-pipeline download` (CMS ZIPs)."""

# Its commands import what they use inside the command, so that `cms-pipeline --help` (about
# 0.45 s) stays fast: at the top they would add about 0.2 s (the generator and the
# downloader; measured 2026-12-08, 2 cores).

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from cms_pipeline.cli.common import JsonOption, LakeOption, console, emit, out, settings_for, table


def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the generated files.")],
    scale: Annotated[
        float, typer.Option(help="1.0 = one full CMS sample (116,352 beneficiaries); 0.001-20.")
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="Same seed, scale and samples: same bytes.")] = 0,
    samples: Annotated[int, typer.Option(help="Number of samples (Sample_1..Sample_K).")] = 1,
    as_zip: Annotated[
        bool, typer.Option("--zip", help="Write CMS-style ZIPs (one CSV each).")
    ] = False,
    corrupt: Annotated[
        list[str] | None,
        typer.Option(
            help="Also write broken copies under OUT/corrupt/KIND/ (repeatable, or 'all'): "
            "truncated_line, extra_column, renamed_column, bad_date, wrong_delimiter, "
            "non_utf8, duplicate_rows."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes generating chunks.")] = 2,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write synthetic DE-SynPUF samples: all eight files in CMS's exact layouts."""
    from cms_pipeline.synth.corruptions import KINDS, corrupt_file
    from cms_pipeline.synth.generator import MAX_SCALE, MIN_SCALE, generate

    if not MIN_SCALE <= scale <= MAX_SCALE:
        console.print(f"[red]--scale {scale}[/red]: use a value from {MIN_SCALE} to {MAX_SCALE}")
        raise typer.Exit(2)
    kinds = list(KINDS) if corrupt and "all" in corrupt else list(corrupt or [])
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        console.print(f"[red]--corrupt {', '.join(bad)}[/red]: choose from {', '.join(KINDS)}")
        raise typer.Exit(2)
    settings_for(lake)  # validates the configuration (contracts) before generating
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=as_json) as bar:
        tasks: dict[int, int] = {}

        def on_progress(sample: int, done: int, total: int) -> None:
            if sample not in tasks:
                tasks[sample] = bar.add_task(f"sample {sample} (chunks)", total=total)
            bar.update(tasks[sample], completed=done)

        files = generate(out_dir, scale, seed, samples, as_zip, on_progress, workers)
    rows = [{"file": name, **{k: v for k, v in info.items() if k != "path"}}
            for name, info in files.items()]  # fmt: skip
    broken = []
    for kind in kinds:
        target = out_dir / "corrupt" / kind
        target.mkdir(parents=True, exist_ok=True)
        for name, info in files.items():
            report = corrupt_file(info["path"], target / name, kind, seed)
            broken.append({k: v for k, v in report.items() if k != "duplicated_rows"})
    summary = {
        "out": str(out_dir), "scale": scale, "seed": seed, "samples": samples,
        "seconds": round(time.perf_counter() - started, 1), "files": rows, "corrupt": broken,
    }  # fmt: skip

    def render(s: dict) -> None:
        out.print(table(f"Generated in {s['out']} ({s['seconds']} s)", s["files"]))
        if s["corrupt"]:
            kinds = sorted({c["kind"] for c in s["corrupt"]})
            counts = [{"kind": k, "files": sum(c["kind"] == k for c in s["corrupt"]),
                       "folder": f"{s['out']}/corrupt/{k}"} for k in kinds]  # fmt: skip
            out.print(table("Broken copies (details with --json)", counts))

    emit(summary, as_json, render)


def download_cmd(
    samples: Annotated[str, typer.Option(help="Samples to fetch, e.g. 1-20 or 1,3,5.")] = "1",
    files: Annotated[
        str | None,
        typer.Option(help="beneficiary, inpatient, outpatient, carrier, pde (default: all)."),
    ] = None,
    to: Annotated[
        Path | None, typer.Option("--to", help="Landing folder (default: the profile's).")
    ] = None,
    parallel: Annotated[int | None, typer.Option(help="Files fetched at once.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Download list (default: config/downloads.yaml).")
    ] = None,
    lake: LakeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch CMS DE-SynPUF ZIPs: parallel, retried, resumable, each file only once."""
    from cms_pipeline import download as dl

    try:
        cfg = dl.load_download_config(config or dl.DOWNLOADS_FILE)
        items = dl.select(cfg, dl.parse_samples(samples), dl.parse_files(files))
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]Download list error[/red]: {exc}")
        raise typer.Exit(2) from exc
    landing = to or Path(settings_for(lake).landing)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=as_json) as bar:
        tasks = {item.name: bar.add_task(item.name, total=None) for item in items}

        def on_progress(name: str, done: int, total: int | None) -> None:
            bar.update(tasks[name], completed=done, total=total)

        results = dl.download(items, landing, cfg.retry, parallel or cfg.parallel, on_progress)
    summary = {"landing": str(landing), "files": results,
               "failed": sum(r["status"] == "failed" for r in results)}  # fmt: skip

    def render(s: dict) -> None:
        out.print(table(f"Downloads into {s['landing']}", s["files"],
                        ["file", "status", "bytes", "attempts", "error"]))  # fmt: skip

    emit(summary, as_json, render)
    if summary["failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("download")(download_cmd)
