"""Flow: watch the landing area; announce each new or changed file as a Prefect event.

Each run lists the landing area and hashes only the files whose size or modification
time (in object stores: the object's stored version) changed since the watcher last saw
them (its memory: one small JSON file per landing area in the metadata folder, beside the
lake's ledger). A file whose bytes the ledger has
not loaded (or rejected), and that the watcher has not announced before with these
bytes, is an arrival: it emits one `cms.landing.file.arrived` event. The `pipeline`
deployment's trigger in prefect.yaml turns those events into a pipeline run. A file
announced that long ago (`announce_again_after_hours`) whose bytes the ledger still has
neither loaded nor refused is announced again: the run its event started failed or was
cancelled before ingesting it, and without a second event it would wait for ever.

Without a Prefect server or that trigger, `then` runs the pipeline (or only ingestion)
here as a subflow once the events are out.
The `watch-landing` deployment runs this on the interval of prefect.yaml.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

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
    again: bool = False  # announced before, and still not loaded nor refused


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
    """Each delivery's size, mtime (local files), stored version (objects: ETag,
    generation) and sha256, and the files hashed this time.

    A file with the size, mtime and version it had when last seen keeps its remembered
    hash (and whether it was announced): only new or changed files are read; an object
    rewritten with the same size has a new version."""
    files, hashed = {}, []
    for d in deliveries:
        before = memory.get(d.relative)
        state = d.found_as
        seen = {"size": state.size, "mtime": state.mtime, "version": state.version}
        if before and all(before.get(key) == value for key, value in seen.items()):
            files[d.relative] = before
            continue
        sha256, _ = sha256_of(d.uri)
        hashed.append(d.relative)
        files[d.relative] = {**seen, "sha256": sha256, "announced": False}
    return files, hashed


def announced_again(entry: dict, now: float, after_seconds: float) -> bool:
    """Announced with these bytes at least `after_seconds` ago (memories written before
    `announced_at` was kept count from the first poll that reads them)."""
    return entry["announced"] and now - entry.get("announced_at", now) >= after_seconds


# --- which files are arrivals -----------------------------------------------------------


def rejected_hashes(ledger: pa.Table) -> set[str]:
    mask = pc.equal(ledger.column("status"), "rejected")
    return set(ledger.filter(mask).column("sha256").to_pylist())


def new_arrivals(
    files: list[tuple[str, str, int]], ledger: pa.Table, again: frozenset[str] = frozenset()
) -> list[Arrival]:
    """Files (relative path, sha256, size) whose bytes the ledger has not seen; `again`:
    the paths among them that were announced before.

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
        arrivals.append(Arrival(relative, sha256, size, changed, relative in again))
    return arrivals


def unannounced(
    files: dict[str, dict], now: float | None = None, again_after: float | None = None
) -> list[tuple[str, str, int]]:
    """(path, sha256, size) of the files not announced yet with their present bytes, and
    of those announced at least `again_after` seconds before `now`."""
    return [
        (p, f["sha256"], f["size"])
        for p, f in sorted(files.items())
        if not f["announced"]
        or (again_after is not None and announced_again(f, now or time.time(), again_after))
    ]


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
    emit_event(**arrival_event(arrival, landing, lake))


@task(name="look for arrivals", retries=2, retry_delay_seconds=[5, 30])
def look_for_arrivals(landing: str, lake: str | None, again_after_hours: float) -> list[Arrival]:
    """Emit one event per new or changed file, and again per file announced
    `again_after_hours` ago and still not loaded; remember what was seen and announced."""
    settings = load_settings(lake=lake)
    deliveries, _ignored = discover(settings, landing)
    path = memory_path(settings, landing)
    files, hashed = hash_changed(deliveries, read_memory(path))
    now = time.time()
    due = unannounced(files, now, again_after_hours * 3600)
    again = frozenset(r for r, _, _ in due if files[r]["announced"])
    arrivals = new_arrivals(due, read_ledger(settings), again)
    for a in arrivals:
        announce(a, landing, settings.lake)
    for relative in {r for r, _, _ in due}:  # announced now, or loaded (or refused) already
        files[relative].update(announced=True, announced_at=now)
    for entry in files.values():  # a memory from before `announced_at` was kept
        if entry["announced"]:
            entry.setdefault("announced_at", now)
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
    landing: str | None = None,
    lake: str | None = None,
    then: Target | None = None,
    announce_again_after_hours: float = 6.0,
) -> dict:
    """Announce new or changed landing files as events; `then` also runs the pipeline
    (or only ingestion) on them here, for use without the pipeline's trigger.
    `announce_again_after_hours`: a file announced that long ago and still neither loaded
    nor refused is announced again (its run failed before ingesting it)."""
    landing = landing or load_settings(lake=lake).landing
    arrivals = look_for_arrivals(landing, lake, announce_again_after_hours)
    logger = get_run_logger()
    for a in arrivals:
        kind = "not loaded yet" if a.again else "changed" if a.changed else "new"
        logger.info("%s %s (%s bytes)", kind, a.file, a.size_bytes)
    started = None
    if arrivals and then:
        target = load_target(then)
        target(source=landing, lake=lake)  # raises when the subflow fails
        started = {"mode": "subflow", "flow": target.name}
    return {"landing": landing, "arrivals": [asdict(a) for a in arrivals], "started": started}
