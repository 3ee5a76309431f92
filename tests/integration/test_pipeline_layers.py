"""Bundled samples -> bronze -> gated silver and gold builds with dbt on Spark -> exports.

The layers are the ones the session's pipeline run built and published from every bundled
sample (tests/integration/conftest.py `first_run`), checked here rather than built again;
this module must run before any module that publishes its own layers into the session's
metastore (test_quality_gates.py does), hence its name. The readmission, unpivot and
decoding logic is covered by dbt unit tests, which run inside these builds.
"""

from __future__ import annotations

import json

import pytest
import yaml

from cms_pipeline.config import CONFIG_DIR
from cms_pipeline.dbt_runner import DbtError, dbt_dir, run_dbt
from cms_pipeline.publish.builds import build_layer, new_build_id, unit_test_layer
from cms_pipeline.publish.layers import LAYERS
from cms_pipeline.publish.publishing import publish_history
from cms_pipeline.publish.records import runs_dir

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
def lake(published_builds):
    return published_builds


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
        "a_transfer_is_a_next_day_stay_at_another_provider",
        "principal_codes_come_from_the_first_segment_that_has_one",
        "top_diagnoses_count_each_claim_once_under_its_principal_code",
    } <= names
    assert not gold.failed_tests
    assert gold.upstream_build == lake["silver"].build_id
    claims = spark.table("silver.inpatient_claims").select("claim_id").distinct().count()
    inpatient = spark.table("gold.fct_claims").where("claim_type = 'inpatient'").count()
    assert inpatient == claims


def test_principal_codes_are_position_1_of_the_first_segment_with_codes(lake, spark):
    """fct_claims reads the principal codes from the silver claims; the unpivots hold the
    same codes as rows: both paths must name the same code for every claim."""
    from pyspark.sql import functions as F

    for codes, code, position, principal in [
        ("claim_diagnoses", "icd9_dgns_cd", "diagnosis_position", "principal_icd9_dgns_cd"),
        ("claim_procedures", "icd9_prcdr_cd", "procedure_position", "principal_icd9_prcdr_cd"),
    ]:
        unpivoted = (
            spark.table(f"silver.{codes}")
            .where(F.col(position) == 1)
            .groupBy("claim_type", "claim_id")
            .agg(F.min_by(code, "segment").alias("code"))
        )
        facts = (
            spark.table("gold.fct_claims")
            .where(F.col(principal).isNotNull())
            .select("claim_type", "claim_id", F.col(principal).alias("code"))
        )
        assert unpivoted.count() > 0, codes
        assert facts.exceptAll(unpivoted).count() == 0, codes
        assert unpivoted.exceptAll(facts).count() == 0, codes


def test_feature_tables_keep_their_contract(lake, spark):
    for table, columns in FEATURE_CONTRACT.items():
        types = dict(spark.table(f"gold.{table}").dtypes)
        for name, kind in columns.items():
            assert types.get(name) == kind, f"gold.{table}.{name}: {types.get(name)}"


def test_carrier_line_positions_compile_to_one_generated_class(lake, spark, spark_settings):
    # the line store selects each line group on its own (unpivot_from_mapping's
    # select_per_position); the selects must generate the same Java code, so that the JVM
    # compiles one class, not one per line group
    from collections import Counter

    from cms_pipeline.mapping import load_mappings

    positions = load_mappings(spark_settings)["carrier_claims"]["unpivots"]["carrier_lines"]
    compiled = dbt_dir(spark_settings) / "target/compiled/cms_pipeline/models/silver/store"
    query = spark.sql((compiled / "carrier_lines_by_batch.sql").read_text())
    codes = Counter(_generated_code(query._jdf.queryExecution().executedPlan()))
    assert max(codes.values()) == len(positions["rows"]), sorted(codes.values())
    # the store keeps the line number as a decimal; the published view, as an int
    assert dict(spark.table("silver.carrier_lines").dtypes)["line_num"] == "int"


