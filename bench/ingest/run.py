"""Benchmark: `cms-pipeline ingest` against raw CSV->Parquet converters, same files, same run.

    python -m bench.ingest.run [--copies 50] [--rounds 3]

Input: real CMS rows (sample_1 outpatient and beneficiary files) repeated to >100 MB.
Each method runs once per round, in turn; the fastest round of each is compared. The
project's ingest runs twice a round: before (the hand-written top-value counter) and
after (Apache DataSketches' frequent-items sketch); then the profile sketches alone are
compared on the same rows (bench/ingest/sketches.py). Each run's key figures are kept
with the last runs', since one run on a shared machine says little.
Results: bench/results/ingest.{json,md}.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import resource
import shutil
import sys
from pathlib import Path

from bench.common import RESULTS, commit, machine, run_measured, write_results
from bench.ingest.converters import METHODS
from bench.ingest.sketches import compare
from cms_pipeline.config import PROJECT_ROOT

WORK = PROJECT_ROOT / "bench" / "work" / "ingest"
BEFORE = "cms-pipeline ingest, before: hand-written top-value counter"
KEPT_RUNS = 6  # earlier runs' key figures kept in the results
SOURCES = [
    "sample_1/DE1_0_2008_to_2010_Outpatient_Claims_Sample_1.csv",
    "sample_1/DE1_0_2008_Beneficiary_Summary_File_Sample_1.csv",
]


def build_input(copies: int) -> tuple[Path, int, int]:
    src = WORK / "input"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    rows = 0
    for rel in SOURCES:
        header, *lines = (
            (PROJECT_ROOT / "data/synpuf" / rel).read_bytes().rstrip(b"\r\n").split(b"\r\n")
        )
        body = b"\r\n".join(lines) + b"\r\n"
        with (src / Path(rel).name).open("wb") as f:
            f.write(header + b"\r\n")
            for _ in range(copies):
                f.write(body)
        rows += len(lines) * copies
    size = sum(p.stat().st_size for p in src.iterdir())
    return src, rows, size


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, src: Path, rows: int, mb: float) -> dict:
    out = WORK / "out"
    shutil.rmtree(out, ignore_errors=True)
    before = _children_cpu()
    m = run_measured([sys.executable, "-m", "bench.ingest.converters", name, str(src), str(out)])
    m.pop("stdout")
    run = {
        "method": name,
        **m,
        # user+sys of the run's processes: the machine is shared, so wall time alone
        # says little; CPU time says what the work costs. Spark's JVM is not a process
        # the run waits for, so its CPU time is not counted.
        "cpu_seconds": None if name.startswith("Spark") else round(_children_cpu() - before, 2),
        "mb_per_s": round(mb / m["seconds"], 1),
        "rows_per_s": round(rows / m["seconds"]),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    print(
        f"{name:55s} {m['seconds']:7.2f} s {run['mb_per_s']:7.1f} MB/s "
        f"CPU {run['cpu_seconds'] or '-'} s peak {m['peak_mib']} MiB load {run['load_average_after']}"
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=40, help="times the real rows are repeated")
    parser.add_argument(
        "--sketch-rounds", type=int, default=5, help="rounds of the sketches-alone comparison"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds over the methods (Spark, slow, runs once); each method's fastest "
        "round counts, so that a burst of load from other work on the machine hits "
        "every method alike",
    )
    args = parser.parse_args()
    described = machine()  # the load average before the runs
    # Measure the package as installed: pip compiles its modules, an environment with
    # PYTHONDONTWRITEBYTECODE would otherwise recompile them in every measured run.
    compileall.compile_dir(PROJECT_ROOT / "cms_pipeline", quiet=1)
    src, rows, size = build_input(args.copies)
    mb = size / 1e6
    runs: dict[str, list[dict]] = {name: [] for name in METHODS}
    for round_ in range(args.rounds):
        for name in METHODS:
            if round_ == 0 or not name.startswith("Spark"):
                runs[name].append(measure(name, src, rows, mb))
    results = []
    for measured in runs.values():
        best = min(measured, key=lambda r: r["seconds"])
        results.append(
            {
                **best,
                "peak_mib": max(r["peak_mib"] for r in measured),  # of every round
                "rounds_seconds": [r["seconds"] for r in measured],
                "rounds_cpu_seconds": [r["cpu_seconds"] for r in measured],
            }
        )
    ours = results[-1]
    by = {r["method"].split()[0]: r for r in results}
    before = next(r for r in results if r["method"] == BEFORE)
    fastest = max(results[:2], key=lambda r: r["mb_per_s"])
    ratios = {
        "vs fastest raw converter": round(ours["mb_per_s"] / fastest["mb_per_s"], 2),
        "vs pandas loop": round(ours["mb_per_s"] / by["pandas"]["mb_per_s"], 2),
        "vs Spark CSV reader": round(ours["mb_per_s"] / by["Spark"]["mb_per_s"], 2),
        "vs the same ingest before DataSketches": round(ours["mb_per_s"] / before["mb_per_s"], 2),
    }
    sketches = compare(src, rounds=args.sketch_rounds)
    runs = _earlier_runs() + [
        {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": commit(),
            "load_average_at_start": described["load_average_at_start"],
            "ingest_seconds_after_before": [ours["seconds"], before["seconds"]],
            "ingest_cpu_seconds_after_before": [ours["cpu_seconds"], before["cpu_seconds"]],
            "sketch_cpu_ratios": sketches["ratios"],
            "sketch_cpu_median_round_ratios": sketches["median_round_ratios"],
        }
    ]
    payload = {
        "machine": {**described, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "input": {"files": SOURCES, "copies": args.copies, "rows": rows, "megabytes": round(mb, 1)},
        "rounds": args.rounds,
        "results": results,
        "ratios": ratios,
        "sketches": sketches,
        "runs": runs[-KEPT_RUNS:],
    }
    lines = [
        "# Ingest benchmark",
        "",
        f"Input: {rows:,} real CMS rows ({mb:.0f} MB), {', '.join(Path(s).name for s in SOURCES)} "
        f"repeated {args.copies} times. Machine: {payload['machine']['cpus']} CPUs, "
        f"{payload['machine']['memory_gib']} GiB; load average at start "
        f"{payload['machine']['load_average_at_start']}, at end "
        f"{payload['machine']['load_average_at_end']} (1, 5, 15 minutes).",
        "",
        f"Each method ran once per round, {args.rounds} rounds (Spark once); the table shows "
        "each method's fastest round, the last column every round's seconds.",
        "",
        "| method | seconds | CPU s (user+sys) | MB/s | rows/s | peak MiB | load after "
        "| seconds of each round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *[
            f"| {r['method']} | {r['seconds']} | {r['cpu_seconds'] or '(JVM not counted)'} "
            f"| {r['mb_per_s']} | {r['rows_per_s']:,} | {r['peak_mib']} "
            f"| {r['load_average_after']} | {', '.join(map(str, r['rounds_seconds']))} |"
            for r in results
        ],
        "",
        "Ratios of cms-pipeline ingest throughput: "
        + ", ".join(f"{k}: {v}x" for k, v in ratios.items()),
        "",
        *_sketch_lines(sketches, args.sketch_rounds),
        *_runs_lines(payload["runs"]),
        "Ingest writes bronze Parquet with zstd level 1, columns other than ids handed over "
        "dictionary-encoded by the CSV reader (ids written plain), min/max statistics only "
        "on `_source_line`, one row group per parsed block of 16 MiB (the pyarrow baseline "
        "keeps 8 MiB blocks, faster for it here).",
        "",
        "Every method runs in a process of its own, timed from start to exit, imports "
        "included; the project's modules are byte-compiled first, as `pip install` does.",
        "",
        "Command: `python -m bench.ingest.run`.",
        "",
    ]
    write_results("ingest", payload, "\n".join(lines))
    print(ratios)


def _earlier_runs() -> list[dict]:
    try:
        return json.loads((RESULTS / "ingest.json").read_text()).get("runs", [])
    except (OSError, ValueError):
        return []


def _sketch_lines(sketches: dict, rounds: int) -> list[str]:
    accuracy = sketches["accuracy"]
    top = next(v for k, v in accuracy.items() if "frequent" in k and "used" in k)
    return [
        "## The profile sketches alone: hand-written against Apache DataSketches",
        "",
        f"The same values ingest profiles ({sketches['values_fed']:,} distinct values of "
        f"{sketches['batches_times_columns']} batch columns: each 16 MiB batch's distinct "
        f"values, with their counts) fed to each sketch; CPU seconds of this process per "
        f"pass over them, the least of {rounds} rounds of {sketches['passes']} passes "
        "(sketches in turn within a round).",
        "",
        "| sketch | for | CPU s | CPU s of each round | accuracy on these rows |",
        "|---|---|---:|---|---|",
        *[
            f"| {r['sketch']} | {r['kind']} | {r['cpu_seconds']} "
            f"| {', '.join(map(str, r['rounds_cpu_seconds']))} "
            f"| {_accuracy_text(accuracy.get(r['sketch']))} |"
            for r in sketches["results"]
        ],
        "",
        "CPU time of DataSketches over the hand-written sketch (above 1: slower), least "
        "round over least round: " + "; ".join(f"{k}: {v}x" for k, v in sketches["ratios"].items()),
        "",
        "The same, median of the rounds' ratios (each round runs the sketches back to back): "
        + "; ".join(f"{k}: {v}x" for k, v in sketches["median_round_ratios"].items()),
        "",
        "Used: the frequent-items sketch for top values (within about 10 % of the old "
        "counter's CPU, a millisecond or two a pass, which the whole ingest does not show; "
        "and its counts carry a "
        f"bound: {top['columns_with_exact_counts']} of {top['columns']} columns exact, the "
        f"largest bound {top['largest_bound']['rows']:,} rows on "
        f"{top['largest_bound']['column']}). Kept: KMV for distinct counts (HLL and CPC "
        "take one Python call per value, with no array update) and the fixed-bin histogram "
        "(its edges are the same for every batch, which the PSI and KS of batch "
        "differences need; no hand-written quantile sketch exists for KLL to replace, and "
        "KLL would add its CPU time above to every ingest).",
        "",
    ]


def _accuracy_text(acc: dict | None) -> str:
    if acc is None:
        return ""
    if "worst_relative_error" in acc:
        return f"worst relative error {acc['worst_relative_error']:.2%}"
    return f"counts within {acc['largest_bound']['rows']:,} rows at worst"


def _runs_lines(runs: list[dict]) -> list[str]:
    return [
        "## Runs",
        "",
        "The machine has 2 cores shared with other work, so a single run's figures can be "
        "off by tens of percent (load average at start below); these are the last runs' "
        "key figures, for the spread.",
        "",
        "| run at (UTC) | commit | load at start | ingest s after / before | ingest CPU s "
        "after / before | sketches' CPU ratios (DataSketches / hand-written) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['at']} | {r['commit']} | {r['load_average_at_start'][0]} "
            f"| {' / '.join(map(str, r['ingest_seconds_after_before']))} "
            f"| {' / '.join(map(str, r['ingest_cpu_seconds_after_before']))} "
            f"| {', '.join(str(v) for v in r['sketch_cpu_ratios'].values())} |"
            for r in runs
        ],
        "",
        "Sketch ratios in the order of the sketches table: HLL/KMV, CPC/KMV, "
        "frequent-items/top-value counter, frequent-items fed every value/top-value "
        "counter, KLL/histogram.",
        "",
    ]


if __name__ == "__main__":
    main()
