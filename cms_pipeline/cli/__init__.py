"""`cms-pipeline`: from raw CMS DE-SynPUF files to gated marts, models and scores.

Each area registers its commands from its own module (`cms_pipeline/cli/<area>.py`,
each exposing `register(app)`).
"""

from __future__ import annotations

import importlib

import typer

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
def _main() -> None:
    prepare_environment()