def test_carrier_claim_totals_add_up_their_lines_and_refuse_an_amount_too_large(
    lake, spark, spark_settings
):
    # the claim store sums its lines' amounts as whole cents (macros/sum_amount.sql)
    import re

    from py4j.protocol import Py4JJavaError

    compiled = dbt_dir(spark_settings) / "target/compiled/cms_pipeline/models/silver/store"
    model = (compiled / "carrier_claims_by_batch.sql").read_text()
    lines = re.search(r"from (\S+\.carrier_lines_by_batch)", model).group(1)
    totals = model.replace("select * from final", "select * from line_totals")
    keys = "_batch_id, _source_file, _source_line"
    plain = spark.sql(
        f"select {keys}, sum(line_payment_amount) as payment_amount, "
        f"sum(line_allowed_charge_amount) as allowed_charge_amount from {lines} group by {keys}"
    )
    ours = spark.sql(totals)
    assert dict(ours.dtypes)["payment_amount"] == dict(plain.dtypes)["payment_amount"]
    assert ours.count() == plain.count() > 0
    assert ours.select(*plain.columns).exceptAll(plain).count() == 0

    row = spark.table(lines).where("line_payment_amount >= 0").limit(1)
    row.withColumn(
        "line_payment_amount", row.line_payment_amount + 1000000
    ).createOrReplaceTempView("line_too_large")
    with pytest.raises(Py4JJavaError) as refused:
        spark.sql(totals.replace(lines, "line_too_large")).collect()
    source = row.first()
    assert f"{source._source_file} line {source._source_line}" in str(refused.value)
    assert "1,000,000 or more" in str(refused.value)


def _generated_code(plan):
    """The Java source of each whole-stage codegen stage of a physical plan (py4j objects),
    as Spark's compile cache compares it: without its comments, which name the stage."""
    if plan.getClass().getSimpleName() == "WholeStageCodegenExec":
        yield plan.doCodeGen()._2().body()
    children = plan.children()
    for i in range(children.size()):
        yield from _generated_code(children.apply(i))


def test_a_failing_unit_test_fails_the_build_after_its_model_is_built(lake, spark, spark_settings):
    # unit tests run as a second dbt command once the models exist
    # (cms_pipeline.publish.builds._build_then_unit_test); with the optional age requirement
    # switched on, the model builds but its unit test of the defaults (both off) fails
    result = build_layer(
        spark_settings,
        spark,
        "gold",
        new_build_id(),
        select=["+readmission__index_enrollment_requirement"],
        vars={"readmission_require_age_65": True},
    )
    assert not result.success
    assert "enrollment_requirements_are_off_by_default" in result.error
    units = {t["name"]: t["status"] for t in result.tests if t["resource_type"] == "unit_test"}
    assert units["enrollment_requirements_are_off_by_default"] == "fail"
    assert "pass" in units.values()  # the selection's other unit tests still pass
    record = json.loads(
        (spark_settings.metadata_path("dbt_runs") / f"gold_{result.build_id}.json").read_text()
    )
    model = next(
        n
        for n in record["dbt"]["nodes"]
        if n["name"] == "readmission__index_enrollment_requirement"
    )
    assert model["status"] == "success"
    assert "&&" in record["dbt"]["args"]  # one record of both commands


def test_unit_tests_run_alone_and_leave_nothing_behind(lake, spark, spark_settings):
    # `cms-pipeline unit-test`: each layer built empty into a scratch schema, then dropped
    from cms_pipeline.bronze_catalog import sync_bronze

    def state():
        schemas = {d.name for d in spark.catalog.listDatabases()}
        records = sorted(p.name for p in runs_dir(spark_settings).glob("*.json"))
        return schemas, records, [publish_history(spark_settings, x) for x in LAYERS]

    before = state()
    try:
        run = unit_test_layer(spark_settings, spark, "silver")
        units = run.of_type("unit_test")
        assert units and all(u.status == "pass" for u in units)
        assert all(n.resource_type == "unit_test" for n in run.nodes)
        # gold once, with the age requirement on (as above): that one test fails, every
        # other gold unit test still passes
        with pytest.raises(DbtError) as failed:
            unit_test_layer(
                spark_settings, spark, "gold", vars={"readmission_require_age_65": True}
            )
        statuses = {n.name: n.status for n in failed.value.run.of_type("unit_test")}
        assert statuses.pop("enrollment_requirements_are_off_by_default") == "fail"
        assert "principal_codes_come_from_the_first_segment_that_has_one" in statuses
        assert len(statuses) >= 20 and set(statuses.values()) == {"pass"}, statuses
        assert all(n.resource_type == "unit_test" for n in failed.value.run.nodes)
        assert state() == before
    finally:  # the silver unit tests read the newest bronze; later tests want silver's
        sync_bronze(spark, spark_settings, lake["silver"].bronze_versions)


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
    # every table config/storage.yaml lists, read back: gold's rows, gold's columns
    listed = yaml.safe_load((CONFIG_DIR / "storage.yaml").read_text())["exports"]["analytics"]
    assert set(report.analytics) == set(listed["tables"])
    for table, location in report.analytics.items():
        exported, published = spark.read.parquet(location), spark.table(f"gold.{table}")
        assert exported.columns == published.columns, table
        assert exported.exceptAll(published).count() == 0, table
        assert published.exceptAll(exported).count() == 0, table
    profiles = spark.read.json(report.web["beneficiaries"])
    assert profiles.count() == _count(spark, "gold.dim_beneficiary")


