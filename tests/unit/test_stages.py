"""Stage accounting: the CPU time of child processes (the Spark and H2O JVMs) counts."""

import subprocess
import sys
import time

import psutil

from cms_pipeline.stages import StageLog, tree_rss

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


def test_a_grandchild_that_ends_within_the_stage_does_not_count_less_than_nothing():
    # a process running when the stage starts (here a grandchild, reaped by its own parent)
    # that ends within it: its CPU before the stage must not be taken off the stage's
    spawner = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BUSY_CHILD!r}])\n"
        "time.sleep(3)"
    )
    child = subprocess.Popen([sys.executable, "-c", spawner])
    deadline = time.monotonic() + 20
    grandchild = None
    while time.monotonic() < deadline and grandchild is None:
        busy = [p for p in psutil.Process(child.pid).children() if sum(p.cpu_times()[:2]) > 0.5]
        grandchild = busy[0] if busy else None
        time.sleep(0.02)
    assert grandchild is not None
    log = StageLog()
    with log.stage("outlives a grandchild") as stage:
        before = sum(grandchild.cpu_times()[:2])  # spent before the stage: not the stage's
        grandchild.wait(timeout=20)
    child.wait(timeout=20)
    # at most what the grandchild had left of its 1 s (plus this process' own bookkeeping),
    # and never less than nothing
    assert 0 <= stage.cpu_seconds <= 1.0 - before + 0.3


def test_a_process_trees_memory_leaves_out_children_younger_than_the_age_given():
    # a JVM's just-spawned helper reports the JVM's memory until it execs: a child that
    # young is left out, an older one counts
    holder = "import time\nblock = b'x' * (200 * 2**20)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", holder])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).memory_info().rss < 150 * 2**20:
            assert time.monotonic() < deadline, "the child never held its 200 MiB"
            time.sleep(0.05)
        me = psutil.Process()
        counted = tree_rss(me, min_child_age=0)
        left_out = tree_rss(me, min_child_age=3600)  # younger than an hour: left out
        assert counted - left_out >= 150 * 2**20
        assert left_out < me.memory_info().rss + 150 * 2**20
    finally:
        child.kill()
        child.wait()
