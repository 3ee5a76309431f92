"""Incremental silver: a build types only the bronze batches its per-batch store lacks,
gives the rows a full refresh gives, and a changed delivery supersedes the older rows
(dbt_project/README.md, "Incremental silver").

Its own lake on the session's SparkSession, with sample_0 and then one more (changed)
carrier delivery. Only the models on the store and their inputs are built (`select`), and
without the data tests, which keeps the test small; such partial builds are never
published, so the session's published layers are untouched.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from cms_pipeline.config import load_settings
from cms_pipeline.ingest import ingest
from cms_pipeline.publish.builds import build_layer, new_build_id
from cms_pipeline.publish.layers import PublishError
from cms_pipeline.publish.publishing import promote
from tests.conftest import SAMPLE_DATA

pytestmark = pytest.mark.integration

SELECT = ["+carrier_lines", "+carrier_claims", "+prescription_drug_events"]
PART = {"select": SELECT, "exclude": ["resource_type:test"]}  # data tests run in test_pipeline*
ON_STORE = ["carrier_claims", "carrier_lines", "prescription_drug_events"]
CARRIER_A = "DE1_0_2008_to_2010_Carrier_Claims_Sample_0A.csv"
EXTRA = Decimal("1000")  # added to the first line payment of the changed claim


def _changed_delivery(folder) -> dict:
    """sample_0's carrier file A delivered again under its name: its first claim with a
    higher first-line payment, plus one new claim (same values, another CLM_ID)."""
    header, first, *_ = (SAMPLE_DATA / "sample_0" / CARRIER_A).read_text().splitlines()
    names = [n.strip('"') for n in header.split(",")]
    changed = dict(zip(names, first.split(","), strict=True))
    old_payment = Decimal(changed["LINE_NCH_PMT_AMT_1"] or "0")
    changed["LINE_NCH_PMT_AMT_1"] = str(old_payment + EXTRA)
    new = {**changed, "CLM_ID": changed["CLM_ID"] + "1"}
    lines = [header] + [",".join(row[n] for n in names) for row in (changed, new)]
    folder.mkdir()
    (folder / CARRIER_A).write_text("\n".join(lines) + "\n")
    return {"changed": changed["CLM_ID"], "new": new["CLM_ID"], "rows": len(lines) - 1}


@pytest.fixture(scope="module")
def builds(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental_silver")
    settings = load_settings(lake=str(root / "lake"))
    assert not ingest(settings, str(SAMPLE_DATA / "sample_0")).rejected
    first = build_layer(settings, spark, "silver", new_build_id(), **PART)
    delivery = _changed_delivery(root / "again")
    report = ingest(settings, str(root / "again"))
    assert [f.status for f in report.files] == ["loaded"]
    second = build_layer(settings, spark, "silver", new_build_id(), **PART)
    full = build_layer(settings, spark, "silver", new_build_id(), **PART, full_refresh=True)
    for build in (first, second, full):
        assert build.success, build.error
    return {"settings": settings, "first": first, "second": second, "full": full, **delivery}


def _new_carrier_batches(builds) -> set[str]:
    before = set(builds["first"].bronze_batches["carrier_claims"])
    return set(builds["second"].bronze_batches["carrier_claims"]) - before


def test_second_build_types_only_the_new_batch(builds, spark):
    first, second = builds["first"], builds["second"]
    (new_batch,) = _new_carrier_batches(builds)
    assert second.silver_store == first.silver_store  # same code: the store is reused
    # the first build typed every batch of its snapshot ...
    assert set(first.stored_batches["carrier_claims_by_batch"]) == set(
        first.bronze_batches["carrier_claims"]
    )
    assert set(first.stored_batches["prescription_drug_events_by_batch"]) == set(
        first.bronze_batches["prescription_drug_events"]
    )
    # ... the second one only the new delivery's batch, every row of it, and nothing else
    assert second.stored_batches["carrier_claims_by_batch"] == {new_batch: builds["rows"]}
    assert set(second.stored_batches["carrier_lines_by_batch"]) == {new_batch}
    assert not second.stored_batches["prescription_drug_events_by_batch"]
    typed_by = {
        r["_batch_id"]: r["_stored_by_build"]
        for r in spark.table(f"{second.silver_store}.carrier_claims_by_batch")
        .select("_batch_id", "_stored_by_build")
        .distinct()
        .collect()
    }
    assert typed_by == {
        **{b: first.build_id for b in first.bronze_batches["carrier_claims"]},
        new_batch: second.build_id,
    }


def test_incremental_build_gives_the_rows_of_a_full_refresh(builds, spark):
    second, full = builds["second"], builds["full"]
    assert full.silver_store != second.silver_store  # rebuilt from bronze, old store kept
    assert set(full.stored_batches["carrier_claims_by_batch"]) == set(
        full.bronze_batches["carrier_claims"]
    )
    for model in ON_STORE:
        incremental = spark.table(f"{second.schema}.{model}")
        refreshed = spark.table(f"{full.schema}.{model}")
        assert incremental.count() > 0, model
        assert incremental.exceptAll(refreshed).count() == 0, model
        assert refreshed.exceptAll(incremental).count() == 0, model


def _claims(spark, schema: str, claim_ids: list[str]) -> dict[str, dict]:
    claims = spark.table(f"{schema}.carrier_claims")
    found = [r.asDict() for r in claims.where(claims.claim_id.isin(claim_ids)).collect()]
    assert len(found) == len({r["claim_id"] for r in found}), "a claim appears twice"
    return {r["claim_id"]: r for r in found}


def test_changed_delivery_supersedes_the_older_rows(builds, spark):
    first, second = builds["first"], builds["second"]
    (new_batch,) = _new_carrier_batches(builds)
    changed, new = builds["changed"], builds["new"]
    before = _claims(spark, first.schema, [changed, new])
    after = _claims(spark, second.schema, [changed, new])
    assert set(before) == {changed} and set(after) == {changed, new}
    assert after[changed]["_batch_id"] == new_batch
    assert after[changed]["payment_amount"] == before[changed]["payment_amount"] + EXTRA

    def first_line(schema: str) -> list:
        lines = spark.table(f"{schema}.carrier_lines")
        return lines.where((lines.claim_id == changed) & (lines.line_num == 1)).collect()

    (old_line,), (new_line,) = first_line(first.schema), first_line(second.schema)
    assert new_line.line_payment_amount == old_line.line_payment_amount + EXTRA
    # the first build's views still read their own snapshot: a later build's batches in the
    # shared store stay invisible to them (what a published build relies on)
    first_claims = spark.table(f"{first.schema}.carrier_claims").count()
    assert first_claims + 1 == spark.table(f"{second.schema}.carrier_claims").count()


def test_a_partial_build_is_never_published(builds, spark):
    with pytest.raises(PublishError, match="publish a whole build"):
        promote(builds["settings"], spark, "silver", builds["second"].build_id)


def test_publish_drops_store_partitions_no_kept_build_reads(builds, spark):
    """`prune_silver_stores` as `promote` calls it when only the first build is kept. Its
    prefix is this test's store alone: the session's metastore holds other lakes' stores."""
    import json

    from cms_pipeline.dbt_runner import run_dbt
    from cms_pipeline.publish.records import read_run_record
    from cms_pipeline.publish.silver_store import kept

    settings, first = builds["settings"], builds["first"]
    claims_before = spark.table(f"{first.schema}.carrier_claims").count()
    args = {**kept([read_run_record(settings, "silver", first.build_id).build])}
    args["prefix"] = first.silver_store
    run_dbt(
        settings, ["run-operation", "prune_silver_stores", "--args", json.dumps(args)], spark=spark
    )
    for model, table in (
        ("carrier_claims_by_batch", "carrier_claims"),
        ("prescription_drug_events_by_batch", "prescription_drug_events"),
    ):
        partitions = spark.sql(f"show partitions {first.silver_store}.{model}").collect()
        stored = {p[0].split("=", 1)[1] for p in partitions}
        assert stored == set(first.bronze_batches[table]), model
    # the kept build still reads every row of its snapshot
    assert spark.table(f"{first.schema}.carrier_claims").count() == claims_before
