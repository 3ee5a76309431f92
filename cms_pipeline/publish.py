"""Gated builds: build a layer into its own schema, publish it only after its gate passes.

    build_layer(settings, spark, "silver", build_id)   # dbt build -> silver_build_<id>
    ... quality gate on result.schema ...
    promote(settings, spark, "silver", build_id)       # silver.<x> -> views on the build

A failed build or gate never touches the published schema: `promote` refuses a build whose
run record is not successful. The published build and the one before it are kept (for
`rollback`); older build schemas are dropped. Each run is recorded as JSON under
METADATA/dbt_runs and appended to the Delta table LAKE/_meta/dbt_runs, with the bronze
Delta versions it read.

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
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cms_pipeline.atomic import fsync_dir, write_json_atomic
from cms_pipeline.config import PROJECT_ROOT, Settings
from cms_pipeline.dbt_runner import DbtError, DbtRun, NodeResult, describe_problems, run_dbt
from cms_pipeline.fingerprint import files_fingerprint
from cms_pipeline.lake import meta_uri

log = logging.getLogger(__name__)

LAYERS = ("silver", "gold")
# what each layer's build selects (seeds are codebook lookups, published with silver)
_SELECT = {"silver": ["path:models/silver", "path:seeds"], "gold": ["path:models/gold"]}
# views too: silver models on the per-batch store are views (README "Incremental silver");
# steps that are not part of a layer say `publish: false`
_PUBLISHED_MATERIALIZATIONS = ("table", "view", "incremental", "seed")
# dbt tests that the layer's Soda gate repeats on the same build schema (a key is present,
# unique, found in its parent table): a build that the gate checks next leaves them to it
# (each is a full scan of a table of millions of rows). Other builds run them.
_LEFT_TO_THE_GATE = "tag:repeated_by_soda"


class PublishError(RuntimeError):
    """A build cannot be published (it failed, or nothing was recorded for it)."""


@dataclass
class BuildResult:
    layer: str
    build_id: str
    schema: str
    success: bool
    models: list[str] = field(default_factory=list)  # relations to publish (tables, seeds)
    tests: list[dict] = field(default_factory=list)  # one dict per data or unit test
    bronze_versions: dict[str, int] = field(default_factory=dict)
    upstream_build: str | None = None  # gold: the silver build it read
    select: list[str] | None = None  # part of the layer only (never published)
    exclude: list[str] | None = None  # what it left out (never published)
    gated: bool = False  # the dbt tests its Soda gate repeats were left to the gate
    vars: dict = field(default_factory=dict)  # dbt vars given over dbt_project.yml's
    bronze_batches: dict[str, list[str]] = field(default_factory=dict)  # silver: the snapshot
    silver_store: str | None = None  # silver: the per-batch store it read and added to
    store_fingerprint: str = ""  # the code that shaped the store's rows
    stored_batches: dict[str, dict[str, int]] = field(default_factory=dict)  # what it added
    code_sha256: str = ""  # the transformation and check code it was built with
    started_at: str = ""
    elapsed: float = 0.0
    error: str | None = None

    @property
    def failed_tests(self) -> list[dict]:
        return [t for t in self.tests if t["status"] in ("fail", "error")]

    def to_dict(self) -> dict:
        return asdict(self)

    def raise_for_failure(self) -> None:
        if not self.success:
            raise PublishError(f"{self.layer} build {self.build_id} failed:\n{self.error}")


def new_build_id() -> str:
    """Sortable and unique: UTC time, then a short random suffix. Lower case, as the
    metastore stores schema names in lower case."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S") + "_" + uuid.uuid4().hex[:6]


def build_schema(layer: str, build_id: str) -> str:
    return f"{layer}_build_{build_id}"


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")


def _build_vars(layer: str, build_id: str) -> dict:
    return {"build_layer": layer, "build_id": build_id}