def test_catalog_command_lists_every_table_and_model_with_its_rows(lake, spark, spark_settings):
    """`cms-pipeline catalog --json` as a user runs it (a subprocess; it reads metadata only,
    so it needs no Spark and leaves the session's metastore alone)."""
    import subprocess
    import sys

    from deltalake import DeltaTable

    from cms_pipeline.lake import bronze_uri
    from cms_pipeline.publish.publishing import published_build
    from models_ml import registry
    from models_ml.usecase import list_use_cases

    done = subprocess.run(
        [sys.executable, "-m", "cms_pipeline", "catalog", "--lake", spark_settings.lake, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = json.loads(done.stdout[done.stdout.index("{") :])
    tables = {(t["layer"], t["table"]): t for t in listed["tables"]}
    for table in lake["silver"].bronze_versions:
        rows = DeltaTable(bronze_uri(spark_settings, table)).to_pyarrow_dataset().count_rows()
        assert tables[("bronze", table)]["rows"] == rows, table
    for layer in LAYERS:
        build = published_build(spark_settings, layer)
        published = {name for (kind, name) in tables if kind == layer}
        assert published == set(build["models"]), layer
        for name in ("beneficiary", "inpatient_claims") if layer == "silver" else ("fct_claims",):
            expected = spark.table(f"{build['schema']}.{name}").count()
            assert tables[(layer, name)]["rows"] == expected
            assert tables[(layer, name)]["version"] == build["build_id"]
    # the champions the registry names (a use case whose inputs were never all delivered
    # has none)
    champions = {m["use_case"] for m in listed["models"] if m["is_champion"]}
    registered = {
        (name, str(found.version))
        for name in list_use_cases(spark_settings)
        if (found := registry.champion(spark_settings, name)) is not None
    }
    assert champions and champions == {name for name, _ in registered}
    listed_versions = {
        (m["use_case"], str(m["version"])) for m in listed["models"] if m["is_champion"]
    }
    assert listed_versions == registered


def test_check_history_command_shows_the_first_runs_gold_gate(first_run, spark_settings):
    """`cms-pipeline check gold --history --json` (a subprocess: stored results only) shows
    the gold gate of the session's first run with its counts and each check's outcome."""
    import subprocess
    import sys

    gate = first_run["gates"]["gold"]
    args = ["check", "gold", "--history", "--last", "100", "--lake", spark_settings.lake]
    done = subprocess.run(
        [sys.executable, "-m", "cms_pipeline", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout[done.stdout.index("{") :])
    assert {run["layer"] for run in shown["runs"]} == {"gold"}
    [run] = [r for r in shown["runs"] if r["run_id"] == gate["run_id"]]
    assert run["passed"] and run["schema"] == gate["schema"]
    assert {o: run[o] for o in ("pass", "warn", "fail")} == {
        o: gate["counts"][o] for o in ("pass", "warn", "fail")
    }
    position = [r["run_id"] for r in reversed(shown["runs"])].index(gate["run_id"])
    trends = {(t["table"], t["check"]): t["series"][position] for t in shown["checks"]}
    for check in gate["checks"]:
        if check["outcome"] in ("pass", "warn", "fail"):
            assert trends[(check["table"], check["check"])]["outcome"] == check["outcome"]


def test_published_seeds_equal_their_csv_files(lake, spark):
    # the local target loads seeds with Spark's CSV reader (macros/seed_from_file.sql):
    # every value must read as dbt-spark's own insert would (empty cell = null, leading
    # zeros kept, the types dbt chose)
    import csv

    from cms_pipeline.dbt_runner import DBT_PROJECT_DIR

    def parse(cell: str, kind: str):
        if cell == "":
            return None
        return {"integer": int, "long": int, "double": float, "boolean": lambda v: v == "true"}.get(
            kind, str
        )(cell)

    files = sorted((DBT_PROJECT_DIR / "seeds").glob("*.csv"))
    assert len(files) >= 19
    for path in files:
        table = spark.table(f"silver.{path.stem}")
        kinds = [f.dataType.typeName() for f in table.schema]
        with path.open(newline="", encoding="utf-8") as f:
            header, *rows = csv.reader(f)
        assert table.columns == header, path.name
        expected = sorted(
            (tuple(parse(c, k) for c, k in zip(r, kinds, strict=True)) for r in rows), key=repr
        )
        assert sorted((tuple(r) for r in table.collect()), key=repr) == expected, path.name
