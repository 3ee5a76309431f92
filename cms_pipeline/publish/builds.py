"""Builds: `dbt build` of one layer into its own build schema, with its tests, recorded
and never published here (cms_pipeline.publish.publishing publishes a build).

Also what decides whether a build is needed at all: the code fingerprint of everything
that shapes silver and gold, and `current_layers` (the published builds when a rebuild
would change nothing). A build's unit tests are skipped when an earlier build of the
same code passed them (`unit_tests_passed`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from cms_pipeline.config import Settings
from cms_pipeline.dbt_runner import DbtError, DbtRun, describe_problems, run_dbt
from cms_pipeline.publish.fingerprints import code_fingerprint
from cms_pipeline.publish.layers import (
    LEFT_TO_THE_GATE,
    LayerSpec,
    build_schema,
    build_vars,
    layer_spec,
)
from cms_pipeline.publish.publishing import complete_interrupted_publish, published_build
from cms_pipeline.publish.records import BuildResult, record_run, run_records
from cms_pipeline.publish.silver_store import (
    snapshot_batches,
    store_vars,
    stored_batches,
)


def new_build_id() -> str:
    """Sortable and unique: UTC time, then a short random suffix. Lower case, as the
    metastore stores schema names in lower case."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S") + "_" + uuid.uuid4().hex[:6]


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
    spec = layer_spec(layer)
    if not build_id.replace("_", "").isalnum() or build_id != build_id.lower():
        raise ValueError(f"build_id must be lower-case letters, digits and _, got {build_id!r}")
    complete_interrupted_publish(settings, spark)  # the build reads what is published
    started = datetime.now(UTC)
    upstream = None
    store: dict = {}
    if spec.upstream is None:
        from cms_pipeline.bronze_catalog import sync_bronze

        bronze_versions = sync_bronze(spark, settings, bronze_versions)
    else:
        read = published_build(settings, spec.upstream)
        upstream = read["build_id"] if read else None
        bronze_versions = (read or {}).get("bronze_versions", {})
    if spec.has_store:
        store = store_vars(settings, bronze_versions, build_id, full_refresh)
    # a selection stays within the layer: each selector intersected with the layer's paths
    scope = [f"{base},{s}" for s in select for base in spec.select] if select else spec.select
    selection = ["--select", *scope, "--indirect-selection", "buildable"]
    excluded = [*([LEFT_TO_THE_GATE] if gated else []), *(exclude or [])]
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
            vars={**(vars or {}), **store, **build_vars(layer, build_id)},
            passed=None if vars else unit_tests_passed(settings, layer, code),
        )
    except DbtError as exc:
        run, error = exc.run, str(exc)
    result = BuildResult(
        layer=layer,
        build_id=build_id,
        schema=build_schema(layer, build_id),
        success=error is None,
        models=_published_relations(run, spec),
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
        stored_batches=stored_batches(spark, run, store.get("silver_store"), build_id),
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
    for record in run_records(settings, layer):
        build, dbt = record.build, record.dbt
        partial = build.select or build.exclude  # ran some unit tests only
        other = build.code_sha256 != code or build.vars  # other models
        if partial or other or dbt is None:
            continue
        nodes = dbt.of_type("unit_test")
        if nodes and all(n.status == "pass" for n in nodes):
            why = f"passed in {layer} build {build.build_id}, on the same code"
            return DbtRun(
                args=["test", "--resource-type", "unit_test", f"({why})"],
                success=True,
                elapsed=0.0,
                nodes=[replace(n, message=why) for n in nodes],
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
    spec = layer_spec(layer)
    build_id = new_build_id()
    store: dict = {}
    if spec.has_store:  # a store holds bronze batches: pin bronze first
        from cms_pipeline.bronze_catalog import sync_bronze

        store = store_vars(settings, sync_bronze(spark, settings), build_id, True)
    vars = {**(vars or {}), **store, **build_vars(layer, build_id)}
    selection = ["--select", *spec.select]
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
    return snapshot_batches(settings, bronze_versions) == read


def _published_relations(run: DbtRun | None, spec: LayerSpec) -> list[str]:
    if run is None:
        return []
    return sorted(
        n.name
        for n in run.of_type("model", "seed")
        if n.status == "success" and n.materialized in spec.published_materializations and n.publish
    )
