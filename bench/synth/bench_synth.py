"""Benchmark of `cms-pipeline synth`: time, rows/s, MB/s and peak memory per scale.

Usage: python bench/synth/bench_synth.py [--scales 0.1 1.0] [--workers 2] [--work /tmp/...]

Each run is a separate process (`python -m cms_pipeline synth ...`) whose process
tree is sampled for peak resident memory. The baseline is scale 0.1 with one worker,
measured in the same run; ratios are against it. Target: scale 1.0 (one full CMS sample,
about 11 million rows) in under 5 minutes on 2 cores. The machine's load average is
recorded too: on a shared machine other processes slow every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
TARGET_SECONDS = 300


def run(scale: float, workers: int, work: Path, seed: int = 1) -> dict:
    out = work / f"scale_{scale}_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "cms_pipeline", "synth", "--scale", str(scale),
           "--seed", str(seed), "--out", str(out), "--workers", str(workers), "--json"]  # fmt: skip
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.25)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes reaped worker processes
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    stdout = proc.stdout.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"synth failed for scale {scale}: exit {proc.returncode}")
    summary = json.loads(stdout[stdout.index("{") :])
    rows = sum(f["rows"] for f in summary["files"])
    size = sum(p.stat().st_size for p in out.glob("*.csv"))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "scale": scale, "workers": workers, "seconds": round(seconds, 1), "rows": rows,
        "rows_per_second": round(rows / seconds), "cpu_seconds": round(cpu, 1),
        "rows_per_cpu_second": round(rows / cpu), "bytes": size,
        "mb_per_second": round(size / seconds / 1e6, 1), "peak_rss_mb": round(peak / 1e6),
        "load_average_at_start": round(load_before, 2),
        "files": {f["file"]: f["rows"] for f in summary["files"]},
    }  # fmt: skip


def render(result: dict) -> str:
    lines = [
        "# synth benchmark",
        "",
        f"Machine: {result['machine']}. Target: scale 1.0 under {TARGET_SECONDS} s on 2 cores.",
        "Baseline: scale 0.1 with 1 worker, same run. Load average shows other work on the",
        "machine at the start of each run (2 cores: above 2 means runs were slowed down);",
        "CPU seconds (all processes of the run) do not depend on that load: on an idle",
        "2-core machine wall time is about CPU seconds / 2 with 2 workers.",
        "",
        "| scale | workers | seconds | CPU s | rows | rows/s | rows/CPU s | MB/s | peak RSS MB "
        "| load | x baseline rows/CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = result["runs"][0]["rows_per_cpu_second"]
    for r in result["runs"]:
        lines.append(
            f"| {r['scale']} | {r['workers']} | {r['seconds']} | {r['cpu_seconds']} | "
            f"{r['rows']:,} | {r['rows_per_second']:,} | {r['rows_per_cpu_second']:,} | "
            f"{r['mb_per_second']} | {r['peak_rss_mb']} | {r['load_average_at_start']} | "
            f"{r['rows_per_cpu_second'] / base:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/cms_synth_bench"))
    parser.add_argument("--name", default="synth")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    runs = [run(args.scales[0], 1, args.work)]
    print(json.dumps(runs[-1]), flush=True)
    for scale in args.scales:
        runs.append(run(scale, args.workers, args.work))
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python {platform.python_version()}",
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
