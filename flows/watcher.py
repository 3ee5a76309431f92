"""Flow: watch the landing area; start ingestion and what follows only for new bytes.

Each run hashes the files in the landing area and compares the hashes with the file
ledger. A new file, or a file delivered again with different content, starts the
pipeline (or only ingestion); files whose bytes were already loaded, or already
rejected, start nothing. On a Prefect server the target runs as its own deployment (so
it is queued with the other writers); without one it runs here as a subflow.
The `watch-landing` deployment runs this on the interval of prefect.yaml.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from cms_pipeline.config import load_settings
from cms_pipeline.ingest.discovery import discover
from cms_pipeline.ingest.ledger import done_hashes, hashes_seen_for, read_ledger
from cms_pipeline.ingest.reader import sha256_of

# What the watcher can start: the flow, and its deployment in prefect.yaml (same name).
TARGETS = {
    "pipeline": "flows.pipeline:pipeline_flow",
    "ingest": "flows.ingest:ingest_flow",
}
Target = Literal["pipeline", "ingest"]


@dataclass(frozen=True)
class Arrival:
    file: str  # path below the landing root
    sha256: str
    size_bytes: int
    changed: bool  # a file of this name was loaded before with other bytes


def rejected_hashes(ledger: pa.Table) -> set[str]:
    mask = pc.equal(ledger.column("status"), "rejected")
    return set(ledger.filter(mask).column("sha256").to_pylist())


def new_arrivals(files: list[tuple[str, str, int]], ledger: pa.Table) -> list[Arrival]:
    """Files (relative path, sha256, size) whose bytes the ledger has not seen.

    Bytes already loaded are duplicates; bytes already rejected would be rejected again
    (fix the file or the contract, then run `cms-pipeline ingest`). The same bytes under
    two names arrive once.
    """
    seen = done_hashes(ledger) | rejected_hashes(ledger)
    arrivals = []
    for relative, sha256, size in files:
        if sha256 in seen:
            continue
        seen.add(sha256)
        name = relative.rsplit("/", 1)[-1]
        changed = bool(hashes_seen_for(ledger, name))
        arrivals.append(Arrival(relative, sha256, size, changed))
    return arrivals


def load_target(target: str):
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: expected one of {sorted(TARGETS)}")
    module, name = TARGETS[target].split(":")
    return getattr(importlib.import_module(module), name)


# Takes the lake, not Settings: Prefect walks task arguments, and a pydantic model with a
# field named `keys` (SourceContract.keys) breaks that walk.
@task(name="look for arrivals", retries=2, retry_delay_seconds=[5, 30])
def look_for_arrivals(landing: str, lake: str | None) -> list[Arrival]:
    settings = load_settings(lake=lake)
    deliveries, _ignored = discover(settings, landing)
    files = [(d.relative, *sha256_of(d.uri)) for d in deliveries]
    arrivals = new_arrivals(files, read_ledger(settings))
    if arrivals:
        create_table_artifact(
            key="landing-arrivals",
            table=[asdict(a) for a in arrivals],
            description=f"{len(arrivals)} new or changed files in {landing}",
        )
    return arrivals


def _deployment_exists(name: str) -> bool:
    """True when a Prefect server is configured and holds this deployment."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return False  # ephemeral mode: no server, no deployments
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


def start_target(target: str, source: str, lake: str | None) -> dict:
    """Run the target as its deployment when the server has it, else as a subflow."""
    from prefect.deployments import run_deployment

    target_flow = load_target(target)
    deployment = f"{target_flow.name}/{target}"
    parameters = {"source": source, "lake": lake}
    if not _deployment_exists(deployment):
        target_flow(**parameters)  # raises when the subflow fails
        return {"mode": "subflow", "flow": target_flow.name}
    run = run_deployment(deployment, parameters=parameters)  # waits for the run to end
    if not run.state or not run.state.is_completed():
        raise RuntimeError(
            f"deployment {deployment} run {run.name} ended {run.state.name if run.state else '?'}; "
            "see its logs in the Prefect UI"
        )
    return {"mode": "deployment", "deployment": deployment, "flow_run_id": str(run.id)}


@flow(name="watch-landing", log_prints=True)
def watcher_flow(
    landing: str | None = None, lake: str | None = None, then: Target = "pipeline"
) -> dict:
    """Start `then` (the whole pipeline, or only ingestion) when new files have arrived."""
    landing = landing or load_settings(lake=lake).landing
    arrivals = look_for_arrivals(landing, lake)
    logger = get_run_logger()
    if not arrivals:
        logger.info("No new or changed files in %s; nothing to start.", landing)
        return {"landing": landing, "arrivals": [], "started": None}
    for a in arrivals:
        logger.info("%s %s (%s bytes)", "changed" if a.changed else "new", a.file, a.size_bytes)
    started = start_target(then, landing, lake)
    return {"landing": landing, "arrivals": [asdict(a) for a in arrivals], "started": started}
