"""The whole gated pipeline, for real (Prefect, Spark, dbt, Soda, H2O), on the bundled
real CMS rows: first a partial delivery (beneficiary summaries and inpatient claims of one
sample, and a refused file), then every sample (the other kinds arrive), then a second run
(nothing new). test_pipeline_retract.py goes on with a delivery that fails the bronze gate.

The full run is the session's `first_run` (tests/integration/conftest.py), whose
published layers test_pipeline_layers.py checks as well."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest
from deltalake import DeltaTable

from cms_pipeline.ingest import ledger
from cms_pipeline.lake import bronze_uri

pytestmark = pytest.mark.integration


def _delivered_kinds(settings, landing) -> set[str]:
    """Bronze tables the landing's files feed (by the contracts' file-name patterns)."""
    kinds = set()
    for path in landing.rglob("*"):
        if path.is_file() and (match := settings.contract_for(path.name)):
            kinds.add(match[0].table)
    return kinds


def test_partial_delivery_builds_every_model_and_names_what_is_missing(
    partial_run, partial_landing, spark_settings
):
    assert partial_run["ok"], partial_run["reason"]
    # the refused file is named, and the run still published: "published, with rejections"
    assert partial_run["status"] == "published with rejections"
    [refused] = partial_run["rejected_files"]
    assert refused["file"].startswith("refused/") and refused["problem"]
    loaded = {f["table"] for f in partial_run["ingest"]["files"] if f["status"] == "loaded"}
    assert loaded == _delivered_kinds(spark_settings, partial_landing / "sample_2")
    absent = {c.table for c in spark_settings.sources.values()} - loaded
    assert absent, "the partial delivery must leave some kinds out"
    # gates: a named state per undelivered bronze table, not a failure
    assert all(g["passed"] for g in partial_run["gates"].values())
    assert set(partial_run["gates"]["bronze"]["not_delivered"]) == absent
    assert set(partial_run["not_delivered"]) == absent
    silver_absent = set(partial_run["gates"]["silver"]["not_delivered"])
    assert absent <= silver_absent  # silver tables named like their bronze kind
    # every model is built: the absent kinds' silver tables exist, typed and empty
    observed = partial_run["observed"]
    for table in silver_absent:
        assert observed["silver"][table]["rows"] == 0
        assert observed["silver"][table]["types"] & {"date", "decimal"}
    # the delivered kinds feed gold: every inpatient claim, and only those
    assert observed["claim_types"] == {"inpatient"}
    assert observed["claims"] == observed["bronze_inpatient_claims"] > 0
    # no use case trains on features whose kinds are missing; each says why
    assert partial_run["training"] == {} and partial_run["scoring"] == {}
    for name, why in partial_run["skipped"].items():
        assert any(kind in why for kind in absent), (name, why)
    assert partial_run["skipped"], "the shipped use cases need more than these kinds"


def test_later_delivery_of_the_other_kinds_builds_them(
    partial_run, first_run, spark, spark_settings, pipeline_landing
):
    assert first_run["ok"] and first_run["status"] == "clean", first_run["reason"]
    arrived = set(partial_run["not_delivered"]) & _delivered_kinds(spark_settings, pipeline_landing)
    assert arrived and not set(first_run["not_delivered"]) & arrived
    for table in arrived:
        assert table in first_run["bronze_versions"]
        assert spark.table(f"silver.{table}").count() > 0
    # the refused file stayed out; the first run's files (sample_2's among them) count once
    statuses = {f["file"]: f["status"] for f in first_run["ingest"]["files"]}
    assert {
        statuses[f["file"]] for f in partial_run["ingest"]["files"] if f["file"] in statuses
    } == {"duplicate"}


def test_first_run_passes_every_gate_and_publishes(first_run, spark, spark_settings):
    assert first_run["ok"], first_run["reason"]
    assert {"bronze", "silver", "gold"} <= set(first_run["gates"])
    assert all(g["passed"] for g in first_run["gates"].values())
    loaded = ledger.read_ledger(spark_settings).to_pylist()
    for table, version in first_run["bronze_versions"].items():
        expected = sum(r["rows_bronze"] for r in loaded if r["table"] == table)
        assert (
            DeltaTable(bronze_uri(spark_settings, table), version=version)
            .to_pyarrow_dataset()
            .count_rows()
            == expected
        )
        assert spark.table(f"bronze.{table}").count() == expected
    bene_years = sum(r["rows_bronze"] for r in loaded if r["table"] == "beneficiary_summary")
    assert spark.table("silver.beneficiary").count() <= bene_years
    # one gold row per beneficiary and summary year that silver holds
    assert (
        spark.table("gold.beneficiary_year").count()
        == spark.table("silver.beneficiary")
        .select("desynpuf_id", "beneficiary_year")
        .distinct()
        .count()
    )


def test_first_run_trains_and_scores_every_use_case(first_run, spark):
    assert set(first_run["training"]) == set(first_run["scoring"]) and first_run["training"]
    gold = first_run["layers"]["gold"]["build"]
    for name, result in first_run["training"].items():
        # better than chance on these rows, and far from the near-1 of a leaked label
        assert result["leaderboard"] and 0.5 < result["metrics"]["auc"] < 0.95, result["metrics"]
        # the lineage the run recorded: the gold build it trained on and what it read
        artifacts = Path(result["snapshot_dir"]) / "artifacts"
        lineage = json.loads((artifacts / "lineage.json").read_text())
        assert lineage["gold_build"] == gold["build_id"]
        assert lineage["bronze_versions"] == gold["bronze_versions"]
        assert len(lineage["dbt_manifest_sha256"]) == 64
        scored = first_run["scoring"][name]
        assert scored["rows"] == spark.table(scored["predictions_table"]).count() > 0


def _as_json(value):
    """A feature value as a client sends it: Spark decimals and dates as JSON numbers and
    text (json.dumps would refuse them)."""
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value


def test_executor_scores_equal_the_rest_apis_on_the_real_feature_rows(
    first_run, spark, spark_settings
):
    """The champion scores the first run's real feature rows (decimals, ints, text codes,
    nulls) on Spark's executors (models_ml.scored_rows.score_on_executors, what batch scoring
    runs) and through the REST API (the real app; the same rows sent as JSON): the same
    scores. Some rows are made to carry an unseen level and a null feature."""
    from datetime import UTC, date, datetime

    from fastapi.testclient import TestClient
    from pyspark.sql import functions as F

    from models_ml.api import create_app
    from models_ml.scored_rows import score_on_executors
    from models_ml.serving import load_version
    from models_ml.usecase import load_use_case

    app = create_app(spark_settings, api_key="parity", reload_seconds=3600)
    with TestClient(app, headers={"X-API-Key": "parity"}) as api:
        for name in first_run["training"]:
            uc = load_use_case(spark_settings, name)
            model = load_version(spark_settings, name)
            features = {f.name: f for f in model.features}
            table = spark.table(uc.table)
            rows = table.orderBy(*uc.id_columns, uc.population.prediction_date).limit(150)
            categorical = [n for n, f in features.items() if f.type == "categorical"]
            numeric = [n for n, f in features.items() if f.type == "numeric"]
            odd = rows.limit(3).withColumn(
                numeric[0], F.lit(None).cast(table.schema[numeric[0]].dataType)
            )
            if categorical:  # an unseen level: scored as missing on both sides
                odd = odd.withColumn(categorical[0], F.lit("never-seen"))
            picked = rows.unionByName(odd).collect()  # one order for both sides
            frame = spark.createDataFrame(picked, rows.schema)
            batch = score_on_executors(
                spark_settings, spark, frame, model, uc, datetime.now(UTC), date.today(), "parity"
            )
            on_executors = [r["score"] for r in batch.collect()]
            records = [{n: _as_json(r[n]) for n in features} for r in picked]
            assert len(records) == len(on_executors) == rows.count() + 3
            sent = api.post(f"/v1/models/{name}/predict", json={"records": records})
            assert sent.status_code == 200, sent.text
            assert sent.json()["model_version"] == model.version
            served = [p["score"] for p in sent.json()["predictions"]]
            assert served == on_executors, name
            decimals = [n for n in features if "Decimal" in type(table.schema[n].dataType).__name__]
            print(f"{name}: {len(served)} rows equal; decimal features {decimals}, "
                  f"categorical {categorical}")  # fmt: skip


def test_the_champion_loads_and_serves_as_an_mlflow_model(
    first_run, spark, spark_settings, tmp_path
):
    """Each version is an MLflow model (models_ml.pyfunc): MLflow itself loads
    `models:/<use case>@champion` and `mlflow models serve` serves it; both score the real
    feature rows as our own loader's scorer does (the REST API's and batch scoring's)."""
    import mlflow

    from models_ml import registry

    uri = registry.tracking_uri(spark_settings)
    # MLflow's URIs are process-wide (and put in os.environ): set for this test only, or
    # later tests on this worker would use the session lake's registry
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        _load_and_serve(first_run, spark, spark_settings, tmp_path, uri)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
        assert "MLFLOW_TRACKING_URI" not in os.environ


