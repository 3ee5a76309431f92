"""The scoring API's guards that need no model (no JVM): body size, API key, liveness
and readiness of an API with nothing to serve. Over real HTTP (uvicorn in a thread on
a socket bound to port 0 before it starts); scoring itself is tested with real MOJOs in
tests/integration/test_api_resilience.py."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from models_ml.api import create_app
from models_ml.api_guards import MAX_BODY_BYTES, MAX_BODY_ENV, key_matches

KEY = "s3cret-ключ"  # a non-ASCII key works when the client sends its UTF-8 bytes
LIMIT = 4096
PREDICT = "/v1/models/readmission_30d/predict"


@contextmanager
def serving(app):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from cms_pipeline.config import load_settings

    settings = load_settings(lake=str(tmp_path_factory.mktemp("api") / "lake"))
    with serving(create_app(settings, api_key=KEY, max_body_bytes=LIMIT)) as c:
        yield c


def _key(value: str | bytes = KEY) -> dict:
    return {"X-API-Key": value.encode() if isinstance(value, str) else value}


def test_a_body_over_the_limit_gets_413_by_its_declared_length(client):
    body = b'{"records": [' + b" " * LIMIT + b"]}"
    r = client.post(PREDICT, content=body, headers=_key())
    assert r.status_code == 413
    assert MAX_BODY_ENV in r.json()["detail"]
    # at the limit the body is read and goes on to the route (no model here: 404)
    r = client.post(PREDICT, content=b" " * LIMIT, headers=_key())
    assert r.status_code == 404 and "/readyz" in r.json()["detail"]


def test_a_streamed_body_over_the_limit_gets_413_while_it_is_read(client):
    sent = []

    def chunks():  # no Content-Length: the body is sent chunked
        for _ in range(64):
            sent.append(1024)
            yield b" " * 1024

    r = client.post(PREDICT, content=chunks(), headers=_key())
    assert r.status_code == 413, r.text
    assert MAX_BODY_ENV in r.json()["detail"]


@pytest.mark.parametrize(
    "key",
    [None, "wrong", b"s3cret-\xd0", "clé".encode("latin-1"), b"\xff\xfe", KEY[:-1]],
)
def test_any_wrong_key_gets_401_never_500(client, key):
    headers = {} if key is None else _key(key)
    assert client.get("/v1/models", headers=headers).status_code == 401
    assert client.post(PREDICT, json={"records": []}, headers=headers).status_code == 401


def test_the_right_key_passes(client):
    assert client.get("/v1/models", headers=_key()).json() == []


def test_alive_but_not_ready_with_nothing_to_serve(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": {}}
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    states = ready.json()["use_cases"]
    assert ready.json()["status"] == "unavailable" and states  # every configured use case
    for state in states.values():
        assert state["status"] == "unavailable" and state["served"] is None
        assert "no champion" in state["reason"]


def test_key_matches_compares_bytes():
    expected = KEY.encode()
    assert key_matches(KEY.encode().decode("latin-1"), expected)  # as Starlette decodes it
    assert not key_matches(KEY, expected)  # the same text sent as Latin-1 is other bytes
    assert not key_matches(None, expected)
    assert not key_matches("", expected)


def test_the_body_limit_comes_from_the_environment(tmp_path, monkeypatch):
    from cms_pipeline.config import load_settings

    settings = load_settings(lake=str(tmp_path / "lake"))
    monkeypatch.setenv(MAX_BODY_ENV, "lots")
    with pytest.raises(RuntimeError, match=MAX_BODY_ENV):
        create_app(settings, api_key=KEY)
    monkeypatch.setenv(MAX_BODY_ENV, "100")
    with serving(create_app(settings, api_key=KEY)) as c:
        assert c.post(PREDICT, content=b" " * 101, headers=_key()).status_code == 413
    assert MAX_BODY_BYTES >= 10_000 * 200  # 10,000 records of a few hundred bytes fit


EXPLAIN = "/v1/models/readmission_30d/explain"


def test_explain_is_guarded_like_predict(client):
    assert client.post(EXPLAIN, json={"records": []}).status_code == 401
    assert client.post(EXPLAIN + "?top=0", json={"records": []}).status_code == 401
    r = client.post(EXPLAIN, json={"records": [{}]}, headers=_key())
    assert r.status_code == 404 and "/readyz" in r.json()["detail"]
    r = client.post(EXPLAIN + "?top=0", json={"records": [{}]}, headers=_key())
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.top"
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/models/{use_case}/explain" in paths
    assert {"top"} <= {
        p["name"] for p in paths["/v1/models/{use_case}/explain"]["post"]["parameters"]
    }


def test_openapi_shows_each_served_models_typed_record():
    from types import SimpleNamespace

    from models_ml.api import with_record_schemas
    from models_ml.api_champions import Served
    from models_ml.schema import Feature, request_model

    features = [
        Feature(
            name="has_esrd", type="categorical", levels=["False", "True"], source_type="boolean"
        ),
        Feature(name="stays", type="numeric", source_type="integer"),
    ]
    served = Served(SimpleNamespace(), request_model("demo_case", features, 10))
    body = {"content": {"application/json": {"schema": {"type": "object"}}}}
    base = {
        "paths": {
            f"/v1/models/{{use_case}}/{verb}": {
                "post": {"requestBody": json.loads(json.dumps(body))}
            }
            for verb in ("predict", "explain")
        }
    }
    spec = with_record_schemas(base, {"demo_case": served})
    assert base["paths"]["/v1/models/{use_case}/predict"]["post"]["requestBody"] == body  # a copy
    record = spec["components"]["schemas"]["DemoCaseRecord"]["properties"]
    assert {"type": "boolean"} in record["has_esrd"]["anyOf"]
    assert {"type": "integer"} in record["stays"]["anyOf"]
    post = spec["paths"]["/v1/models/{use_case}/explain"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"oneOf": [{"$ref": "#/components/schemas/DemoCasePredictRequest"}]}
