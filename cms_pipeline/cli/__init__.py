"""`cms-pipeline`: from raw CMS DE-SynPUF files to gated marts, models and scores.

Each area registers its commands from its own module (`cms_pipeline/cli/<area>.py`,
each exposing `register(app)`).
"""

# Each area's commands import what they use inside the command, so that `cms-pipeline
# --help` stays fast: about 0.45 s here, where every command's imports at the top of its
# module would add about 2.5 s (MLflow, H2O, Prefect, the flows; measured 2026-12-08, 2
# cores).

from __future__ import annotations

import importlib
import logging
from typing import Annotated

import typer

from cms_pipeline import logs
from cms_pipeline.runtime import prepare_environment

app = typer.Typer(
    name="cms-pipeline",
    help=(
        "Lakehouse for CMS DE-SynPUF Medicare claims. Typical use: `cms-pipeline run` "
        "(everything, on the bundled sample data), or step by step: ingest -> check bronze "
        "-> transform -> check gold -> train -> score -> export."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)

# Areas in the order a user meets them; each module registers its own commands.
AREAS = [
    "ingest",
    "bronze",
    "synth",
    "mappings",
    "vocab",
    "transform",
    "quality",
    "ml",
    "pipeline",
    "catalog",
    "stack",
    "web",
]

for _area in AREAS:
    try:
        _module = importlib.import_module(f"cms_pipeline.cli.{_area}")
    except ModuleNotFoundError as exc:
        if exc.name != f"cms_pipeline.cli.{_area}":
            raise
        continue
    _module.register(app)


@app.callback()
def _main(
    log_format: Annotated[
        logs.LogFormat,
        typer.Option(
            "--log-format",
            envvar=logs.FORMAT_ENV,
            case_sensitive=False,
            help="Log records on stderr as `text`, or as `json` lines (timestamp, level, "
            "logger, message) for log shippers. Summaries stay on stdout.",
        ),
    ] = logs.LogFormat.text,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            envvar=logs.LEVEL_ENV,
            help="Lowest level logged by the pipeline's own modules: DEBUG, INFO, WARNING, "
            "ERROR (other libraries: WARNING and up).",
        ),
    ] = "INFO",
) -> None:
    from cms_pipeline.cli.common import console

    try:
        fmt = logs.configure(log_format.value, log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from exc
    # with json, the CLI's own notes on stderr become records too (None: sys.stderr)
    json_notes = fmt is logs.LogFormat.json
    console.file = logs.LineLogger(logging.getLogger("cms_pipeline.cli")) if json_notes else None
    prepare_environment()