def _load_and_serve(first_run, spark, spark_settings, tmp_path, uri) -> None:
    import sys

    import httpx
    import mlflow

    from cms_pipeline.processes import listening_ports, spawn, stop_group, wait_until
    from models_ml import pyfunc
    from models_ml.serving import load_version
    from models_ml.usecase import load_use_case

    for name in first_run["training"]:
        ours = load_version(spark_settings, name)
        rows = spark.table(load_use_case(spark_settings, name).table).limit(200).toPandas()
        inputs = pyfunc.as_inputs(rows, ours.features)  # decimals -> floats, codes -> text
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        assert model.metadata.get_input_schema().input_names() == [f.name for f in ours.features]
        got = model.predict(inputs)
        expected = ours.scorer.score_frame(inputs)
        assert got["score"].tolist() == expected.tolist() and len(got) == len(rows) > 0
        assert got["label"].tolist() == ours.scorer.labels(expected).tolist()

        # as from an activated venv: `mlflow models serve` runs `uvicorn` found on PATH
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
        argv = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m",
                f"models:/{name}@champion", "--env-manager", "local", "-h", "127.0.0.1",
                "-p", "0"]  # fmt: skip
        server = spawn("mlflow-serve", argv, env, tmp_path / f"{name}-serve.log", tmp_path)
        try:
            wait_until(partial(listening_ports, server), server, 180, "mlflow models serve")
            [port] = listening_ports(server)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: httpx.get(f"{url}/ping").status_code == 200, server, 180, "ping")  # noqa: B023
            body = {"dataframe_split": json.loads(inputs.head(20).to_json(orient="split"))}
            answer = httpx.post(f"{url}/invocations", json=body, timeout=60)
            assert answer.status_code == 200, answer.text
            served = [p["score"] for p in answer.json()["predictions"]]
            assert served == expected[:20].tolist(), name
        finally:
            stop_group(server)