def build_layer(
    settings: Settings,
    spark,
    layer: str,
    build_id: str,
    *,
    bronze_versions: dict[str, int] | None = None,
    full_refresh: bool = False,
    fail_fast: bool = False,
    vars: dict | None = None,
    select: list[str] | None = None,
    exclude: list[str] | None = None,
    gated: bool = False,
) -> BuildResult:
    """`dbt build` of one layer into `<layer>_build_<build_id>`, with its tests.

    Silver first pins `bronze.*` to the latest committed Delta versions (or to
    `bronze_versions`) and records them. `vars` override dbt vars of dbt_project.yml.
    `select` and `exclude` (dbt selectors) build only part of the layer (or skip its
    tests): such a build is never published. `gated`: the layer's Soda gate checks the
    build next, so the dbt tests it repeats are left to it. Returns the result (check
    `.success`); never publishes.
    """
    _check_layer(layer)
    if not build_id.replace("_", "").isalnum() or build_id != build_id.lower():
        raise ValueError(f"build_id must be lower-case letters, digits and _, got {build_id!r}")
    complete_interrupted_publish(settings, spark)  # the build reads what is published
    started = datetime.now(UTC)
    upstream = None
    store: dict = {}
    if layer == "silver":
        from cms_pipeline.bronze_catalog import sync_bronze

        bronze_versions = sync_bronze(spark, settings, bronze_versions)
        store = _silver_store_vars(settings, bronze_versions, build_id, full_refresh)
    else:
        silver = published_build(settings, "silver")
        upstream = silver["build_id"] if silver else None
        bronze_versions = (silver or {}).get("bronze_versions", {})
    # a selection stays within the layer: each selector intersected with the layer's paths
    scope = [f"{base},{s}" for s in select for base in _SELECT[layer]] if select else _SELECT[layer]
    selection = ["--select", *scope, "--indirect-selection", "buildable"]
    excluded = [*([_LEFT_TO_THE_GATE] if gated else []), *(exclude or [])]
    if excluded:
        selection += ["--exclude", *excluded]
    options = [
        *(["--full-refresh"] if full_refresh else []),
        *(["--fail-fast"] if fail_fast else []),
    ]
    error = None
    code = code_fingerprint(settings)
    try:
        run = _build_then_unit_test(
            settings,
            spark,
            selection,
            options,
            vars={**(vars or {}), **store, **_build_vars(layer, build_id)},
            passed=None if vars else unit_tests_passed(settings, layer, code),
        )
    except DbtError as exc:
        run, error = exc.run, str(exc)
    result = BuildResult(
        layer=layer,
        build_id=build_id,
        schema=build_schema(layer, build_id),
        success=error is None,
        models=_published_relations(run),
        tests=[n.to_dict() for n in (run.of_type("test", "unit_test") if run else [])],
        bronze_versions=dict(bronze_versions or {}),
        upstream_build=upstream,
        select=select,
        exclude=exclude,
        gated=gated,
        vars=dict(vars or {}),
        bronze_batches=store.get("bronze_batches", {}),
        silver_store=store.get("silver_store"),
        store_fingerprint=store.get("store_fingerprint", ""),
        stored_batches=_stored_batches(spark, run, store.get("silver_store"), build_id),
        code_sha256=code,
        started_at=started.isoformat(),
        elapsed=run.elapsed if run else 0.0,
        error=error or (describe_problems(run) or None if run and not run.success else None),
    )
    record_run(settings, result, run)
    return result


