"""When the pipeline may keep the published silver and gold instead of building again."""

from __future__ import annotations

import json

from cms_pipeline.publish.builds import current_layers
from cms_pipeline.publish.fingerprints import code_fingerprint
from cms_pipeline.publish.publishing import _publish_state_path

VERSIONS = {"beneficiary_summary": 3, "inpatient_claims": 2}


def publish(settings, layer, build_id, **entry):
    path = _publish_state_path(settings, layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"build_id": build_id, **entry}]))


def publish_both(settings, versions=VERSIONS, code=None, upstream="s1"):
    code = code or code_fingerprint(settings)
    publish(settings, "silver", "s1", bronze_versions=versions, code_sha256=code)
    publish(
        settings, "gold", "g1", bronze_versions=versions, upstream_build=upstream, code_sha256=code
    )


def test_current_when_same_bronze_versions_and_same_code(settings):
    publish_both(settings)
    current = current_layers(settings, dict(VERSIONS))
    assert current["silver"]["build_id"] == "s1" and current["gold"]["build_id"] == "g1"


def test_not_current_before_anything_is_published(settings):
    assert current_layers(settings, VERSIONS) is None


def test_not_current_when_bronze_moved_on(settings):
    publish_both(settings)
    assert current_layers(settings, {**VERSIONS, "inpatient_claims": 3}) is None
    assert current_layers(settings, {**VERSIONS, "carrier_claims": 0}) is None


def test_not_current_when_the_code_changed(settings):
    publish_both(settings, code="0" * 64)
    assert current_layers(settings, VERSIONS) is None


def test_not_current_when_gold_was_built_on_another_silver(settings):
    publish_both(settings, upstream="s0")
    assert current_layers(settings, VERSIONS) is None


def test_fingerprint_follows_the_config_it_reads(settings, copied_config):
    moved, config = copied_config
    assert code_fingerprint(moved) == code_fingerprint(settings)
    (config / "storage.yaml").write_text((config / "storage.yaml").read_text() + "\n# changed\n")
    assert code_fingerprint(moved) != code_fingerprint(settings)


def bronze_with_batches(settings, table, *batches):
    """A bronze Delta table whose versions add then remove the given batches, as ingest and
    a retraction do: returns its version after each batch, then after removing the last."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from cms_pipeline.lake import bronze_uri

    uri = bronze_uri(settings, table)
    for batch in batches:
        rows = pa.table({"x": [1, 2], "_batch_id": [batch, batch]})
        write_deltalake(uri, rows, mode="append", partition_by=["_batch_id"])
    DeltaTable(uri).delete(f"_batch_id = '{batches[-1]}'")
    return DeltaTable(uri).version()


def test_current_when_bronze_holds_the_same_batches_at_a_later_version(settings):
    """A retraction takes bronze back to the batches the published silver read: nothing to
    rebuild, although the Delta version moved on."""
    after_retraction = bronze_with_batches(settings, "inpatient_claims", "b1", "bad")
    read = {"inpatient_claims": 0}  # silver read version 0: batch b1 only
    code = code_fingerprint(settings)
    publish(
        settings,
        "silver",
        "s1",
        bronze_versions=read,
        bronze_batches={"inpatient_claims": ["b1"]},
        code_sha256=code,
    )
    publish(settings, "gold", "g1", upstream_build="s1", code_sha256=code)
    assert current_layers(settings, {"inpatient_claims": after_retraction})["gold"]["build_id"]
    # version 1 still holds the bad batch: silver must be built again
    assert current_layers(settings, {"inpatient_claims": 1}) is None
    # a table the published silver did not read
    assert current_layers(settings, {"inpatient_claims": 0, "carrier_claims": 0}) is None
