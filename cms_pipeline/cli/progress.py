"""Live progress of a pipeline run's stages on stderr (stdout keeps the summary, and
`--json` output stays parseable).

In a terminal: one line per running stage with a spinner and its elapsed time, replaced
by a line with its outcome when it ends. Elsewhere (CI logs, a pipe): one plain line when
a stage starts and one when it ends, with a clock time to read the log by. With
`--log-format json`: one log record per start and end, the stage's numbers as fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from cms_pipeline import logs
from cms_pipeline.stages import Stage, reporting_to

log = logging.getLogger(__name__)


def ended(stage: Stage) -> str:
    """One line for a finished stage: outcome, wall time, CPU time and peak memory."""
    mark = "[green]ok[/green]" if stage.status == "ok" else f"[red]{escape(stage.status)}[/red]"
    return (
        f"{escape(stage.name)}: {mark} in {stage.seconds:.1f} s "
        f"(CPU {stage.cpu_seconds:.1f} s, peak {stage.peak_mib / 1024:.1f} GiB)"
    )


def log_stage(event: str, stage: Stage) -> None:
    """A stages listener for log shippers: the stage's fields beside the message."""
    fields = {"stage": stage.name, "event": event}
    if event == "start":
        log.info("%s: started", stage.name, extra=fields)
        return
    fields.update({k: v for k, v in asdict(stage).items() if k != "name"})
    level = logging.INFO if stage.status == "ok" else logging.ERROR
    log.log(level, Text.from_markup(ended(stage)).plain, extra=fields)


class StageProgress:
    """A stages listener (cms_pipeline.stages.reporting_to) writing to `console`."""

    def __init__(self, console: Console):
        self.console = console
        self.live = console.is_terminal
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[int, int] = {}  # id(stage) -> its progress task

    def __call__(self, event: str, stage: Stage) -> None:
        if not self.live:
            clock = time.strftime("%H:%M:%S")
            text = f"{escape(stage.name)}: started" if event == "start" else ended(stage)
            self.console.print(f"[dim]{clock}[/dim] {text}", highlight=False)
            return
        if event == "start":
            self.bar.start()
            self.tasks[id(stage)] = self.bar.add_task(escape(stage.name), total=None)
            return
        if (task := self.tasks.pop(id(stage), None)) is not None:
            self.bar.remove_task(task)
        self.bar.console.print(ended(stage), highlight=False)
        if not self.tasks:
            self.stop()

    def stop(self) -> None:
        if self.bar.live.is_started:
            self.bar.stop()


@contextmanager
def stage_progress(console: Console) -> Iterator[None]:
    """Show the stages that run in this process while the block runs."""
    if logs.current_format() is logs.LogFormat.json and not console.is_terminal:
        with reporting_to(log_stage):
            yield
        return
    listener = StageProgress(console)
    try:
        with reporting_to(listener):
            yield
    finally:
        listener.stop()
