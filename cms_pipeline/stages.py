"""Wall time, CPU time and peak memory of each pipeline stage (this process and its
children, which include the Spark and H2O JVMs), and the time the Spark JVM's JIT
compilers spent in it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import psutil
from py4j.protocol import Py4JError

# A process this young is left out of a tree's memory: the JVM spawns a helper for every
# `chmod` Hadoop runs on local files it writes, and until the helper execs it shares the
# JVM's memory, which its RSS then reports again: the likely cause of a silver stage's
# peak of 11.8 GB in a run whose own peak, sampled less often, was 7.6 GB.
MIN_CHILD_AGE = 1.0  # seconds


def tree_rss(root: psutil.Process | None = None, min_child_age: float = MIN_CHILD_AGE) -> int:
    """Resident bytes of `root` (this process by default) and its descendants, less those
    younger than `min_child_age` seconds."""
    proc = root or psutil.Process()
    total = proc.memory_info().rss
    born_before = time.time() - min_child_age
    for child in proc.children(recursive=True):
        try:
            if child.create_time() <= born_before:
                total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


@dataclass(frozen=True)
class _CpuReading:
    own: float  # this process and the children it has reaped
    live: dict[int, tuple[float, bool]]  # pid -> (CPU so far, a direct child)


def _cpu_reading() -> _CpuReading:
    proc = psutil.Process()
    times = proc.cpu_times()
    live = {}
    for child in proc.children(recursive=True):
        try:
            child_times = child.cpu_times()
            live[child.pid] = (child_times.user + child_times.system, child.ppid() == proc.pid)
        except psutil.Error:
            continue
    return _CpuReading(
        times.user + times.system + times.children_user + times.children_system, live
    )


def _cpu_between(start: _CpuReading, end: _CpuReading) -> float:
    """CPU seconds of the process tree between two readings. A child that was running at
    the start counts from its reading then: one reaped since counts in `own` with its whole
    life, so its earlier part is taken off; a grandchild that ended since is left out (its
    parent, not this process, reaped it), rather than taken off whole."""
    total = end.own - start.own
    for pid, (cpu, _) in end.live.items():
        total += cpu - start.live.get(pid, (0.0, False))[0]
    for pid, (cpu, direct) in start.live.items():
        if pid not in end.live and direct:
            total -= cpu
    return max(total, 0.0)


def _spark_jit_seconds() -> float:
    """Compile time the running Spark JVM reports so far (0 without one): elapsed time
    in its JIT compiler threads, which on a busy machine includes waiting for a core.

    Every query's generated code is new to the JVM, and on 2 cores the compiler threads
    take CPU from the tasks: the carrier line store's first run at scale 1.0 spent about
    75 s compiling, a repeat of the same query 9 s.
    """
    pyspark = sys.modules.get("pyspark")  # never start Spark (or import it) to ask
    context = pyspark.SparkContext._active_spark_context if pyspark else None
    if context is None:
        return 0.0
    try:
        management = context._jvm.java.lang.management.ManagementFactory
        return management.getCompilationMXBean().getTotalCompilationTime() / 1000
    except Py4JError:  # a JVM going down mid-stage: the figure is only a diagnostic
        return 0.0


@dataclass
class Stage:
    name: str
    seconds: float = 0.0
    peak_mib: float = 0.0
    # CPU seconds of the stage: against seconds x cores, how busy the machine was
    cpu_seconds: float = 0.0
    # the Spark JVM's JIT compile time in the stage (elapsed in its compiler threads, so
    # not strictly part of cpu_seconds; a JVM started in the stage counts from 0)
    jit_seconds: float = 0.0
    status: str = "ok"
    detail: str = ""


# Called with ("start" | "end", stage) for each stage of this process: the CLI's live
# progress (cms_pipeline/cli/progress.py). A listener's error never fails the stage.
_LISTENERS: list[Callable[[str, Stage], None]] = []


@contextmanager
def reporting_to(listener: Callable[[str, Stage], None]) -> Iterator[None]:
    """Tell `listener` of every stage that starts and ends while the block runs."""
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


def _tell(event: str, stage: Stage) -> None:
    for listener in list(_LISTENERS):
        try:
            listener(event, stage)
        except Exception:  # noqa: BLE001 - progress output must never stop the pipeline
            pass


@dataclass
class StageLog:
    stages: list[Stage] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, interval: float = 0.2) -> Iterator[Stage]:
        stage = Stage(name)
        self.stages.append(stage)
        _tell("start", stage)
        peak = [tree_rss()]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(interval):
                peak[0] = max(peak[0], tree_rss())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started, cpu_started, jit_started = (
            time.perf_counter(),
            _cpu_reading(),
            _spark_jit_seconds(),
        )
        try:
            yield stage
        except BaseException:
            stage.status = "failed"
            raise
        finally:
            stop.set()
            sampler.join()
            stage.seconds = round(time.perf_counter() - started, 2)
            stage.cpu_seconds = round(_cpu_between(cpu_started, _cpu_reading()), 1)
            stage.jit_seconds = round(max(_spark_jit_seconds() - jit_started, 0.0), 1)
            stage.peak_mib = round(max(peak[0], tree_rss()) / 2**20, 1)
            _tell("end", stage)

    def to_list(self) -> list[dict]:
        return [asdict(s) for s in self.stages]
