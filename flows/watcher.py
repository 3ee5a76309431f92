"""Flow: watch the landing area; announce each new or changed file as a Prefect event.

Each run lists the landing area and hashes only the files whose size or modification
time changed since the watcher last saw them (its memory: one small JSON file per landing
area in the metadata folder, beside the lake's ledger). A file whose bytes the ledger has
not loaded (or rejected), and that the watcher has not announced before with these
bytes, is an arrival: it emits one `cms.landing.file.arrived` event. The `pipeline`
deployment's trigger in prefect.yaml turns those events into a pipeline run.

Without a Prefect server or that trigger, `then` runs the pipeline (or only ingestion)
here as a subflow once the events are out.
The `watch-landing` deployment runs this on the interval of prefect.yaml.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from cms_pipeline.atomic import write_json_atomic
from cms_pipeline.config import Settings, load_settings
from cms_pipeline.ingest.discovery import Delivery, discover
from cms_pipeline.ingest.ledger import done_hashes, hashes_seen_for, read_ledger
from cms_pipeline.ingest.reader import sha256_of
from flows.naming import run_name

ARRIVED = "cms.landing.file.arrived"  # the event the pipeline's trigger expects
RESOURCE_PREFIX = "cms.landing.file."  # + the file's sha256: the event's resource id

# What `then` can run here: the flows of the deployments of the same names.
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


# --- what the watcher remembers of a landing area: path -> size, mtime, sha256 ---------


def memory_path(settings: Settings, landing: str) -> Path:
    key = hashlib.sha256(landing.encode()).hexdigest()[:16]
    return settings.metadata_path("watcher", f"landing-{key}.json")


def read_memory(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text())["files"] if path.exists() else {}


def write_memory(path: Path, landing: str, files: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"landing": landing, "files": files}, indent=1)


def hash_changed(deliveries: list[Delivery], memory: dict[str, dict]) -> tuple[dict, list[str]]:
    """Each delivery's size, mtime and sha256, and the files hashed this time.

    A file with the size and mtime it had when last seen keeps its remembered hash (and
    whether it was announced): only new or changed files are read."""
    files, hashed = {}, []
    for d in deliveries:
        before = memory.get(d.relative)
        size, mtime = d.found_as.size, d.found_as.mtime
        if before and (before["size"], before["mtime"]) == (size, mtime):
            files[d.relative] = before
            continue
        sha256, _ = sha256_of(d.uri)
        hashed.append(d.relative)
        files[d.relative] = {"size": size, "mtime": mtime, "sha256": sha256, "announced": False}
    return files, hashed


# --- which files are arrivals -----------------------------------------------------------


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


def unannounced(files: dict[str, dict]) -> list[tuple[str, str, int]]:
    """(path, sha256, size) of the files not announced yet with their present bytes."""
    return [(p, f["sha256"], f["size"]) for p, f in sorted(files.items()) if not f["announced"]]


# --- the event --------------------------------------------------------------------------


def arrival_event(arrival: Arrival, landing: str, lake: str) -> dict:
    """The `cms.landing.file.arrived` event of one file: the file is the resource (its id
    is the content hash), the landing area and lake are labels (the pipeline's trigger
    counts per pair), and the payload carries what the pipeline run needs (`landing` as
    its source, `lake`)."""
    return {
        "event": ARRIVED,
        "resource": {
            "prefect.resource.id": RESOURCE_PREFIX + arrival.sha256,
            "prefect.resource.name": arrival.file,
            "cms.landing": landing,
            "cms.lake": lake,
        },
        "payload": {"landing": landing, "lake": lake, **asdict(arrival)},
    }


def announce(arrival: Arrival, landing: str, lake: str) -> None:
    from prefect.events import emit_event

    emit_event(**arrival_event(arrival, landing, lake))


@task(name="look for arrivals", retries=2, retry_delay_seconds=[5, 30])
def look_for_arrivals(landing: str, lake: str | None) -> list[Arrival]:
    """Emit one event per new or changed file; remember what was seen and announced."""
    settings = load_settings(lake=lake)
    deliveries, _ignored = discover(settings, landing)
    path = memory_path(settings, landing)
    files, hashed = hash_changed(deliveries, read_memory(path))
    arrivals = new_arrivals(unannounced(files), read_ledger(settings))
    for a in arrivals:
        announce(a, landing, settings.lake)
    for relative in {r for r, _, _ in unannounced(files)}:
        files[relative]["announced"] = True  # announced now, or loaded (or refused) already
    write_memory(path, landing, files)  # after the events: a failed emit is retried
    get_run_logger().info(
        "%s files in %s, %s hashed (new or changed size or mtime), %s arrivals",
        len(files),
        landing,
        len(hashed),
        len(arrivals),
    )
    if arrivals:
        create_table_artifact(
            key="landing-arrivals",
            table=[asdict(a) for a in arrivals],
            description=f"{len(arrivals)} new or changed files in {landing}",
        )
    return arrivals


def load_target(target: str):
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: expected one of {sorted(TARGETS)}")
    module, name = TARGETS[target].split(":")
    return getattr(importlib.import_module(module), name)


@flow(name="watch-landing", log_prints=True, flow_run_name=run_name("watch {landing}"))
def watcher_flow(
    landing: str | None = None, lake: str | None = None, then: Target | None = None
) -> dict:
    """Announce new or changed landing files as events; `then` also runs the pipeline
    (or only ingestion) on them here, for use without the pipeline's trigger."""
    landing = landing or load_settings(lake=lake).landing
    arrivals = look_for_arrivals(landing, lake)
    logger = get_run_logger()
    for a in arrivals:
        logger.info("%s %s (%s bytes)", "changed" if a.changed else "new", a.file, a.size_bytes)
    started = None
    if arrivals and then:
        target = load_target(then)
        target(source=landing, lake=lake)  # raises when the subflow fails
        started = {"mode": "subflow", "flow": target.name}
    return {"landing": landing, "arrivals": [asdict(a) for a in arrivals], "started": started}
