"""Benchmark: peak memory across processes of `cms-pipeline run` on the bundled samples
(data/synpuf), whole pipeline with training, with the heaps as sized now against the
sizes of the earlier rule, both measured in this run.

    python -m bench.memory.run [--train missing|never]

Each variant runs the pipeline on a fresh lake (the scripts/run settings: quick JIT) while
bench/memory/sample.py samples the RSS of every process of its tree twice a second, by
kind (Python driver, Spark JVM, H2O JVM, Python workers, Prefect's server). The stage
table's peak_mib comes from the run itself (cms_pipeline/stages.py). Results:
bench/results/memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile

import fsspec

from bench.common import RESULTS, commit, machine, write_results
from bench.memory.sample import sample
from cms_pipeline.config import PROJECT_ROOT
from cms_pipeline.memory import GIB, as_jvm_size, csv_equivalent_bytes

BUNDLED = PROJECT_ROOT / "data" / "synpuf"
CLI = [sys.executable, "-m", "cms_pipeline"]


def earlier_rule() -> dict[str, str]:
    """The Spark heap the rule before this one gave the bundled samples (2 GiB + 3 x CSV),
    as an explicit setting, which wins over `auto`. H2O's rule is the same in both."""
    csv = csv_equivalent_bytes(fsspec.filesystem("file"), str(BUNDLED))
    return {"CMS_SPARK_DRIVER_MEMORY": as_jvm_size(int(2 * GIB + 3 * csv))}


def run_variant(name: str, env: dict[str, str], train: str) -> dict:
    # no space in the name: a lake path with one fails (ingest reads the ledger at "%20")
    lake = tempfile.mkdtemp(prefix="bench_memory_")
    try:
        result = sample(
            [*CLI, "run", str(BUNDLED), "--lake", lake, "--train", train, "--json"],
            {"CMS_SPARK_QUICK_JIT": "true", **env},  # as scripts/run
        )
    finally:
        shutil.rmtree(lake, ignore_errors=True)
    if result["returncode"] != 0:
        sys.stderr.write(result["stderr_tail"])
        raise RuntimeError(f"{name}: cms-pipeline run exited {result['returncode']}")
    out = result["stdout"]
    # the JSON summary, followed by whatever H2O or Prefect print on exit
    summary, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    return {
        "variant": name,
        "env": env,
        "seconds": result["seconds"],
        "peak_total_mib": result["peak_total_mib"],
        "at_peak_mib": result["at_peak_mib"],
        "peak_by_kind_mib": result["peak_by_kind_mib"],
        "stages": [
            {k: s[k] for k in ("name", "seconds", "peak_mib", "status")} for s in summary["stages"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", default="missing", help="missing (default) or never")
    parser.add_argument("--now-only", action="store_true", help="skip the earlier rule's run")
    args = parser.parse_args()
    at_start = machine()
    variants = [] if args.now_only else [run_variant("earlier rule", earlier_rule(), args.train)]
    variants.append(run_variant("now", {}, args.train))
    before = variants[0] if len(variants) > 1 else None
    now = variants[-1]
    payload = {
        "command": "python -m bench.memory.run " + " ".join(sys.argv[1:]),
        "commit": commit(),
        "machine": at_start,
        "variants": variants,
    }
    (RESULTS / "memory.json").write_text(json.dumps(payload, indent=2) + "\n")  # kept first
    write_results("memory", payload, markdown(payload, before, now))


def markdown(payload: dict, before: dict | None, now: dict) -> str:
    """Stage and process tables; with no run of the earlier rule, its columns say '-'."""
    none = {"peak_by_kind_mib": {}, "at_peak_mib": {}, "stages": []}
    earlier = before or none
    kinds = sorted(set(earlier["peak_by_kind_mib"]) | set(now["peak_by_kind_mib"]))
    peak = {s["name"]: s["peak_mib"] for s in earlier["stages"]}
    secs = {s["name"]: s["seconds"] for s in earlier["stages"]}
    if before:
        headline = (
            f"Peak RSS across processes: {before['peak_total_mib']} MiB with the earlier "
            f"rule's heap ({_env(before)}), {now['peak_total_mib']} MiB now "
            f"({now['peak_total_mib'] / before['peak_total_mib']:.2f}x); wall time "
            f"{before['seconds']} s and {now['seconds']} s."
        )
    else:
        headline = (
            f"Peak RSS across processes now: {now['peak_total_mib']} MiB; wall time "
            f"{now['seconds']} s (the earlier rule was not run: --now-only)."
        )
    lines = [
        "# Memory benchmark: the bundled samples, whole pipeline",
        "",
        headline,
        "",
        "Wall times were measured on a busy machine (other sessions running pipelines and "
        "tests on the same 2 cores): they say only that neither variant is far slower. "
        "Memory figures are each process tree's own and hold under load.",
        "",
        "## Peak RSS by stage (MiB, the run's stage table) and stage seconds",
        "",
        "| stage | earlier rule MiB | now MiB | earlier rule s | now s |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {s['name']} | {peak.get(s['name'], '-')} | {s['peak_mib']} "
            f"| {secs.get(s['name'], '-')} | {s['seconds']} |"
            for s in now["stages"]
        ],
        "",
        "## Each kind of process at its own peak, and at the run's peak (MiB)",
        "",
        "| process | earlier rule: own peak | at run peak | now: own peak | at run peak |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {k} | {earlier['peak_by_kind_mib'].get(k, '-')} "
            f"| {earlier['at_peak_mib'].get(k, '-')} "
            f"| {now['peak_by_kind_mib'].get(k, 0)} | {now['at_peak_mib'].get(k, 0)} |"
            for k in kinds
        ],
        "",
        f"Command: `{payload['command']}`, at commit {payload['commit']}. "
        f"Machine at start: {payload['machine']}",
        "",
    ]
    return "\n".join(lines)


def _env(variant: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant["env"].items()) or "defaults"


if __name__ == "__main__":
    main()
