"""H2O AutoML end to end on small generated feature tables with a real signal.

One module on purpose: H2O is started once, the JPype JVM (MOJO scoring) lives in this
test process once, and the REST API runs in its own process (`cms-pipeline serve`) so it
is called over real HTTP. h2o.init's JVM is a separate process, like Spark's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from cms_pipeline.config import load_settings
from models_ml import registry
from models_ml.monitoring import bin_counts, compare, compare_counts
from models_ml.run_artifacts import TOP_FEATURES
from models_ml.synthetic import high_cost_frame, readmission_frame, write_table
from models_ml.usecase import load_use_case

pytestmark = pytest.mark.integration

DB = "ml_test_gold"  # own database: the session metastore is shared with dbt's gold
LINEAGE = {
    "bronze_versions": {"inpatient_claims": 4, "beneficiary_summary": 2},
    "dbt_manifest_sha256": "abc123",
}


def small(settings, name):
    """The shipped use case with a tiny budget, on this module's table (no ensembles: a
    stacked ensemble of two models only adds time here)."""
    uc = load_use_case(settings, name)
    table = f"{DB}.{uc.table.split('.')[1]}"
    return uc.model_copy(
        update={
            "table": table,
            "automl": uc.automl.model_copy(
                update={
                    "max_models": 2,
                    "nfolds": 2,
                    "max_runtime_secs": 300,
                    "exclude_algos": ["DeepLearning", "XGBoost", "StackedEnsemble"],
                }
            ),
        }
    )


@pytest.fixture(scope="module")
def ml_settings(tmp_path_factory):
    return load_settings(lake=str(tmp_path_factory.mktemp("ml") / "lake"))


@pytest.fixture(scope="module")
def h2o_cluster():
    from models_ml.h2o_cluster import ensure_h2o

    h2o = ensure_h2o(max_mem="2g", nthreads=2)  # this process's own, whatever else runs
    yield h2o
    h2o.cluster().shutdown()


def with_race(frame: pd.DataFrame) -> pd.DataFrame:
    """A race code beside the sex code, as in the gold feature tables (no signal): the
    model card reports metrics by race."""
    if "race_code" in frame:
        return frame
    rng = np.random.default_rng(5)
    at = frame.columns.get_loc("sex_code") + 1
    frame = frame.copy()
    frame.insert(at, "race_code", rng.choice(["1", "2", "3", "5"], len(frame)))
    return frame


@pytest.fixture(scope="module")
def tables(spark):
    frames = {
        "readmission_30d": with_race(readmission_frame(rows=1200)),
        "high_cost_next_year": with_race(high_cost_frame(rows=1200)),
    }
    write_table(spark, frames["readmission_30d"], f"{DB}.features_readmission")
    write_table(spark, frames["high_cost_next_year"], f"{DB}.features_high_cost")
    return frames


@pytest.fixture(scope="module")
def first_runs(ml_settings, spark, h2o_cluster, tables):
    from models_ml.train import train

    return {
        name: train(ml_settings, small(ml_settings, name), LINEAGE, spark=spark) for name in tables
    }


@pytest.fixture(scope="module")
def second_run(ml_settings, spark, first_runs):
    """readmission_30d trained again with the same seed and budget: version 2, which the
    promotion tests need whatever order the tests run in."""
    from models_ml.train import train

    return train(ml_settings, small(ml_settings, "readmission_30d"), LINEAGE, spark=spark)


def test_a_process_that_used_h2o_keeps_stdout_for_its_json(h2o_cluster):
    """h2o prints "Closing connection ..." at exit unless the session is closed first."""
    url = h2o_cluster.connection().base_url
    code = "from models_ml.h2o_cluster import ensure_h2o; ensure_h2o(); print('{}')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "CMS_PIPELINE_H2O_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}


def test_another_process_on_the_same_port_starts_its_own_h2o(h2o_cluster):
    """A local H2O is its process's own: a second process asking for this cluster's port
    does not join it (it would train on and shut down another's cluster); it starts its
    own, on the next free ports H2O finds."""
    url = h2o_cluster.connection().base_url
    port = int(url.rsplit(":", 1)[1])
    code = (
        "import json; from models_ml.h2o_cluster import ensure_h2o; "
        f"h = ensure_h2o(max_mem='512m', nthreads=1, port={port}); "
        "print(json.dumps([h.connection().base_url, h.cluster().cloud_name]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    child_url, child_name = json.loads(done.stdout.strip().splitlines()[-1])
    assert child_name != h2o_cluster.cluster().cloud_name
    assert int(child_url.rsplit(":", 1)[1]) > port, (url, child_url)
    assert h2o_cluster.cluster().is_running()  # ours is still up, untouched


STOP_AND_RESTART = """
import json, psutil
from models_ml.h2o_cluster import ensure_h2o, stop_local_h2o
h = ensure_h2o(max_mem="512m", nthreads=1)
first = h.connection().local_server._process.pid
stop_local_h2o()
gone = not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
h = ensure_h2o(max_mem="512m", nthreads=1)
print(json.dumps([gone, h.cluster().is_running(), h.connection().local_server._process.pid != first]))
"""


def test_training_done_the_local_h2o_is_stopped_and_a_later_training_starts_one():
    """The pipeline stops its H2O JVM before scoring (models_ml.h2o_cluster.stop_local_h2o):
    the JVM is gone, and the next ensure_h2o starts a new one (in a child process: this
    module's cluster stays up)."""
    done = subprocess.run(
        [sys.executable, "-c", STOP_AND_RESTART], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, True]


def expected_split(uc, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) rows by the rule, in pandas: labelled rows; the last period tests;
    earlier rows whose label window ends by the test's first prediction date train."""
    labelled = frame[frame[uc.population.training_flag]]
    period = labelled[uc.split.time_column]
    test = labelled[period == period.max()]
    when = pd.to_datetime(labelled[uc.population.prediction_date])
    start = pd.to_datetime(test[uc.population.prediction_date]).min()
    horizon = pd.Timedelta(days=uc.population.label_horizon_days)
    return labelled[(period < period.max()) & (when + horizon <= start)], test


def test_training_logs_metrics_lineage_and_artifacts(ml_settings, first_runs, tables):
    for name, result in first_runs.items():
        uc = small(ml_settings, name)
        frame = tables[name]
        train_rows, test_rows = expected_split(uc, frame)
        assert result.model_version == "1" and result.promoted
        assert result.champion_version == "1"
        assert 0.55 < result.metrics["auc"] < 0.95, result.metrics  # real signal, no leak
        run = registry.client(ml_settings).get_run(result.run_id)
        assert int(run.data.params["rows_test"]) == len(test_rows)
        assert int(run.data.params["rows_train"]) == len(train_rows)
        assert int(run.data.params["rows_unlabelled"]) == int((~frame.is_training_row).sum())
        for key in (
            "test_auc",
            "test_aucpr",
            "test_logloss",
            "test_calibration_ece",
            "test_lift_top_decile",
            "test_capture_top_decile",
        ):
            assert key in run.data.metrics
        assert run.data.tags["config_hash"] == uc.config_hash()
        assert run.data.tags["git_commit"]
        art = Path(run.info.artifact_uri.removeprefix("file://"))
        for rel in (
            "plots/roc.png",
            "plots/pr.png",
            "plots/calibration.png",
            "mojo/model.zip",
            "mojo/h2o-genmodel.jar",
            "mojo/features.json",
            "evaluation/leaderboard.json",
            "evaluation/test_predictions.parquet",
        ):
            assert (art / rel).stat().st_size > 0, rel
        lineage = json.loads((art / "lineage.json").read_text())
        assert lineage["bronze_versions"] == LINEAGE["bronze_versions"]
        assert lineage["dbt_manifest_sha256"] == "abc123"
        assert lineage["snapshot"]["rows_table"] == int(frame.is_training_row.sum())
        assert lineage["table"] == uc.table


def test_each_version_has_a_model_card(ml_settings, first_runs, tmp_path):
    """card.html and card.json are logged with the version; the CLI returns the card."""
    for name, result in first_runs.items():
        paths = registry.download_card(ml_settings, name, result.model_version, tmp_path)
        html = paths["html"].read_text()
        data = json.loads(paths["json"].read_text())
        assert html.startswith("<!DOCTYPE html>") and 'id="subgroups"' in html
        assert Path(result.card_path).name == "card.html"
        auc = next(r for r in data["metrics"] if r["metric"] == "auc")
        assert auc["estimate"] == pytest.approx(result.metrics["auc"])
        assert auc["low"] < result.metrics["auc"] < auc["high"] and auc["replicates"] > 900
        dims = {d["dimension"]: d["groups"] for d in data["subgroups"]["dimensions"]}
        assert {"sex", "race", "age band", "state"} <= set(dims)
        for dim in ("sex", "race"):
            assert sum(g["rows"] for g in dims[dim]) == data["data"]["rows_test"] > 0
        assert len(dims["race"]) == 4 and len(dims["sex"]) == 2
        assert data["shap"]["features"] and data["shap"]["rows"] == data["data"]["rows_test"]
        assert all(f["mean_abs"] >= 0 for f in data["shap"]["features"])
        assert data["data"]["bronze_versions"] == LINEAGE["bronze_versions"]
        assert data["calibration"]["bins"] and data["varimp"]
        assert "no champion to beat" in data["promotion"]["decision"]
        assert data["cohort"]["definition"] and data["label"]["definition"]  # dbt docs
        run = registry.client(ml_settings).get_run(result.run_id)
        assert "promotion_gain" not in run.data.metrics  # nothing to compare with

    name = "readmission_30d"
    output = tmp_path / "out" / "card.html"
    argv = [str(Path(sys.executable).parent / "cms-pipeline"), "models", "card", name]
    argv += ["--version", "1", "--output", str(output), "--lake", ml_settings.lake, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    expected = registry.download_card(ml_settings, name, "1", tmp_path)
    assert json.loads(done.stdout) == json.loads(expected["json"].read_text())
    assert output.read_text() == expected["html"].read_text()


def test_split_leaves_a_gap_and_folds_keep_a_beneficiary_together(ml_settings, first_runs):
    """No training label window reaches the test period; CV folds are grouped by the
    beneficiary (H2O fold_column), so no person is on both sides of a fold."""
    for name, result in first_runs.items():
        uc = small(ml_settings, name)
        pop = uc.population
        train_rows = pd.read_parquet(Path(result.snapshot_dir) / "train")
        test_rows = pd.read_parquet(Path(result.snapshot_dir) / "test")
        label_end = pd.to_datetime(train_rows[pop.prediction_date]) + pd.Timedelta(
            days=pop.label_horizon_days
        )
        assert label_end.max() <= pd.to_datetime(test_rows[pop.prediction_date]).min()
        folds = train_rows.groupby(uc.split.group_column)["cv_fold"].nunique()
        assert (folds == 1).all() and train_rows["cv_fold"].nunique() == uc.automl.nfolds
        assert train_rows[uc.target].notna().all() and test_rows[uc.target].notna().all()
        run = registry.client(ml_settings).get_run(result.run_id)
        assert run.data.params["fold_column"] == "cv_fold"


def test_scoring_population_has_the_training_columns_and_types(ml_settings, spark, first_runs):
    """One definition: the rows scored come from the table trained on, column for column."""
    from models_ml.scored_rows import scoring_rows

    for name, result in first_runs.items():
        uc = small(ml_settings, name)
        rows, as_of = scoring_rows(spark, uc)
        trained = spark.read.parquet(str(Path(result.snapshot_dir) / "train")).drop("cv_fold")
        assert [(f.name, f.dataType) for f in rows.schema.fields] == [
            (f.name, f.dataType) for f in trained.schema.fields
        ]
        flags = {r[0] for r in rows.select(uc.population.training_flag).distinct().collect()}
        assert False in flags  # the latest period's scoring rows, label unknown


def test_ids_label_and_excluded_columns_never_reach_the_model(ml_settings, first_runs):
    for name, result in first_runs.items():
        uc = small(ml_settings, name)
        paths = registry.download_version(
            ml_settings, name, result.model_version, ml_settings.metadata_path("check")
        )
        used = {f["name"] for f in json.loads(paths["features"].read_text())["features"]}
        assert used and not used & uc.non_features


def test_same_seed_and_budget_give_the_same_leaderboard(ml_settings, first_runs, second_run):
    again = second_run

    def board(result):
        return [(r["algo"], round(r["auc"], 9), round(r["logloss"], 9)) for r in result.leaderboard]

    assert board(again) == board(first_runs["readmission_30d"])
    assert again.metrics["auc"] == pytest.approx(first_runs["readmission_30d"].metrics["auc"])
    # equal on the same test data: not better by the margin, so the champion stays
    assert again.model_version == "2" and not again.promoted
    assert again.champion_version == "1" and "kept champion" in again.decision
    # the gain and its paired bootstrap interval are logged with the decision
    run = registry.client(ml_settings).get_run(again.run_id)
    gain = run.data.metrics
    assert abs(gain["promotion_gain"]) < 1e-6
    assert gain["promotion_gain_ci_low"] <= gain["promotion_gain"] <= gain["promotion_gain_ci_high"]
    assert gain["promotion_gain_ci_high"] < 0.005  # the same model: no gain beyond noise
    assert run.data.tags["promotion_decision"] == again.decision
    assert "paired bootstrap CI of the gain" in again.decision and "replicates" in again.decision


def test_mojo_scores_equal_in_cluster_predictions(ml_settings, first_runs):
    from models_ml.mojo import JAVA_LOOP_MIN_ROWS
    from models_ml.serving import load_version

    for name, result in first_runs.items():
        uc = small(ml_settings, name)
        loaded = load_version(ml_settings, name, result.model_version)
        run = registry.client(ml_settings).get_run(result.run_id)
        art = Path(run.info.artifact_uri.removeprefix("file://"))
        in_cluster = pd.read_parquet(art / "evaluation" / "test_predictions.parquet")
        test_rows = pd.read_parquet(Path(result.snapshot_dir) / "test")
        joined = test_rows.merge(in_cluster[[*uc.id_columns, "p1"]], on=uc.id_columns)
        assert len(joined) == len(test_rows) == len(in_cluster)
        mojo = loaded.scorer.score_frame(joined)
        np.testing.assert_allclose(mojo, joined["p1"].to_numpy(), rtol=0, atol=1e-6)
        # batches are scored by a loop in Java, a few rows (REST) one call each: same scores
        assert len(joined) >= JAVA_LOOP_MIN_ROWS
        np.testing.assert_array_equal(loaded.scorer.score_frame(joined.head(3)), mojo[:3])


def test_promote_and_rollback(ml_settings, second_run):
    name = "readmission_30d"
    assert registry.champion(ml_settings, name).version in ("1", 1)
    registry.promote(ml_settings, name, "2", "test")
    assert str(registry.champion(ml_settings, name).version) == "2"
    assert registry.show_model(ml_settings, name)["champion_history"] == ["1", "2"]
    back = registry.rollback(ml_settings, name)
    assert back == {"use_case": name, "champion": "1", "rolled_back": "2"}
    assert str(registry.champion(ml_settings, name).version) == "1"
    with pytest.raises(registry.RegistryError, match="no earlier champion"):
        registry.rollback(ml_settings, name)
    with pytest.raises(registry.RegistryError, match="no version 99"):
        registry.promote(ml_settings, name, "99", "test")
    listed = {r["use_case"]: r for r in registry.list_models(ml_settings)}
    assert listed[name]["champion"] == "1" and listed[name]["versions"] == 2
    assert "test_auc" in listed[name]["champion_metrics"]


def in_window(uc, frame: pd.DataFrame, as_of) -> pd.DataFrame:
    when = pd.to_datetime(frame[uc.population.prediction_date])
    as_of = pd.Timestamp(as_of)
    return frame[
        (when <= as_of) & (when > as_of - pd.Timedelta(days=uc.population.scoring_window_days))
    ]


def test_batch_scoring_appends_the_population_as_of_a_date(ml_settings, spark, first_runs, tables):
    """Each run appends to gold.predictions_<use case> (the history) and alone is
    gold.predictions_<use case>_latest and the JSON export."""
    from models_ml.batch import score
    from models_ml.drift_on_spark import feature_references

    for name in first_runs:
        uc = small(ml_settings, name)
        frame = tables[name]
        latest = pd.to_datetime(frame[uc.population.prediction_date]).max().date()
        before = spark.table(uc.predictions_table).count() if _exists(spark, uc) else 0
        result = score(ml_settings, uc, spark=spark)
        champion = str(registry.champion(ml_settings, name).version)
        out = spark.table(uc.latest_predictions_table).toPandas()
        expected = in_window(uc, frame, latest)
        assert result.predictions_table == uc.latest_predictions_table
        assert len(out) == result.rows == len(expected) > 0
        assert result.as_of == latest.isoformat() and set(out["as_of_date"]) == {latest}
        assert set(out["model_version"]) == {champion} and out["scored_at"].notna().all()
        assert set(out["run_id"]) == {result.run_id}
        assert out["score"].between(0, 1).all()
        assert set(out[uc.id_columns[0]]) == set(expected[uc.id_columns[0]])
        exported = json.loads(Path(result.json_path).read_text())
        assert exported["rows"] == len(out) and exported["model_version"] == champion
        assert exported["run_id"] == result.run_id
        # as of an earlier date: that date's population, labelled or not, appended
        earlier = latest.replace(year=latest.year - 1)
        back = score(ml_settings, uc, spark=spark, as_of=earlier)
        assert back.rows == len(in_window(uc, frame, earlier)) > 0
        history = spark.table(uc.predictions_table).toPandas()
        assert len(history) == before + result.rows + back.rows
        runs = history.groupby("run_id")["as_of_date"].agg(["first", "size"])
        assert runs.loc[result.run_id].tolist() == [latest, result.rows]
        assert runs.loc[back.run_id].tolist() == [earlier, back.rows]
        latest_rows = spark.table(uc.latest_predictions_table).toPandas()
        assert set(latest_rows["run_id"]) == {back.run_id} and len(latest_rows) == back.rows
        assert json.loads(Path(back.json_path).read_text())["run_id"] == back.run_id
        # drift: the scores' PSI against the run before and the champion's held-out
        # predictions, then each top numeric feature's against the training rows
        scores, features = back.monitoring[:2], back.monitoring[2:]
        assert [d["against"] for d in scores] == [
            f"previous run {result.run_id}",
            f"v{champion} held-out predictions",
        ]
        assert all(d["psi"] >= 0 and d["rows"] == back.rows for d in scores)
        # the previous run, binned where it lies (Spark's exact deciles and counts), gives
        # the PSI numpy gives on the two runs' scores
        by_run = history.groupby("run_id")["score"]
        on_numpy = compare(by_run.get_group(result.run_id), by_run.get_group(back.run_id), "-")
        assert scores[0]["psi"] == pytest.approx(on_numpy["psi"], abs=2e-6)
        assert scores[0]["reference_rows"] == result.rows
        assert f"v{champion} held-out predictions" in [d["against"] for d in result.monitoring]
        prefix = f"v{champion} training rows: "
        names = [d["against"].removeprefix(prefix) for d in features]
        assert 0 < len(names) <= TOP_FEATURES and all(
            d["against"].startswith(prefix) for d in features
        )
        numeric = frame.select_dtypes("number").columns
        assert set(names) <= set(numeric) - uc.non_features, names
        assert all(d["psi"] >= 0 and 0 < d["rows"] <= back.rows for d in features)
        # every feature binned by Spark in one pass over the population gives the PSI
        # numpy gives on the same rows against the version's training reference
        trained = feature_references(ml_settings, uc, champion)
        population = in_window(uc, frame, earlier)
        for name, d in zip(names, features, strict=True):
            values = pd.to_numeric(population[name], errors="coerce").to_numpy(dtype=float)
            counts = bin_counts(values[np.isfinite(values)], trained[name].edges)
            on_numpy = compare_counts(trained[name], counts, d["against"])
            assert d["psi"] == pytest.approx(on_numpy["psi"], abs=1e-9), name
            assert d["rows"] == on_numpy["rows"], name


def _exists(spark, uc) -> bool:
    return spark.catalog.tableExists(uc.predictions_table)


@pytest.fixture(scope="module")
def api(ml_settings, first_runs, tmp_path_factory):
    """`cms-pipeline serve --port 0`: the server binds a free port itself (no port found
    beforehand that another process could take); the test reads it off the process.
    Its output goes to a log file, named when it does not start."""
    from cms_pipeline.processes import listening_ports, spawn, stop_group, wait_until

    argv = [str(Path(sys.executable).parent / "cms-pipeline"), "serve", "--port", "0"]
    argv += ["--lake", ml_settings.lake, "--reload-seconds", "0.5"]
    log = tmp_path_factory.mktemp("api") / "serve.log"
    env = {**os.environ, "CMS_PIPELINE_API_KEY": "test-key"}
    proc = spawn("api", argv, env, log, cwd=Path.cwd())
    try:
        wait_until(lambda: bool(listening_ports(proc)), proc, 180, "the REST API")
        (port,) = listening_ports(proc)
        assert f"http://127.0.0.1:{port}" in log.read_text()  # the address it prints
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "test-key"}, timeout=30
        )
        wait_until(lambda: client.get("/healthz").status_code == 200, proc, 180, "the REST API")
        yield client
    finally:
        stop_group(proc)


def _record(frame: pd.DataFrame, features: list[dict]) -> dict:
    row = frame.iloc[0]
    return {
        f["name"]: (
            None
            if pd.isna(row[f["name"]])
            else (float(row[f["name"]]) if f["type"] == "numeric" else str(row[f["name"]]))
        )
        for f in features
    }


def test_rest_api_over_http(api, ml_settings, tables):
    models = {m["use_case"]: m for m in api.get("/v1/models").json()}
    assert set(models) == set(tables)
    readm = models["readmission_30d"]
    assert readm["model_version"] == "1" and "test_auc" in readm["metrics"]
    rec = _record(tables["readmission_30d"], readm["features"])

    one = api.post("/v1/models/readmission_30d/predict", json={"records": [rec]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == "1" and 0 <= body["predictions"][0]["score"] <= 1

    # many records, one unseen category (scored as missing, as H2O does)
    cat = next(f["name"] for f in readm["features"] if f["type"] == "categorical")
    many = api.post(
        "/v1/models/readmission_30d/predict",
        json={"records": [rec, {**rec, cat: "never-seen"}, rec]},
    )
    assert many.status_code == 200 and len(many.json()["predictions"]) == 3
    scores = [p["score"] for p in many.json()["predictions"]]
    assert scores[0] == scores[2] == body["predictions"][0]["score"]

    num = next(f["name"] for f in readm["features"] if f["type"] == "numeric")
    bad = api.post(
        "/v1/models/readmission_30d/predict",
        json={"records": [{**rec, num: "lots", "admission_id": "A1"}]},
    )
    assert bad.status_code == 422
    fields = {e["field"]: e["message"] for e in bad.json()["detail"]}
    assert set(fields) == {f"records.0.{num}", "records.0.admission_id"}

    missing = {k: v for k, v in rec.items() if k != num}
    r = api.post("/v1/models/readmission_30d/predict", json={"records": [missing]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == f"records.0.{num}"
    assert api.post("/v1/models/readmission_30d/predict", json={"records": []}).status_code == 422
    assert api.post("/v1/models/unknown/predict", json={"records": [rec]}).status_code == 404
    assert (
        api.post(
            "/v1/models/readmission_30d/predict",
            json={"records": [rec]},
            headers={"X-API-Key": "wrong"},
        ).status_code
        == 401
    )
    assert httpx.get(f"{api.base_url}/v1/models").status_code == 401
    assert api.get("/healthz").json()["models"]["readmission_30d"] == "1"
    assert api.get("/docs").status_code == 200
    assert "/v1/models/{use_case}/predict" in api.get("/openapi.json").json()["paths"]


def test_rest_api_follows_the_champion(api, ml_settings, tables, second_run):
    readm = api.get("/v1/models/readmission_30d").json()
    rec = _record(tables["readmission_30d"], readm["features"])
    registry.promote(ml_settings, "readmission_30d", "2", "test reload")
    try:
        deadline = time.time() + 60
        version = None
        while time.time() < deadline and version != "2":
            time.sleep(0.5)
            version = api.post(
                "/v1/models/readmission_30d/predict", json={"records": [rec]}
            ).json()["model_version"]
        assert version == "2"
    finally:
        registry.rollback(ml_settings, "readmission_30d")
        # the server reloads every 0.5 s: the next test must find it serving v1 again
        deadline = time.time() + 60
        while api.get("/healthz").json()["models"]["readmission_30d"] != "1":
            assert time.time() < deadline, "the API kept serving v2 after the rollback"
            time.sleep(0.5)


TREE_ALGOS = ("gbm", "drf", "xrt", "xgboost")  # MOJOs with SHAP contributions (XRT: a DRF)


def _in_space(p, space: str):
    """A score as its contributions add up to it: the logit (GBM, XGBoost) or itself (DRF)."""
    p = np.asarray(p, dtype=float)
    return np.log(p / (1 - p)) if space == "log-odds" else p


def _tree_scorer(ml_settings, result, dest: Path):
    """The best tree model of a run's leaderboard as a MojoScorer: its MOJO downloaded
    from the cluster (nothing trained), beside a copy of the version's features.json."""
    import h2o

    from models_ml.mojo import MojoScorer

    trees = [r["model_id"] for r in result.leaderboard if str(r["algo"]).lower() in TREE_ALGOS]
    assert trees, f"{result.use_case}: no tree model in {result.leaderboard}"
    dest.mkdir(parents=True)
    mojo = h2o.get_model(trees[0]).download_mojo(
        path=str(dest), get_genmodel_jar=True, genmodel_name=registry.GENMODEL_JAR
    )
    run = registry.client(ml_settings).get_run(result.run_id)
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    features_json = art / registry.MOJO_DIR / registry.FEATURES_FILE
    (Path(mojo).parent / registry.FEATURES_FILE).write_bytes(features_json.read_bytes())
    return MojoScorer(mojo, dest / registry.GENMODEL_JAR)


def test_mojo_contributions_sum_to_the_logit_of_the_score(
    ml_settings, first_runs, h2o_cluster, tmp_path
):
    """TreeSHAP from the MOJO, on every test row: contributions plus the bias equal the
    logit of the row's score (GBM; DRF: the score itself); a MOJO without contributions
    (GLM, ensembles) says so."""
    from models_ml.serving import load_version

    for name, result in first_runs.items():
        scorer = _tree_scorer(ml_settings, result, tmp_path / name)
        assert scorer.has_contributions and scorer.algorithm in ("Gbm", "Drf", "XGBoost")
        test_rows = pd.read_parquet(Path(result.snapshot_dir) / "test")
        x = scorer.encode_frame(test_rows)
        names, contribs = scorer.contributions(x)
        assert names == [*scorer.feature_names, "BiasTerm"]
        assert contribs.shape == (len(test_rows), len(names))
        scores = scorer.score_matrix(x)
        assert scorer.contribution_space == (
            "probability" if scorer.algorithm == "Drf" else "log-odds"
        )
        total = contribs.sum(axis=1)
        np.testing.assert_allclose(
            total, _in_space(scores, scorer.contribution_space), rtol=0, atol=1e-6
        )
        # the feature table's types come with the model (features.json, written at training)
        types = {f.name: f.source_type for f in scorer.features}
        assert types["state_code"] == "string" and types["chronic_condition_count"] == "integer"

        served = load_version(ml_settings, name, result.model_version).scorer
        if not served.has_contributions:
            with pytest.raises(NotImplementedError, match=served.algorithm):
                served.contributions(x[:1])


def test_parquet_booleans_reach_h2o_as_the_levels_the_scorer_spells(h2o_cluster, tmp_path):
    """A Spark boolean feature is an H2O enum False/True in the MOJO: JSON true (REST)
    and Spark's booleans (batch) must both be spelled as those levels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from models_ml.mojo import _level

    path = tmp_path / "flags.parquet"
    pq.write_table(pa.table({"flag": pa.array([True, False, None, True], pa.bool_())}), path)
    frame = h2o_cluster.import_file(str(path))
    assert frame.types["flag"] == "enum"
    assert frame["flag"].levels()[0] == [_level(False), _level(True)] == ["False", "True"]
    assert [_level(v) for v in pd.Series([True, False], dtype=bool).tolist()] == ["True", "False"]


def test_rest_explain(api, ml_settings, tables, first_runs, h2o_cluster, tmp_path):
    """POST /v1/models/{use_case}/explain: over HTTP on the served champions (a model
    without contributions answers 501), and in process on each run's best tree model
    (the champion may be a GLM): bias + listed + unlisted contributions = predict's
    score for the same record in the response's space; `top`; 422, 401, 404; OpenAPI."""
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from models_ml.api import create_app
    from models_ml.api_champions import Served
    from models_ml.api_guards import MAX_RECORDS
    from models_ml.schema import request_model

    for name in tables:
        model = api.get(f"/v1/models/{name}").json()
        rec = _record(tables[name], model["features"])
        r = api.post(f"/v1/models/{name}/explain", json={"records": [rec]})
        if first_runs[name].leader.split("_")[0].lower() in TREE_ALGOS:
            assert r.status_code == 200, r.text
        else:
            assert r.status_code == 501, r.text
            assert "no SHAP contributions" in r.json()["detail"]
            assert "model card" in r.json()["detail"]
        # typed request fields from the feature table (int columns are JSON integers)
        props = model["request_schema"]["$defs"][f"{name.title().replace('_', '')}Record"]
        assert {"type": "integer"} in props["properties"]["chronic_condition_count"]["anyOf"]
    assert api.post("/v1/models/unknown/explain", json={"records": [rec]}).status_code == 404
    no_key = httpx.post(f"{api.base_url}/v1/models/readmission_30d/explain", json={"records": []})
    assert no_key.status_code == 401
    spec = api.get("/openapi.json").json()
    assert "/v1/models/{use_case}/explain" in spec["paths"]
    record = spec["components"]["schemas"]["Readmission30DRecord"]["properties"]
    assert {"type": "integer"} in record["age_at_admission"]["anyOf"]
    assert {"type": "number"} in record["prior_year_total_cost"]["anyOf"]

    # in process, each use case served by its best tree model
    app = create_app(ml_settings, api_key="k", reload_seconds=3600)  # no lifespan: no reload
    champions = app.state.champions
    client = TestClient(app, headers={"X-API-Key": "k"})
    for name, result in first_runs.items():
        tree = _tree_scorer(ml_settings, result, tmp_path / name)
        loaded = replace(champions.models[name].model, scorer=tree, features=tree.features)
        served = Served(loaded, request_model(name, tree.features, MAX_RECORDS))
        champions.models = {**champions.models, name: served}
        url = f"/v1/models/{name}/explain"
        features = [f.model_dump() for f in tree.features]
        records = [_record(tables[name].iloc[[i]], features) for i in range(3)]
        predicted = client.post(f"/v1/models/{name}/predict", json={"records": records})
        scores = [p["score"] for p in predicted.json()["predictions"]]
        n = len(features)
        full = client.post(f"{url}?top={n}", json={"records": records})
        assert full.status_code == 200, full.text
        body = full.json()
        assert body["algorithm"] == tree.algorithm
        space = body["space"]
        assert space == ("probability" if tree.algorithm == "Drf" else "log-odds")
        for e, score, rec in zip(body["explanations"], scores, records, strict=True):
            assert e["score"] == score
            assert len(e["contributions"]) == n and e["others"] == 0
            total = e["bias"] + sum(c["contribution"] for c in e["contributions"])
            assert abs(total - _in_space(score, space)) < 1e-6
            assert {c["feature"]: c["value"] for c in e["contributions"]} == rec
        two = client.post(f"{url}?top=2", json={"records": records[:1]})
        (e,) = two.json()["explanations"]
        sizes = [abs(c["contribution"]) for c in e["contributions"]]
        assert len(sizes) == 2 and sizes == sorted(sizes, reverse=True)
        largest = max(abs(c["contribution"]) for c in body["explanations"][0]["contributions"])
        assert sizes[0] == largest
        total = e["bias"] + e["others"] + sum(c["contribution"] for c in e["contributions"])
        assert abs(total - _in_space(scores[0], space)) < 1e-6
        default = client.post(url, json={"records": records[:1]})
        assert len(default.json()["explanations"][0]["contributions"]) == min(5, n)
        too_many = client.post(f"{url}?top={n + 1}", json={"records": records})
        assert too_many.status_code == 422 and str(n) in too_many.json()["detail"][0]["message"]
        bad = client.post(url, json={"records": [{**records[0], "chronic_condition_count": 1.5}]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "records.0.chronic_condition_count"
        assert (
            client.post(
                url, json={"records": [records[0]]}, headers={"X-API-Key": "no"}
            ).status_code
            == 401
        )
