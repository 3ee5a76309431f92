"""Flow run names that say what each run does: its source, layer or use case.

    @flow(name="train", flow_run_name=run_name("train {use_case}"))

names a run "train readmission_30d", or "train all use cases" when `use_case` is None,
instead of Prefect's random adjective-animal. Paths and URIs are shortened to their last
folder or file name ("ingest synpuf -> bronze").
"""

from __future__ import annotations

from collections.abc import Callable

from prefect.runtime import flow_run

# What a parameter left at None means, as a run name says it.
DEFAULTS = {
    "source": "the landing area",
    "landing": "the landing area",
    "use_case": "all use cases",
}


def readable(name: str, value) -> str:
    if value is None:
        return DEFAULTS.get(name, "default")
    text = str(value).rstrip("/")
    return text.rsplit("/", 1)[-1] if "/" in text else text


class _Named(dict):
    def __missing__(self, key: str) -> str:  # a parameter the run was not given
        return readable(key, None)


def format_run_name(template: str, parameters: dict) -> str:
    return template.format_map(_Named({k: readable(k, v) for k, v in parameters.items()}))


def run_name(template: str) -> Callable[[], str]:
    """A `flow_run_name` for Prefect: the template filled with the run's parameters."""

    def name() -> str:
        return format_run_name(template, flow_run.parameters)

    return name
