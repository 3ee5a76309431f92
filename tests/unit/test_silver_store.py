"""Which per-batch store a silver build adds to, and what a publish keeps of the stores."""

from __future__ import annotations

from cms_pipeline.publish.fingerprints import store_fingerprint
from cms_pipeline.publish.records import BuildResult
from cms_pipeline.publish.silver_store import STORE_PREFIX, choose_store, kept


def record(build_id, store=None, fingerprint="f1", started="2026-01-01T00:00:00", batches=None):
    return BuildResult(
        layer="silver",
        build_id=build_id,
        schema=f"silver_build_{build_id}",
        success=True,
        silver_store=store,
        store_fingerprint=fingerprint if store else "",
        started_at=started,
        bronze_batches=batches or {},
    )


def test_first_build_starts_a_store_named_after_it():
    assert choose_store([], "f1", "b1", full_refresh=False) == f"{STORE_PREFIX}b1"


def test_a_build_reuses_the_newest_store_made_by_the_same_code():
    previous = [
        record("b1", "silver_store_b1", started="2026-01-01T00:00:00"),
        record("b2", "silver_store_b2", started="2026-01-02T00:00:00"),
        record("b3", "silver_store_b3", fingerprint="old", started="2026-01-03T00:00:00"),
        record("b0", started="2026-01-04T00:00:00"),  # built before the store
    ]
    assert choose_store(previous, "f1", "b4", full_refresh=False) == "silver_store_b2"


def test_new_code_or_a_full_refresh_starts_a_new_store():
    previous = [record("b1", "silver_store_b1")]
    assert choose_store(previous, "f2", "b2", full_refresh=False) == f"{STORE_PREFIX}b2"
    assert choose_store(previous, "f1", "b2", full_refresh=True) == f"{STORE_PREFIX}b2"


def test_a_publish_keeps_the_stores_and_batches_its_kept_builds_read():
    published = record("b2", "silver_store_b2", batches={"carrier_claims": ["c1", "c2"]})
    rollback = record("b1", "silver_store_b1", batches={"carrier_claims": ["c1"], "pde": ["p1"]})
    assert kept([published, rollback]) == {
        "prefix": STORE_PREFIX,
        "keep_stores": ["silver_store_b1", "silver_store_b2"],
        "keep_batches": ["c1", "c2", "p1"],
    }
    # a build from before the store keeps nothing of it
    assert kept([record("b0")])["keep_stores"] == []


def test_store_fingerprint_follows_mappings_not_other_config(settings, copied_config):
    moved, config = copied_config
    assert store_fingerprint(moved) == store_fingerprint(settings)
    (config / "pipeline.yaml").write_text((config / "pipeline.yaml").read_text() + "\n# x\n")
    assert store_fingerprint(moved) == store_fingerprint(settings)
    mapping = config / "mappings" / "carrier_claims.yaml"
    mapping.write_text(mapping.read_text() + "\n# changed\n")
    assert store_fingerprint(moved) != store_fingerprint(settings)