def _build_then_unit_test(
    settings: Settings,
    spark,
    selection: list[str],
    options: list[str],
    vars: dict,
    passed: DbtRun | None = None,
) -> DbtRun:
    """`dbt build` of the selection without its unit tests, then its unit tests, unless
    `passed` holds the passing unit tests of an earlier build of the same code.

    dbt runs a model's unit tests before the model and starts the shallowest nodes of the
    graph first, so a unit test puts its model a level deeper: the largest model (the
    carrier line store) waited 105 s at scale 1.0 behind seeds and small models. Unit tests
    need their inputs' tables to exist, so they run once the models are built; a failure
    still fails the build, which is then never published.
    """
    built = run_dbt(
        settings,
        ["build", *selection, "--exclude-resource-type", "unit_test", *options],
        spark=spark,
        vars=vars,
    )
    if passed is not None:
        return _joined(built, passed)
    try:
        tested = run_dbt(
            settings, ["test", *selection, "--resource-type", "unit_test"], spark=spark, vars=vars
        )
    except DbtError as exc:
        raise DbtError(str(exc), _joined(built, exc.run)) from exc
    return _joined(built, tested)


def unit_tests_passed(settings: Settings, layer: str, code: str) -> DbtRun | None:
    """The unit tests of the latest earlier build of `layer` whose code fingerprint is
    `code` and whose unit tests all ran and passed, each marked with that build; None
    when there is no such build.

    A unit test reads only the rows its yml constructs and the code (models, macros,
    fixtures, mappings: all in the fingerprint; dbt vars given to a build change models,
    so such a build neither covers nor is covered), so on the same code it gives the same
    answer: a lake runs them once per code version rather than in every build (dbt, too,
    advises unit tests in development and CI rather than on every production run).
    """
    for path in sorted(runs_dir(settings).glob(f"{layer}_*.json"), reverse=True):
        record = json.loads(path.read_text())
        partial = record.get("select") or record.get("exclude")  # ran some unit tests only
        other = record.get("code_sha256") != code or record.get("vars")  # other models
        if partial or other or not record.get("dbt"):
            continue
        nodes = [n for n in record["dbt"]["nodes"] if n["resource_type"] == "unit_test"]
        if nodes and all(n["status"] == "pass" for n in nodes):
            why = f"passed in {layer} build {record['build_id']}, on the same code"
            return DbtRun(
                args=["test", "--resource-type", "unit_test", f"({why})"],
                success=True,
                elapsed=0.0,
                nodes=[NodeResult(**{**n, "message": why}) for n in nodes],
            )
    return None


def _joined(first: DbtRun, second: DbtRun | None) -> DbtRun:
    """One record of two dbt commands run one after the other."""
    if second is None:
        return first
    return DbtRun(
        args=[*first.args, "&&", *second.args],
        success=first.success and second.success,
        elapsed=first.elapsed + second.elapsed,
        nodes=[*first.nodes, *second.nodes],
        error=second.error or first.error,
    )


def unit_test_layer(settings: Settings, spark, layer: str, vars: dict | None = None) -> DbtRun:
    """The layer's dbt unit tests on their own, as in development: no rows are built.

    A unit test's fixtures take their columns from the relations its model reads, and the
    layer's intermediate models exist only in build schemas. So the layer is built empty
    (`dbt build --empty`: every model with its columns and no rows, from bronze or the
    published silver) into a scratch build schema, the unit tests run against it, and the
    scratch schemas are dropped. Nothing is recorded or published. `vars` override dbt vars.
    Raises DbtError when a unit test fails (its run holds the results).
    """
    _check_layer(layer)
    build_id = new_build_id()
    store: dict = {}
    if layer == "silver":
        from cms_pipeline.bronze_catalog import sync_bronze

        store = _silver_store_vars(settings, sync_bronze(spark, settings), build_id, True)
    vars = {**(vars or {}), **store, **_build_vars(layer, build_id)}
    selection = ["--select", *_SELECT[layer]]
    scratch = [build_schema(layer, build_id)] + ([store["silver_store"]] if store else [])
    try:
        run_dbt(
            settings,
            [
                "build",
                *selection,
                "--empty",
                "--full-refresh",
                "--exclude-resource-type",
                "unit_test",
                "test",
            ],
            spark=spark,
            vars=vars,
        )
        return run_dbt(
            settings, ["test", *selection, "--resource-type", "unit_test"], spark=spark, vars=vars
        )
    finally:
        run_dbt(
            settings,
            ["run-operation", "drop_scratch_schemas", "--args", json.dumps({"schemas": scratch})],
            spark=spark,
            vars=vars,
        )


