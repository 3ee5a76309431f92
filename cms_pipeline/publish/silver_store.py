"""The per-batch store of incremental silver: which store a build adds to, what it added,
and what a publish may drop.

Typed and decoded rows of each bronze batch are kept in a schema `silver_store_<id>`
(dbt_project/models/silver/store, one partition per `_batch_id`) that is never published.
A silver build types only the batches of its bronze snapshot that the store lacks; its
models read exactly the snapshot's batches from there (dbt_project/README.md,
"Incremental silver"). A store is reused while the code that shapes its rows is
unchanged; new code or `--full-refresh` starts a new store, and the old one stays for the
published and rollback builds until no kept build reads it.

A silver build's dbt vars name its snapshot's batches and its store (`store_vars`); they
are kept in its run record (cms_pipeline.publish.records), from which the next build
chooses its store and a publish learns what to keep.
"""

from __future__ import annotations

from cms_pipeline.config import Settings
from cms_pipeline.dbt_runner import DbtRun
from cms_pipeline.publish.fingerprints import store_fingerprint
from cms_pipeline.publish.records import BuildResult, run_records
from cms_pipeline.sql import statement

STORE_PREFIX = "silver_store_"


def choose_store(
    previous: list[BuildResult], fingerprint: str, build_id: str, full_refresh: bool
) -> str:
    """The store a silver build adds to (pure): that of the newest earlier build made with
    the same store code, else a new one named after this build. `previous` are earlier
    silver builds; a full refresh always starts a new store."""
    if not full_refresh:
        for build in sorted(previous, key=lambda b: b.started_at, reverse=True):
            if build.silver_store and build.store_fingerprint == fingerprint:
                return build.silver_store
    return f"{STORE_PREFIX}{build_id}"


def snapshot_batches(settings: Settings, versions: dict[str, int]) -> dict[str, list[str]]:
    """{bronze table: its `_batch_id`s} at the pinned Delta versions (what the build reads)."""
    from cms_pipeline.ingest.delta_writer import batches_in_table, open_table
    from cms_pipeline.lake import bronze_uri

    return {
        table: sorted(batches_in_table(open_table(bronze_uri(settings, table), version)))
        for table, version in versions.items()
    }


def stored_by_build(spark, relations: list[str], build_id: str) -> dict[str, dict[str, int]]:
    """{store model: {batch: rows}} that this build added: the proof that a build typed
    only the new batches."""
    added = {}
    for relation in relations:
        rows = spark.sql(
            statement("count_stored_batches", relation=relation, build_id=build_id)
        ).collect()
        added[relation.split(".")[-1]] = {r["_batch_id"]: r["row_count"] for r in rows}
    return added


def kept(builds: list[BuildResult]) -> dict:
    """What a publish keeps of the stores, given the builds it keeps (the published one and
    the rollback target): their store schemas and every bronze batch they read. Arguments
    of the dbt macro `prune_silver_stores` (pure)."""
    stores = sorted({b.silver_store for b in builds if b.silver_store})
    batches = sorted({batch for b in builds for ids in b.bronze_batches.values() for batch in ids})
    return {"prefix": STORE_PREFIX, "keep_stores": stores, "keep_batches": batches}


STORE_VARS = ("bronze_batches", "silver_store", "store_fingerprint")  # store_vars' keys


def store_vars(
    settings: Settings, bronze_versions: dict[str, int], build_id: str, full_refresh: bool
) -> dict:
    """dbt vars of a silver build (`STORE_VARS`, also in its run record): its bronze
    snapshot's batches and the per-batch store it adds to."""
    fingerprint = store_fingerprint(settings)
    previous = [record.build for record in run_records(settings, "silver")]
    return {
        "bronze_batches": snapshot_batches(settings, bronze_versions),
        "silver_store": choose_store(previous, fingerprint, build_id, full_refresh),
        "store_fingerprint": fingerprint,
    }


def stored_batches(spark, run: DbtRun | None, store: str | None, build_id: str) -> dict:
    if run is None or store is None:
        return {}
    relations = [
        n.relation
        for n in run.of_type("model")
        if n.status == "success" and n.relation and n.relation.startswith(f"{store}.")
    ]
    return stored_by_build(spark, relations, build_id)
