"""The scoring API under bad models and bad requests, over real HTTP.

Real H2O GBMs (trained here on the generated feature frames, without Spark: a few
seconds instead of AutoML's minutes), exported as MOJOs and registered in a real MLflow
registry; the API runs under uvicorn in a thread of this process, on a socket bound
to port 0 before the server starts (no free-port race). A corrupt model is its MOJO
truncated on disk, a missing one is its MOJO deleted.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from cms_pipeline.config import load_settings
from models_ml import api_champions, api_scoring, registry
from models_ml.api import create_app
from models_ml.api_guards import MAX_RECORDS
from models_ml.schema import FEATURES_FILE, Feature, FeatureSpec
from models_ml.serving import cache_dir
from models_ml.synthetic import high_cost_frame, readmission_frame
from models_ml.usecase import load_use_case

pytestmark = pytest.mark.integration

KEY = "test-key"
READM, COST = "readmission_30d", "high_cost_next_year"


def _register_gbm(settings, h2o, use_case: str, frame: pd.DataFrame, seed: int) -> str:
    """Train a small GBM, log its MOJO as `train` does (mojo/model.zip, the genmodel
    jar, features.json) and register it as a new version; returns the version."""
    from h2o.estimators import H2OGradientBoostingEstimator

    uc = load_use_case(settings, use_case)
    # the labelled rows only (the scoring population's label is null), as `train` reads
    frame = frame[frame[uc.population.training_flag].astype(bool)].copy()
    frame[uc.target] = frame[uc.target].astype("int32")
    features = uc.feature_columns(list(frame.columns))
    text = [c for c in features if frame[c].dtype == object]
    hf = h2o.H2OFrame(
        frame[[*features, uc.target]],
        column_types={**{c: "enum" for c in text}, uc.target: "enum"},
    )
    model = H2OGradientBoostingEstimator(ntrees=5 + seed, max_depth=3, seed=seed)
    model.train(x=features, y=uc.target, training_frame=hf)
    out = settings.metadata_path("test_models", f"{use_case}-{seed}")
    mojo_dir = out / registry.MOJO_DIR
    mojo_dir.mkdir(parents=True)
    path = model.download_mojo(
        path=str(mojo_dir), get_genmodel_jar=True, genmodel_name=registry.GENMODEL_JAR
    )
    Path(path).rename(mojo_dir / registry.MOJO_FILE)
    spec = [
        Feature(
            name=c,
            type="categorical" if c in text else "numeric",
            levels=sorted(map(str, frame[c].unique())) if c in text else None,
        )
        for c in features
    ]
    FeatureSpec(use_case=use_case, id_columns=uc.id_columns, features=spec).write(
        mojo_dir / FEATURES_FILE
    )
    c = registry.client(settings)
    run_id = c.create_run(registry.experiment_id(settings, use_case)).info.run_id
    c.log_artifacts(run_id, str(out))
    c.log_metric(run_id, "test_auc", float(model.auc()))
    c.set_terminated(run_id)
    return str(registry.register_version(settings, use_case, run_id, tags={}).version)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """readmission_30d: v1 champion, v2 registered; high_cost_next_year: v1 champion."""
    from models_ml.h2o_cluster import ensure_h2o

    settings = load_settings(lake=str(tmp_path_factory.mktemp("api") / "lake"))
    h2o = ensure_h2o(max_mem="1g", nthreads=2)  # this process's own cluster
    try:
        frames = {READM: readmission_frame(rows=600), COST: high_cost_frame(rows=600)}
        for seed, use_case in ((1, READM), (1, COST)):
            version = _register_gbm(settings, h2o, use_case, frames[use_case], seed)
            registry.promote(settings, use_case, version, "test")
        _register_gbm(settings, h2o, READM, frames[READM], seed=2)
    finally:
        h2o.cluster().shutdown()
    return settings, frames


def _mojo(settings, use_case: str, version: str) -> Path:
    """The registry's copy of a version's MOJO (file artefact store)."""
    c = registry.client(settings)
    run = c.get_run(c.get_model_version(use_case, version).run_id)
    return Path(run.info.artifact_uri.removeprefix("file://")) / "mojo" / registry.MOJO_FILE


def _record(frame: pd.DataFrame, features: list[dict], i: int = 0) -> dict:
    row = frame.iloc[i]
    return {
        f["name"]: None
        if pd.isna(row[f["name"]])
        else (float(row[f["name"]]) if f["type"] == "numeric" else str(row[f["name"]]))
        for f in features
    }


@contextmanager
def serving(app):
    """uvicorn in a thread on a loopback socket already bound (port 0) and listening."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=120) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def good(lake):
    settings, _ = lake
    app = create_app(settings, api_key=KEY, reload_seconds=0.2)
    with serving(app) as client:
        yield app, client


def test_every_champion_loads_and_is_ready(good, lake):
    _, client = good
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["use_cases"] == {
        READM: {"status": "ok", "champion": "1", "served": "1", "reason": None},
        COST: {"status": "ok", "champion": "1", "served": "1", "reason": None},
    }
    assert client.get("/healthz").json()["models"] == {READM: "1", COST: "1"}
    assert client.get("/livez").status_code == 200


