"""Publishing: point a layer's published schema at a build, roll back, and finish or undo
a publish that a killed process left half done.

The published builds of each layer, newest first, are its publish history
(METADATA/publish/<layer>.json); `published_build` is the one readers see.

Publishing rolls forward (a publish intent, or journal). The metastore replaces one view
per statement, so a process killed half way through a publish would leave a layer half
old, half new. `promote` therefore:

1. writes METADATA/publish/<layer>.intent.json (atomically: cms_pipeline.atomic) holding
   everything the publish does: the `promote_layer` macro's arguments (the build schema,
   its relations, the views to drop, the builds and silver stores to keep), its dbt vars
   and the publish history to write after it, and which process wrote it;
2. runs the macro (CREATE OR REPLACE VIEW per relation, drops, then drops old builds);
3. writes the history METADATA/publish/<layer>.json atomically;
4. deletes the intent.

An intent that exists is a publish that did not finish. Every later command that writes
the lake completes it before it does anything else: `complete_interrupted_publish` runs
steps 2-4 again from the intent (each step is idempotent: views are created or replaced,
drops are `if exists`, the history is written whole, not appended, so the build is
recorded once). When it cannot (the build's tables were dropped by hand), the publish is
undone instead: the views go back to the build the history names (`undo_intent`), and
only when that fails too does the command stop, naming the intent file. It is called when a command takes the lake's writer lease
(cms_pipeline.lease.lake_lease) and again by `build_layer`, `promote`, exports and batch
scoring, so a process that ignored the lease is caught too. Under the lease no other
writer can be half way through a publish; an intent whose writer still runs on this host
is refused rather than taken over. Build schemas an intent names are always in its own
`keep`, and the next publish completes the intent first, so no drop ever removes a build
being published. The publish records live on local metadata (`settings.metadata`, also
for object-storage lakes), like the Derby metastore whose views they describe.

A reader that queries a layer while a live publish runs can still see views of both
builds for the seconds the macro takes; one that needs a fixed snapshot reads the build
schema named in `published_build()["schema"]`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from cms_pipeline.atomic import fsync_dir, write_json_atomic
from cms_pipeline.config import Settings
from cms_pipeline.dbt_runner import DbtError, run_dbt
from cms_pipeline.publish.layers import (
    LAYERS,
    LEFT_TO_THE_GATE,
    PublishError,
    build_schema,
    build_vars,
    layer_spec,
)
from cms_pipeline.publish.records import read_run_record, run_record_path
from cms_pipeline.publish.silver_store import STORE_VARS, kept

log = logging.getLogger(__name__)


def _publish_state_path(settings: Settings, layer: str) -> Path:
    return settings.metadata_path("publish", f"{layer}.json")


def intent_path(settings: Settings, layer: str) -> Path:
    return settings.metadata_path("publish", f"{layer}.intent.json")


def publish_history(settings: Settings, layer: str) -> list[dict]:
    """Published builds of a layer, newest first."""
    path = _publish_state_path(settings, layer)
    return json.loads(path.read_text()) if path.exists() else []


def published_build(settings: Settings, layer: str) -> dict | None:
    history = publish_history(settings, layer)
    return history[0] if history else None


def publish_intent(settings: Settings, layer: str) -> dict | None:
    """The publish of `layer` that started and has not finished, or None."""
    path = intent_path(settings, layer)
    if not path.exists():
        return None
    try:
        intent = json.loads(path.read_text())
    except json.JSONDecodeError as exc:  # written atomically: only a hand edit gets here
        raise PublishError(
            f"{path}: publish intent is not valid JSON ({exc}); restore it, or delete it to "
            f"keep {layer} as {_publish_state_path(settings, layer)} says and rebuild "
            "(`cms-pipeline transform`)"
        ) from exc
    return intent


def complete_interrupted_publish(settings: Settings, spark=None) -> list[dict]:
    """Finish every publish that a killed (or failed) process left half done, silver
    first: its views all point at the build it was publishing, its history records it
    once, its intent is gone. Returns the publish entries it completed (none: nothing
    was interrupted, and no Spark session is started). Call it before reading or
    writing a published layer; see the module docstring."""
    completed = []
    for layer in LAYERS:
        intent = publish_intent(settings, layer)
        if intent is None:
            continue
        _refuse_live_writer(intent, intent_path(settings, layer))
        log.warning(
            "completing the interrupted publish of %s build %s (started %s by pid %s)",
            layer,
            intent["build_id"],
            intent.get("written_at"),
            intent.get("writer", {}).get("pid"),
        )
        try:
            _apply(settings, spark, intent)
        except DbtError as exc:  # e.g. its build schema was dropped by hand: undo it
            _undo(settings, spark, intent, exc)
            continue
        completed.append(intent["history"][0])
    return completed


def undo_intent(intent: dict, published: list[dict]) -> dict:
    """The intent that puts `<layer>` back on the build published before `intent` (or
    on nothing, for a first publish), keeping every build and store `intent` keeps and
    the builds of `published` (the rollback target too), and leaving that history as it
    is (pure)."""
    args = intent["macro_args"]
    previous = published[0] if published else None
    relations = previous["models"] if previous else []
    return {
        **intent,
        "macro_args": {
            **args,
            "build_schema": previous["schema"] if previous else args["build_schema"],
            "relations": relations,
            "unpublish": sorted(set(args["relations"]) - set(relations)),
            "keep": [
                *args["keep"],
                *(h["build_id"] for h in published if h["build_id"] not in args["keep"]),
            ],
        },
        "history": published,
    }


def _undo(settings: Settings, spark, intent: dict, error: DbtError) -> None:
    layer = intent["layer"]
    path = intent_path(settings, layer)
    try:
        _apply(settings, spark, undo_intent(intent, publish_history(settings, layer)))
    except DbtError as again:
        raise PublishError(
            f"{path}: the interrupted publish of {layer} build {intent['build_id']} can be "
            f"neither completed nor undone, and {layer} may read two builds:\n{error}\n"
            f"undoing it: {again}\nFix the cause and run the command again (it retries "
            "from this file)"
        ) from again
    log.error(
        "the interrupted publish of %s build %s could not be completed (%s); undone: %s is "
        "back on the build published before",
        layer,
        intent["build_id"],
        error,
        layer,
    )


def _writer() -> dict:
    from cms_pipeline.lease import process_start_time

    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": process_start_time(pid)}


def _refuse_live_writer(intent: dict, path: Path) -> None:
    """An intent whose writer still runs here is a publish in progress, not an
    interrupted one (only a writer that ignored the lake's lease can meet it)."""
    from cms_pipeline.lease import START_TIME_TOLERANCE, process_start_time

    writer = intent.get("writer") or {}
    if writer.get("host") != socket.gethostname() or writer.get("pid") in (None, os.getpid()):
        return  # another host: the lease keeps writers apart; this process: roll forward
    started = process_start_time(writer["pid"])
    if started is None or not writer.get("started"):
        return
    if math.isnan(started) or abs(started - writer["started"]) < START_TIME_TOLERANCE:
        raise PublishError(
            f"{path}: pid {writer['pid']} is publishing {intent['layer']} build "
            f"{intent['build_id']} right now; run writing commands one at a time (they "
            "hold the lake's lease), or wait for it to finish"
        )


def _apply(settings: Settings, spark, intent: dict) -> None:
    """Steps 2-4 of a publish (module docstring); each one may run again."""
    layer = intent["layer"]
    run_dbt(
        settings,
        ["run-operation", "promote_layer", "--args", json.dumps(intent["macro_args"])],
        spark=spark,
        vars=intent["vars"],
    )
    write_json_atomic(_publish_state_path(settings, layer), intent["history"], indent=2)
    path = intent_path(settings, layer)
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def promote(
    settings: Settings,
    spark,
    layer: str,
    build_id: str,
    models: list[str] | None = None,
    gate_passed: bool = False,
) -> dict:
    """Point the published schema `<layer>` at this build (one view per table).

    Refuses a build whose run record says it failed, and a gated build (one that left
    some dbt tests to its Soda gate) unless `gate_passed`. Keeps the previous build for
    `rollback` and drops older build schemas. Completes an interrupted publish first,
    and rolls forward if killed itself (module docstring). Returns the new publish entry.
    """
    spec = layer_spec(layer)
    complete_interrupted_publish(settings, spark)
    build = read_run_record(settings, layer, build_id).build
    if not build.success:
        raise PublishError(
            f"{layer} build {build_id} failed; the published {layer} schema is unchanged.\n"
            f"{build.error or ''}"
        )
    if build.gated and not gate_passed:
        raise PublishError(
            f"{layer} build {build_id} left its `{LEFT_TO_THE_GATE}` dbt tests to the Soda "
            f"gate, which has not passed it; the published {layer} schema is unchanged. "
            "Publish it through its gate: `cms-pipeline transform`, `cms-pipeline run` or "
            "the transform flow."
        )
    if build.select or build.exclude:
        raise PublishError(
            f"{layer} build {build_id} built only {build.select or 'part'}"
            f" (excluding {build.exclude or 'nothing'}); publish a whole build"
        )
    relations = sorted(models if models is not None else build.models)
    if not relations:
        raise PublishError(f"{layer} build {build_id} made no tables to publish")
    published = publish_history(settings, layer)
    history = [h for h in published if h["build_id"] != build_id]
    keep = [build_id] + [h["build_id"] for h in history[:1]]
    args = {
        "layer": layer,
        "build_schema": build_schema(layer, build_id),
        "relations": relations,
        # views that earlier publishes made and this build no longer has; other views in
        # the schema (the predictions views of models_ml.batch) are not the publish's
        "unpublish": sorted({m for h in published for m in h["models"]} - set(relations)),
        "keep": keep,
    }
    if spec.has_store:  # drop what no kept build reads of the per-batch stores
        kept_builds = [build] + [
            read_run_record(settings, layer, b).build
            for b in keep[1:]
            if run_record_path(settings, layer, b).exists()
        ]
        args["stores"] = kept(kept_builds)
    # the build's own vars (not read by the macro): dbt parses the project again whenever
    # its vars change, 4 s of a silver publish at scale 1.0
    store = {k: getattr(build, k) for k in STORE_VARS} if spec.has_store else {}
    entry = {
        "build_id": build_id,
        "schema": build_schema(layer, build_id),
        "models": relations,
        "bronze_versions": build.bronze_versions,
        "bronze_batches": build.bronze_batches,  # silver: what current_layers compares
        "upstream_build": build.upstream_build,
        "code_sha256": build.code_sha256,
        "published_at": datetime.now(UTC).isoformat(),
    }
    intent = {
        "layer": layer,
        "build_id": build_id,
        "macro_args": args,
        "vars": {**store, **build_vars(layer, build_id)},
        "history": [entry] + history[:1],  # older builds' schemas are dropped
        "writer": _writer(),
        "written_at": entry["published_at"],
    }
    write_json_atomic(intent_path(settings, layer), intent, indent=2)
    _apply(settings, spark, intent)
    return entry


def rollback(settings: Settings, spark, layer: str) -> dict:
    """Publish the build before the current one again."""
    complete_interrupted_publish(settings, spark)
    history = publish_history(settings, layer)
    if len(history) < 2:
        raise PublishError(f"no previous {layer} build to roll back to")
    previous = history[1]  # published before, so it passed its gate if it had one
    return promote(
        settings, spark, layer, previous["build_id"], previous["models"], gate_passed=True
    )
