"""Stage accounting: the CPU time of child processes (the Spark and H2O JVMs) counts."""

import subprocess
import sys

from cms_pipeline.stages import StageLog

BUSY_CHILD = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"


def test_a_stage_counts_the_cpu_time_of_its_child_processes():
    log = StageLog()
    with log.stage("busy child") as stage:
        subprocess.run([sys.executable, "-c", BUSY_CHILD], check=True)
    with log.stage("idle") as idle:
        pass
    # the child spent at least 1 s of CPU; the parent only waited
    assert stage.cpu_seconds >= 0.9
    assert idle.cpu_seconds < 0.5
    # no Spark JVM runs here: no JIT time is attributed to either stage
    assert stage.jit_seconds == idle.jit_seconds == 0
    assert [s["name"] for s in log.to_list()] == ["busy child", "idle"]