_STORE_VARS = ("bronze_batches", "silver_store", "store_fingerprint")  # _silver_store_vars' keys


def _silver_store_vars(
    settings: Settings, bronze_versions: dict[str, int], build_id: str, full_refresh: bool
) -> dict:
    """dbt vars of a silver build (`_STORE_VARS`, also in its run record): its bronze
    snapshot's batches and the per-batch store it adds to (cms_pipeline.silver_store)."""
    from cms_pipeline import silver_store

    fingerprint = silver_store.store_fingerprint(settings)
    previous = [json.loads(p.read_text()) for p in runs_dir(settings).glob("silver_*.json")]
    return {
        "bronze_batches": silver_store.snapshot_batches(settings, bronze_versions),
        "silver_store": silver_store.choose_store(previous, fingerprint, build_id, full_refresh),
        "store_fingerprint": fingerprint,
    }


def _stored_batches(spark, run: DbtRun | None, store: str | None, build_id: str) -> dict:
    if run is None or store is None:
        return {}
    from cms_pipeline.silver_store import stored_by_build

    relations = [
        n.relation
        for n in run.of_type("model")
        if n.status == "success" and n.relation and n.relation.startswith(f"{store}.")
    ]
    return stored_by_build(spark, relations, build_id)


def code_fingerprint(settings: Settings) -> str:
    """SHA-256 of everything that shapes silver and gold or decides their gates: the dbt
    project, the source mappings, the storage formats and the silver and gold checks."""
    from cms_pipeline.dbt_runner import DBT_PROJECT_DIR

    config = Path(settings.config_dir)
    roots = [
        *(DBT_PROJECT_DIR / d for d in ("models", "macros", "seeds", "tests")),
        DBT_PROJECT_DIR / "dbt_project.yml",
        config / "mappings",
        config / "storage.yaml",
        *(PROJECT_ROOT / "soda_checks" / layer for layer in LAYERS),
    ]
    return files_fingerprint(roots)


def current_layers(settings: Settings, bronze_versions: dict[str, int]) -> dict | None:
    """The published silver and gold builds when a rebuild would change nothing: silver
    read the same bronze (`_reads_same_bronze`), gold was built on that silver, and both
    with today's code. None when either layer must be built again."""
    silver, gold = published_build(settings, "silver"), published_build(settings, "gold")
    if not silver or not gold:
        return None
    code = code_fingerprint(settings)
    fresh = (
        gold.get("upstream_build") == silver["build_id"]
        and silver.get("code_sha256") == gold.get("code_sha256") == code
        and _reads_same_bronze(settings, silver, bronze_versions)
    )
    return {"silver": silver, "gold": gold} if fresh else None


def _reads_same_bronze(settings: Settings, silver: dict, bronze_versions: dict[str, int]) -> bool:
    """Silver read exactly these bronze versions, or the same batches at other versions: a
    batch's rows never change once committed, so a retraction that takes bronze back to
    the batches the published build read (or a compaction) needs no rebuild."""
    if silver.get("bronze_versions") == bronze_versions:
        return True
    read = silver.get("bronze_batches")
    if read is None or set(read) != set(bronze_versions):
        return False
    from cms_pipeline.silver_store import snapshot_batches

    return snapshot_batches(settings, bronze_versions) == read


def _published_relations(run: DbtRun | None) -> list[str]:
    if run is None:
        return []
    return sorted(
        n.name
        for n in run.of_type("model", "seed")
        if n.status == "success" and n.materialized in _PUBLISHED_MATERIALIZATIONS and n.publish
    )


# --- run records ----------------------------------------------------------------------