def test_stage_timings_are_reported(first_run):
    names = [s["name"] for s in first_run["stages"]]
    assert names[:3] == ["ingest", "bronze sync", "bronze gate"]
    assert all(s["seconds"] >= 0 and s["peak_mib"] > 0 for s in first_run["stages"])
    # Spark's work happens in its JVM, a child process: its CPU time is counted
    silver = next(s for s in first_run["stages"] if s["name"] == "silver")
    assert silver["cpu_seconds"] > 1.0
    # the Spark JVM's JIT compiles every query's generated code: measured from that JVM
    assert silver["jit_seconds"] > 0


def test_second_run_ingests_nothing_and_keeps_the_champions(
    first_run, run_pipeline, pipeline_landing
):
    second = run_pipeline(pipeline_landing, train="missing")
    assert second["ok"], second["reason"]
    assert second["ingest"]["totals"]["loaded"] == 0
    assert second["ingest"]["totals"]["duplicates"] == first_run["ingest"]["totals"]["files"]
    assert second["training"] == {}  # champions exist: no retraining
    assert set(second["scoring"]) == set(first_run["scoring"])
    # nothing new, same code: the published builds are kept, not built again
    for layer in ("silver", "gold"):
        assert second["layers"][layer]["up_to_date"]
        assert (
            second["layers"][layer]["published"]["build_id"]
            == first_run["layers"][layer]["build"]["build_id"]
        )
