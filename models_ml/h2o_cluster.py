"""The H2O cluster this process trains on: an existing one by URL, or a local one.

Environment: CMS_PIPELINE_H2O_URL (connect, e.g. http://h2o:54321), otherwise a local
JVM with CMS_PIPELINE_H2O_MEM (default: training sizes it from its rows,
cms_pipeline/memory.py h2o_heap; otherwise its floor) and CMS_PIPELINE_H2O_THREADS (default -1 =
all cores), from the base port CMS_PIPELINE_H2O_PORT (default 54321) up. A local JVM is
this process's alone: it is named after the process, and h2o.init joins a cluster it
finds on the port only when the name matches, so it never joins another process's; it
then starts its own, and H2O itself binds the first free pair of ports (API and internal)
from the base port up: no port is chosen beforehand that another process could take.
h2o.init's JVM is a separate process from any JPype JVM here.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import logging
import os
import re
import uuid

from cms_pipeline.logs import LineLogger
from cms_pipeline.memory import h2o_heap
from cms_pipeline.processes import stop_with_this_process
from cms_pipeline.runtime import prepare_environment

log = logging.getLogger(__name__)

# h2o.init's notice that the H2O build is over 100 days old, with its download link. H2O
# has no setting for it: the client prints it whenever the server says so
# (H2OCluster.check_version, on every connection), and the server's rule
# (AbstractBuildVersion.isTooOld) has no switch. The version is pinned in uv.lock, so the
# notice is no news to whoever runs the pipeline: it is logged at DEBUG.
BUILD_AGE_NOTICE = re.compile(
    r"Your H2O cluster version is \(.*\) old|download and install the latest version"
)


class InitNotes(LineLogger):
    """h2o.init's printed notes as WARNING records, its build-age notice as DEBUG."""

    def __init__(self, logger: logging.Logger):
        super().__init__(logger, logging.WARNING)

    def _log(self, line: str) -> None:
        self.level = logging.DEBUG if BUILD_AGE_NOTICE.search(line) else logging.WARNING
        super()._log(line)


class _PrintTarget:
    """print's file inside `h2o_notes`: writes to the notes without being sys.stdout, which
    Prefect's print sends to the run's logger."""

    def __init__(self, notes: InitNotes):
        self.notes = notes

    def write(self, text: str) -> int:
        return self.notes.write(text)

    def flush(self) -> None:
        self.notes.flush()


@contextlib.contextmanager
def h2o_notes(logger: logging.Logger):
    """What h2o prints inside the block becomes `logger`'s records (InitNotes): stdout is
    redirected, and so is `print` itself, which inside a Prefect run that logs prints
    (log_prints) is Prefect's and sends each line to the run's logger at INFO instead."""
    with contextlib.closing(InitNotes(logger)) as notes, contextlib.redirect_stdout(notes):
        current = builtins.print
        target = _PrintTarget(notes)

        def to_notes(*args, **kwargs):
            kwargs.setdefault("file", target)
            current(*args, **kwargs)

        builtins.print = to_notes
        try:
            yield notes
        finally:
            builtins.print = current


def ensure_h2o(max_mem: str | None = None, nthreads: int | None = None, port: int | None = None):
    # h2o on first use, here and below: flows/pipeline.py imports this module (for
    # stop_local_h2o), and a pipeline run that trains nothing never needs h2o
    import h2o

    prepare_environment()
    url = os.environ.get("CMS_PIPELINE_H2O_URL")
    try:
        conn = h2o.connection()
        if conn is not None and conn.cluster is not None and conn.cluster.is_running():
            return h2o
    except Exception:  # noqa: BLE001 - no connection yet
        pass
    # h2o.init prints notices (such as its version's age) on stdout even when not verbose:
    # they become log records (stderr), so stdout keeps only a command's summary
    with h2o_notes(log):
        if url:
            h2o.init(url=url, verbose=False)
        else:
            h2o.init(
                nthreads=nthreads or int(os.environ.get("CMS_PIPELINE_H2O_THREADS", "-1")),
                max_mem_size=max_mem or os.environ.get("CMS_PIPELINE_H2O_MEM") or h2o_heap(0),
                port=port or int(os.environ.get("CMS_PIPELINE_H2O_PORT", "54321")),
                name=f"cms_pipeline_{os.getpid()}_{uuid.uuid4().hex[:8]}",
                verbose=False,
            )
    server = h2o.connection().local_server
    if server is not None and server.is_running():  # a JVM this process started
        stop_with_this_process(server._process.pid)  # h2o keeps no public handle on it
    h2o.no_progress()  # its progress bars would print on stdout
    # runs before h2o's own exit hook (LIFO); once, however many connections were made
    atexit.unregister(_close_quietly)
    atexit.register(_close_quietly, h2o)
    return h2o


def stop_local_h2o() -> None:
    """Shut down the H2O JVM this process started, once training is over: scoring runs
    MOJOs, not H2O, and the idle JVM held about 1.2 GiB through it (bench/results/
    memory.md). A cluster reached by URL (CMS_PIPELINE_H2O_URL) is left running; the next
    training starts a new local one."""
    import h2o

    conn = h2o.connection()
    server = None if conn is None else conn.local_server
    if server is None or not server.is_running():
        return
    notes = LineLogger(log, logging.DEBUG)  # "H2O session ... closed." goes to the log
    with contextlib.closing(notes), contextlib.redirect_stdout(notes):
        conn.close()
    server.shutdown()  # SIGTERM, then SIGKILL if it lingers; returns once it has exited


def _close_quietly(h2o) -> None:
    """h2o's exit hook prints "Closing connection ..." on stdout, after a command's
    --json summary; closing first, with its chatter logged, keeps stdout clean."""
    notes = LineLogger(log, logging.DEBUG)
    with (
        contextlib.suppress(Exception),
        contextlib.closing(notes),
        contextlib.redirect_stdout(notes),
    ):
        h2o.connection().close()
