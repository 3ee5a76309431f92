"""Benchmark: wall time and peak memory of each stage of `cms-pipeline run` on generated
SynPUF data at several scales (1.0 = one full CMS sample, about 11 million rows).

    python -m bench.pipeline.run --scales 0.01 0.1 [1.0] [--train never]

Each scale: `cms-pipeline synth` writes the eight files, then `cms-pipeline run --json`
runs the gated pipeline on a fresh lake. Results: bench/results/pipeline.{json,md};
a scale measured again replaces its earlier result, other scales' results are kept
(each with the machine state it was measured on). The cost of a stage per million
input rows shows how it grows with size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from bench.common import RESULTS, commit, machine, run_measured, write_results
from cms_pipeline.config import PROJECT_ROOT

WORK = PROJECT_ROOT / "bench" / "work" / "pipeline"
CLI = [sys.executable, "-m", "cms_pipeline"]


def run_scale(scale: float, seed: int, train: str) -> dict:
    landing, lake = WORK / f"landing_{scale}", WORK / f"lake_{scale}"
    machine_at_start = machine()  # the load average before this scale's work
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    synth = run_measured(
        [*CLI, "synth", "--scale", str(scale), "--seed", str(seed), "--out", str(landing), "--json"]
    )
    rows = sum(f["rows"] for f in json.loads(synth["stdout"])["files"])
    run = run_measured(
        [*CLI, "run", str(landing), "--lake", str(lake), "--train", train, "--json"],
        timeout=4 * 3600,
    )
    # the JSON summary, followed by whatever H2O or Prefect print on exit
    summary, _ = json.JSONDecoder().raw_decode(run["stdout"][run["stdout"].index("{") :])
    return {
        "scale": scale,
        "machine": machine_at_start,
        "train": train,
        "input_rows": rows,
        "synth_seconds": synth["seconds"],
        "run_seconds": run["seconds"],
        "run_peak_mib": run["peak_mib"],
        "ok": summary["ok"],
        "stages": summary["stages"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train", default="missing", help="missing (default) or never")
    args = parser.parse_args()
    results = _earlier_results(exclude=set(args.scales))
    # each scale's section names the command and commit that measured it
    measured_by = {
        "command": "python -m bench.pipeline.run " + " ".join(sys.argv[1:]),
        "commit": commit(),
    }
    results += [{**run_scale(s, args.seed, args.train), **measured_by} for s in args.scales]
    results.sort(key=lambda r: r["scale"])
    lines = ["# Pipeline benchmark", ""]
    for r in results:
        names = [s["name"] for s in r["stages"]]
        to_gold = (
            f"{sum(s['seconds'] for s in r['stages'][: names.index('gold gate') + 1]):.0f} s of stage time"
            if "gold gate" in names
            else f"not reached (the run stopped after {names[-1]})"
        )
        lines += [
            f"## scale {r['scale']}: {r['input_rows']:,} input rows, run {r['run_seconds']} s, "
            f"peak {r['run_peak_mib']} MiB, gates {'passed' if r['ok'] else 'FAILED'}",
            "",
            f"Raw files to gated gold: {to_gold}. Training: "
            f"{r.get('train', 'missing')}. Machine: {r.get('machine', '')}",
            "",
            "| stage | seconds | s per million rows | CPU s | cores busy | JIT s | peak MiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *[_stage_row(s, r["input_rows"]) for s in r["stages"]],
            "",
        ]
        if "command" in r:  # results older than these fields do not say
            lines += [f"Command: `{r['command']}`, at commit {r['commit']}.", ""]
    write_results("pipeline", {"results": results}, "\n".join(lines))


def _stage_row(stage: dict, input_rows: int) -> str:
    # CPU seconds per wall second: 2.0 is both cores busy on this machine
    cpu = stage.get("cpu_seconds")  # not measured in results older than the column
    busy = f"{cpu / stage['seconds']:.2f}" if cpu is not None and stage["seconds"] else "-"
    # the Spark JVM's JIT compile time (elapsed in its compiler threads): each query's
    # generated code is new to the JVM
    jit = stage.get("jit_seconds", "-")
    return (
        f"| {stage['name']} | {stage['seconds']} | {stage['seconds'] / input_rows * 1e6:.1f} "
        f"| {cpu if cpu is not None else '-'} | {busy} | {jit} | {stage['peak_mib']} |"
    )


def _earlier_results(exclude: set[float]) -> list[dict]:
    path = RESULTS / "pipeline.json"
    if not path.exists():
        return []
    earlier = json.loads(path.read_text())
    machine_then = earlier.get("machine")  # files written before results carried their own
    return [{"machine": machine_then, **r} for r in earlier["results"] if r["scale"] not in exclude]


if __name__ == "__main__":
    main()
