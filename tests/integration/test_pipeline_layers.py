"""Bundled samples -> bronze -> gated silver and gold builds with dbt on Spark -> exports.

One build per layer on sample_0 (every CMS file kind, a few rows each); the readmission,
unpivot and decoding logic is covered by dbt unit tests, which run inside these builds.
"""

from __future__ import annotations

import json

import pytest

from cms_pipeline.dbt_runner import dbt_dir, run_dbt
from cms_pipeline.publish import build_layer, new_build_id, promote, publish_history

pytestmark = pytest.mark.integration

FEATURE_CONTRACT = {
    "features_readmission": {
        "admission_id": "string",
        "desynpuf_id": "string",
        "discharge_date": "date",
        "discharge_year": "int",
        "is_readmitted_30d": "int",
    },
    "features_high_cost": {
        "desynpuf_id": "string",
        "feature_year": "int",
        "is_high_cost_next_year": "int",
    },
}


@pytest.fixture(scope="module")
def lake(spark, spark_settings, tmp_path_factory):
    """Ingest sample_0, then build and publish silver and gold once for the module."""
    from cms_pipeline.ingest import ingest
    from tests.conftest import SAMPLE_DATA, copy_files

    landing = tmp_path_factory.mktemp("landing")
    copy_files(SAMPLE_DATA / "sample_0", landing)
    report = ingest(spark_settings, str(landing))
    assert not report.rejected
    builds = {}
    for layer in ("silver", "gold"):
        result = build_layer(spark_settings, spark, layer, new_build_id())
        assert result.success, result.error
        promote(spark_settings, spark, layer, result.build_id)
        builds[layer] = result
    return builds


def _count(spark, name: str) -> int:
    return spark.table(name).count()


def test_silver_reads_exact_bronze_versions_and_passes_its_tests(lake, spark, spark_settings):
    silver = lake["silver"]
    assert set(silver.bronze_versions) == {
        "beneficiary_summary",
        "inpatient_claims",
        "outpatient_claims",
        "carrier_claims",
        "prescription_drug_events",
    }
    record = json.loads(
        (spark_settings.metadata_path("dbt_runs") / f"silver_{silver.build_id}.json").read_text()
    )
    assert record["bronze_versions"] == silver.bronze_versions
    names = {t["name"] for t in silver.tests}
    assert "reconcile_payments_bronze_silver" in names
    assert {"beneficiary_decoding_and_latest_delivery", "carrier_line_groups_become_rows"} <= names
    assert not silver.failed_tests


def test_published_silver_matches_bronze(lake, spark, spark_settings):
    bronze = spark.table("bronze.beneficiary_summary")
    expected = bronze.select("DESYNPUF_ID", "year").distinct().count()
    assert _count(spark, "silver.beneficiary") == expected
    for table in ("inpatient_claims", "outpatient_claims", "carrier_claims"):
        key = ["CLM_ID", "SEGMENT"] if table != "carrier_claims" else ["CLM_ID"]
        assert (
            _count(spark, f"silver.{table}")
            == spark.table(f"bronze.{table}").select(*key).distinct().count()
        )
    # the published layer is the build that passed
    assert publish_history(spark_settings, "silver")[0]["build_id"] == lake["silver"].build_id


def test_gold_builds_with_reconciliation_and_leakage_tests(lake, spark):
    gold = lake["gold"]
    names = {t["name"] for t in gold.tests}
    assert {
        "reconcile_payments_silver_gold",
        "assert_readmission_features_precede_admission",
        "assert_high_cost_features_from_feature_year",
        "transfers_are_merged_and_readmissions_flagged",
    } <= names
    assert not gold.failed_tests
    assert gold.upstream_build == lake["silver"].build_id
    claims = spark.table("silver.inpatient_claims").select("claim_id").distinct().count()
    inpatient = spark.table("gold.fct_claims").where("claim_type = 'inpatient'").count()
    assert inpatient == claims


def test_feature_tables_keep_their_contract(lake, spark):
    for table, columns in FEATURE_CONTRACT.items():
        types = dict(spark.table(f"gold.{table}").dtypes)
        for name, kind in columns.items():
            assert types.get(name) == kind, f"gold.{table}.{name}: {types.get(name)}"


def test_failed_build_names_the_model_and_publishes_nothing(lake, spark, spark_settings):
    before = publish_history(spark_settings, "gold")[0]["build_id"]
    result = build_layer(
        spark_settings,
        spark,
        "gold",
        new_build_id(),
        fail_fast=True,
        vars={"transfer_gap_days": "no_such_column"},
    )
    assert not result.success
    assert "readmission__transfers_merged" in result.error
    assert "AnalysisException" not in result.error
    assert publish_history(spark_settings, "gold")[0]["build_id"] == before
    # the published views still read the last good build
    assert (
        _count(spark, "gold.features_high_cost")
        == spark.table(f"{lake['gold'].schema}.features_high_cost").count()
    )


def test_docs_catalog_shows_every_documented_column(lake, spark, spark_settings):
    run_dbt(spark_settings, ["docs", "generate"], spark=spark)
    target = dbt_dir(spark_settings) / "target"
    catalog = json.loads((target / "catalog.json").read_text())["nodes"]
    manifest = json.loads((target / "manifest.json").read_text())["nodes"]
    for uid, node in manifest.items():
        published = node["config"]["meta"].get("publish", True)
        if node["resource_type"] != "model" or node["config"]["materialized"] != "table":
            continue
        if not published:  # staging tables stay in their build schema
            continue
        assert uid in catalog, f"{node['name']} missing from the docs catalog"
        have = set(catalog[uid]["columns"])
        assert set(node["columns"]) <= have, f"{node['name']}: {set(node['columns']) - have}"


def test_export_writes_analytics_and_web_files(lake, spark, spark_settings):
    from cms_pipeline.exports import export_all

    report = export_all(spark_settings, spark)
    states = spark.table("gold.pmpm_by_state_year").select("state_code").distinct().count()
    assert report.web["state_documents"] == states
    assert len(report.analytics) >= 8
    profiles = spark.read.json(report.web["beneficiaries"])
    assert profiles.count() == _count(spark, "gold.dim_beneficiary")
