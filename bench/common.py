"""Shared by the benchmarks: machine description, timing a command with its peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from cms_pipeline.stages import tree_rss

RESULTS = Path(__file__).parent / "results"


def commit() -> str:
    """The checked-out commit (with "+changes" when the tree differs), for results files."""
    git = {"capture_output": True, "text": True, "cwd": Path(__file__).parent}
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **git)
    dirty = subprocess.run(["git", "status", "--porcelain"], **git)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_measured(args: list[str], env: dict | None = None, timeout: float = 3600) -> dict:
    """Run a command; wall seconds and peak RSS of its whole process tree (JVMs included).

    Output goes to temporary files, not pipes: a chatty child (Spark, dbt, Prefect logs)
    would fill a pipe nobody reads while we poll, and block forever.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=err)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, tree_rss(ps))
            except psutil.Error:  # the command just ended
                pass
            # sample often at first (short runs), then twice a second (cheap on long runs)
            time.sleep(0.05 if time.perf_counter() - started < 10 else 0.5)
            if time.perf_counter() - started > timeout:
                proc.kill()
                raise TimeoutError(args)
        seconds = round(time.perf_counter() - started, 3)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(stderr[-3000:])
        raise RuntimeError(f"{args} exited {proc.returncode}")
    return {"seconds": seconds, "peak_mib": round(peak / 2**20, 1), "stdout": stdout}


def write_results(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