def test_health_answers_while_ten_thousand_records_are_scored(good, lake):
    app, client = good
    settings, frames = lake
    features = client.get(f"/v1/models/{READM}").json()["features"]
    frame = frames[READM]
    records = [_record(frame, features, i % len(frame)) for i in range(MAX_RECORDS)]
    scoring = app.state.scoring
    done, result = threading.Event(), {}

    def big_request():
        result["response"] = client.post(f"/v1/models/{READM}/predict", json={"records": records})
        done.set()

    threading.Thread(target=big_request, daemon=True).start()
    deadline = time.monotonic() + 120
    while scoring.busy == 0:  # the request is being scored on a scoring thread
        assert not done.is_set(), "the request was answered without a scoring thread"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    health = httpx.get(f"{client.base_url}/healthz", timeout=30)
    answered_first = not done.is_set()
    assert done.wait(120)
    assert health.status_code == 200
    assert answered_first, "/healthz waited for the scoring request"
    response = result["response"]
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["predictions"]) == MAX_RECORDS


def test_bad_inputs_get_422_and_bad_keys_401(good, lake):
    _, client = good
    _, frames = lake
    features = client.get(f"/v1/models/{READM}").json()["features"]
    rec = _record(frames[READM], features)
    num = next(f["name"] for f in features if f["type"] == "numeric")
    cat = next(f["name"] for f in features if f["type"] == "categorical")
    url = f"/v1/models/{READM}/predict"
    # Python's json writes (and reads) NaN and Infinity literals: exactly what to refuse
    for bad in (
        {num: float("nan")},
        {num: float("inf")},
        {num: float("-inf")},
        {cat: float("nan")},
    ):
        body = json.dumps({"records": [rec, {**rec, **bad}]})
        r = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (bad, r.text)
        assert [e["field"] for e in r.json()["detail"]] == [f"records.1.{next(iter(bad))}"]
    assert client.post(url, content=b'{"records": [{"x": 1e999}]}').status_code == 422
    # a body large enough to be scored on a scoring thread: the same 422
    body = json.dumps({"records": [rec] * 500 + [{**rec, num: float("nan")}]})
    assert len(body) > api_scoring.INLINE_BODY_BYTES
    r = client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == f"records.500.{num}"
    assert client.post(url, json={"records": [rec]}).status_code == 200
    for key in ("wrong", "clé".encode(), "clé".encode("latin-1"), b"\xff\xfe", KEY[:-1], KEY + "x"):
        r = client.post(url, json={"records": [rec]}, headers={"X-API-Key": key})
        assert r.status_code == 401, (key, r.text)
        assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 401


def test_a_corrupt_new_champion_leaves_the_last_good_version_served(good, lake):
    app, client = good
    settings, frames = lake
    features = client.get(f"/v1/models/{READM}").json()["features"]
    rec = _record(frames[READM], features)
    mojo = _mojo(settings, READM, "2")
    mojo.write_bytes(mojo.read_bytes()[: mojo.stat().st_size // 2])  # truncated zip
    registry.promote(settings, READM, "2", "test: corrupt champion")
    deadline = time.monotonic() + 60
    state = {}
    while state.get("champion") != "2":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
        state = client.get("/readyz").json()["use_cases"][READM]
    assert state["status"] == "degraded" and state["served"] == "1"
    assert "version 2 cannot be loaded" in state["reason"], state
    r = client.post(f"/v1/models/{READM}/predict", json={"records": [rec]})
    assert r.status_code == 200 and r.json()["model_version"] == "1"
    assert client.get("/readyz").json()["use_cases"][COST]["status"] == "ok"
    assert not (cache_dir(settings) / READM / "2").exists()  # no bad copy kept


def test_on_start_a_bad_champion_falls_back_and_a_lost_model_is_unavailable(
    good, lake, monkeypatch
):
    """Runs after the test above: readmission's champion v2 is corrupt on disk."""
    settings, frames = lake
    assert str(registry.champion(settings, READM).version) == "2"
    cost_mojo = _mojo(settings, COST, "1")
    saved = cost_mojo.read_bytes()
    cost_mojo.unlink()
    shutil.rmtree(cache_dir(settings) / COST, ignore_errors=True)
    app = create_app(settings, api_key=KEY, reload_seconds=0.2)
    with serving(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text  # something is served
        states = ready.json()["use_cases"]
        assert ready.json()["status"] == "degraded"
        assert states[READM]["status"] == "degraded", states
        assert (states[READM]["champion"], states[READM]["served"]) == ("2", "1")
        assert states[COST]["status"] == "unavailable" and states[COST]["served"] is None
        assert "version 1 cannot be loaded" in states[COST]["reason"]
        features = client.get(f"/v1/models/{READM}").json()["features"]
        r = client.post(
            f"/v1/models/{READM}/predict", json={"records": [_record(frames[READM], features)]}
        )
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        assert client.post(f"/v1/models/{COST}/predict", json={"records": [{}]}).status_code == 404

        # repaired artefacts are picked up on the next attempt
        cost_mojo.write_bytes(saved)
        monkeypatch.setattr(api_champions, "RETRY_FAILED_SECONDS", 0.0)
        app.state.champions.refresh()
        states = client.get("/readyz").json()["use_cases"]
        assert states[COST] == {"status": "ok", "champion": "1", "served": "1", "reason": None}
        assert states[READM]["status"] == "degraded"  # v2 is still corrupt


def test_nothing_loadable_is_not_ready(lake):
    settings, _ = lake
    for use_case, version in ((READM, "1"), (READM, "2"), (COST, "1")):
        _mojo(settings, use_case, version).unlink(missing_ok=True)
    shutil.rmtree(cache_dir(settings), ignore_errors=True)
    app = create_app(settings, api_key=KEY, reload_seconds=0.2)
    with serving(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert {s["status"] for s in ready.json()["use_cases"].values()} == {"unavailable"}
        assert client.get("/healthz").status_code == 200  # alive, just not ready