def runs_dir(settings: Settings) -> Path:
    path = settings.metadata_path("dbt_runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_record_path(settings: Settings, layer: str, build_id: str) -> Path:
    return runs_dir(settings) / f"{layer}_{build_id}.json"


def record_run(settings: Settings, result: BuildResult, run: DbtRun | None) -> Path:
    """JSON record (full detail) and one row in the Delta table LAKE/_meta/dbt_runs."""
    path = run_record_path(settings, result.layer, result.build_id)
    body = {**result.to_dict(), "dbt": run.to_dict() if run else None}
    write_json_atomic(path, body, indent=2, default=str)
    _append_run_row(settings, result)
    return path


def _append_run_row(settings: Settings, result: BuildResult) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from cms_pipeline.storage import delta_storage_options

    row = {
        "build_id": result.build_id,
        "layer": result.layer,
        "schema": result.schema,
        "success": result.success,
        "started_at": result.started_at,
        "elapsed_s": float(result.elapsed),
        "models": json.dumps(result.models),
        "tests_failed": len(result.failed_tests),
        "tests_total": len(result.tests),
        "bronze_versions": json.dumps(result.bronze_versions, sort_keys=True),
        "upstream_build": result.upstream_build,
        "error": result.error,
    }
    uri = meta_uri(settings, "dbt_runs")
    write_deltalake(
        uri,
        pa.Table.from_pylist([row]),
        mode="append",
        storage_options=delta_storage_options(uri),
        schema_mode="merge",
    )


def read_run_record(settings: Settings, layer: str, build_id: str) -> dict:
    path = run_record_path(settings, layer, build_id)
    if not path.exists():
        raise PublishError(f"{path}: no run record for {layer} build {build_id}; build it first")
    return json.loads(path.read_text())


# --- publishing -----------------------------------------------------------------------


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
    _check_layer(layer)
    complete_interrupted_publish(settings, spark)
    record = read_run_record(settings, layer, build_id)
    if not record["success"]:
        raise PublishError(
            f"{layer} build {build_id} failed; the published {layer} schema is unchanged.\n"
            f"{record.get('error') or ''}"
        )
    if record.get("gated") and not gate_passed:
        raise PublishError(
            f"{layer} build {build_id} left its `{_LEFT_TO_THE_GATE}` dbt tests to the Soda "
            f"gate, which has not passed it; the published {layer} schema is unchanged. "
            "Publish it through its gate (`cms-pipeline run`, or the transform flow), or "
            f"build {layer} again without the gate (`cms-pipeline transform`)."
        )
    if record.get("select") or record.get("exclude"):
        raise PublishError(
            f"{layer} build {build_id} built only {record.get('select') or 'part'}"
            f" (excluding {record.get('exclude') or 'nothing'}); publish a whole build"
        )
    relations = sorted(models if models is not None else record["models"])
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
    if layer == "silver":  # drop what no kept build reads of the per-batch stores
        from cms_pipeline.silver_store import kept

        kept_records = [record] + [
            read_run_record(settings, layer, b)
            for b in keep[1:]
            if run_record_path(settings, layer, b).exists()
        ]
        args["stores"] = kept(kept_records)
    # the build's own vars (not read by the macro): dbt parses the project again whenever
    # its vars change, 4 s of a silver publish at scale 1.0
    store = {k: record[k] for k in _STORE_VARS if k in record} if layer == "silver" else {}
    entry = {
        "build_id": build_id,
        "schema": build_schema(layer, build_id),
        "models": relations,
        "bronze_versions": record.get("bronze_versions", {}),
        "bronze_batches": record.get("bronze_batches"),  # silver: what current_layers compares
        "upstream_build": record.get("upstream_build"),
        "code_sha256": record.get("code_sha256", ""),
        "published_at": datetime.now(UTC).isoformat(),
    }
    intent = {
        "layer": layer,
        "build_id": build_id,
        "macro_args": args,
        "vars": {**store, **_build_vars(layer, build_id)},
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
