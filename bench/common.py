"""Shared by the benchmarks: machine description, timing a command with its peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"


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
    """Run a command; wall seconds and peak RSS of its whole process tree (JVMs included)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(
                c.memory_info().rss for c in ps.children(recursive=True)
            )
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
        if time.perf_counter() - started > timeout:
            proc.kill()
            raise TimeoutError(args)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.stderr.write(err.decode()[-3000:])
        raise RuntimeError(f"{args} exited {proc.returncode}")
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "peak_mib": round(peak / 2**20, 1),
        "stdout": out.decode()[-2000:],
    }


def write_results(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
