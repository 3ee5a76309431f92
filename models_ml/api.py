"""REST scoring: FastAPI over champion MOJOs held in this process's JVM.

    GET  /healthz (or /livez)              liveness and served versions (no key)
    GET  /readyz                           per use case: ok / degraded / unavailable (no key)
    GET  /v1/models                        served models with versions and metrics
    GET  /v1/models/{use_case}             one served model, with its record schema
    POST /v1/models/{use_case}/predict     {"records": [{feature: value, ...}, ...]}
    POST /v1/models/{use_case}/explain?top=5  same body: scores and top SHAP contributions

Requests need the header X-API-Key equal to $CMS_PIPELINE_API_KEY (401 otherwise, for
any bytes a client sends). Records are checked against a pydantic model derived from the
model's features (unknown fields, NaN and infinities rejected, one message per bad
field). A body over $CMS_PIPELINE_API_MAX_BODY_BYTES gets 413 before it is read whole.

A background thread follows the registry: when the champion changes, the new MOJO is
loaded and swapped in. A champion that cannot be loaded (artefact missing or corrupt)
never replaces a working model: the API keeps serving the last good version (on start,
the most recent earlier champion that loads) and /readyz says which and why; each use
case loads on its own, so one bad model never stops the others.

Latency and liveness: a small body (under `INLINE_BODY_BYTES`: microseconds of work) is
parsed and scored on the event loop's thread; a larger one on one of a few long-lived
scoring threads, so health checks answer while 10,000 records are scored. JPype attaches
a thread to the JVM on its first Java call and never detaches it by itself: fixed
threads are attached once, where a pool that starts and drops threads (anyio's) would
leave an attachment behind for each. The background thread asks the registry only when
its SQLite file changed or `FULL_CHECK_SECONDS` passed (a tracking server: every time).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.schema import records_to_columns, request_model
from models_ml.serving import LoadedModel, earlier_champions, load_version, why
from models_ml.usecase import list_use_cases

API_KEY_ENV = "CMS_PIPELINE_API_KEY"
MAX_BODY_ENV = "CMS_PIPELINE_API_MAX_BODY_BYTES"
MAX_BODY_BYTES = 16 * 1024 * 1024  # 10,000 records of ~20 features fit with room to spare
MAX_RECORDS = 10_000
INLINE_BODY_BYTES = 32 * 1024  # smaller bodies are scored on the event loop (no thread hop)
SCORING_THREADS = 2  # large requests scored at once; more wait their turn
FULL_CHECK_SECONDS = 60.0  # ask the registry at least this often, changed file or not
RETRY_FAILED_SECONDS = 60.0  # a champion that failed to load is tried again after this
PREDICT_BODY = {
    "required": True,
    "description": "`records`: 1 to 10,000 records; see GET /v1/models/{use_case} "
    "for the fields of each record",
    "content": {
        "application/json": {
            "schema": {"type": "object", "required": ["records"]},
            "example": {"records": [{"feature_a": 1.0, "feature_b": "level"}]},
        }
    },
}
TOP_CONTRIBUTIONS = 5
log = logging.getLogger("models_ml.api")


@dataclass
class Served:
    model: LoadedModel
    request: type[BaseModel]


@dataclass(frozen=True)
class Readiness:
    """What one use case serves: its champion, or the last good version and why."""

    status: Literal["ok", "degraded", "unavailable"]
    champion: str | None  # the registry's champion version
    served: str | None  # the version answering requests
    reason: str | None = None


class Prediction(BaseModel):
    score: float
    label: int


class PredictResponse(BaseModel):
    use_case: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class Contribution(BaseModel):
    feature: str
    value: Any  # the record's value of the feature
    contribution: float


class Explanation(BaseModel):
    score: float
    label: int
    bias: float  # H2O's BiasTerm
    contributions: list[Contribution]  # the `top` largest by absolute value
    others: float  # sum of the contributions not listed: bias + all = the score in `space`


class ExplainResponse(BaseModel):
    use_case: str
    model_version: str
    algorithm: str
    space: Literal["log-odds", "probability"]  # log-odds: GBM, XGBoost; probability: DRF
    threshold: float
    explanations: list[Explanation]


class ModelInfo(BaseModel):
    use_case: str
    model_version: str
    metrics: dict[str, float]
    features: list[dict[str, Any]]


class Champions:
    """The loaded model of each use case, swapped atomically on reload, and its readiness.

    Both maps are replaced, never changed in place: a request iterating one while the
    reload thread installs a model sees the old map or the new one, whole."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models: dict[str, Served] = {}
        self.readiness: dict[str, Readiness] = {}
        self._lock = threading.Lock()
        self._store = registry.local_store(settings)
        self._seen: object = None
        self._checked_at = float("-inf")
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}  # (uc, version) -> when, why

    def refresh_if_changed(self) -> None:
        stamp = registry.store_stamp(self._store)
        fresh = time.monotonic() - self._checked_at < FULL_CHECK_SECONDS
        if stamp is not None and stamp == self._seen and fresh:
            return
        # the stamp is taken before asking: a write during the query is seen next time
        self._seen, self._checked_at = stamp, time.monotonic()
        self.refresh()

    def refresh(self) -> None:
        for name in list_use_cases(self.settings):
            try:
                state = self._refresh_one(name)
            except Exception as exc:  # noqa: BLE001 - one use case never stops the others
                log.exception("checking %s failed; keeping what it serves", name)
                state = self._state(name, None, f"registry check failed: {why(exc)}")
            self.readiness = {**self.readiness, name: state}

    def _refresh_one(self, name: str) -> Readiness:
        champ = registry.champion(self.settings, name)
        if champ is None:
            return self._state(name, None, "no champion in the registry (or it is unreachable)")
        want = str(champ.version)
        current = self.models.get(name)
        if current is not None and current.model.version == want:
            return Readiness("ok", want, want)
        failed = self._failed.get((name, want))
        if failed is not None and time.monotonic() - failed[0] < RETRY_FAILED_SECONDS:
            return self._state(name, want, failed[1])
        try:
            self._install(name, load_version(self.settings, name, want))
            self._failed.pop((name, want), None)
            return Readiness("ok", want, want)
        except Exception as exc:  # noqa: BLE001 - a bad artefact must not stop serving
            reason = f"champion version {want} cannot be loaded: {why(exc)}"
            log.error("%s: %s; fix or re-promote it (`cms-pipeline models promote`)", name, reason)
            self._failed[(name, want)] = (time.monotonic(), reason)
        if current is None:  # nothing served yet (start): the most recent earlier champion
            for version in earlier_champions(self.settings, name, want):
                try:
                    self._install(name, load_version(self.settings, name, version))
                    break
                except Exception as exc:  # noqa: BLE001
                    reason += f"; earlier champion {version} cannot be loaded either: {why(exc)}"
        return self._state(name, want, reason)

    def _install(self, name: str, loaded: LoadedModel) -> None:
        with self._lock:
            served = Served(loaded, request_model(name, loaded.features, MAX_RECORDS))
            self.models = {**self.models, name: served}
        log.info("serving %s version %s", name, loaded.version)

    def _state(self, name: str, champion: str | None, reason: str) -> Readiness:
        served = self.models.get(name)
        if served is None:
            return Readiness("unavailable", champion, None, reason)
        return Readiness("degraded", champion, served.model.version, reason)

    def get(self, use_case: str) -> Served:
        served = self.models.get(use_case)
        if served is None:
            raise HTTPException(
                404,
                f"no model served for '{use_case}' (served: {sorted(self.models)}; "
                "see /readyz for why)",
            )
        return served


class ScoringThreads:
    """A few long-lived threads for large requests (each attached to the JVM once)."""

    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="scoring")
        self.busy = 0  # requests scoring or waiting for a thread (changed on the loop only)

    async def run(self, fn, *args):
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.busy -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by its Content-Length before
    reading, and by counting while it streams (chunked bodies declare no length)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _plain(400, "Content-Length is not a number")(scope, receive, send)
            if int(declared) > self.max_bytes:
                return await _plain(413, self._message())(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._message())  # answered by FastAPI's handler
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return (
            f"request body over {self.max_bytes} bytes; send fewer records per request "
            f"(or raise {MAX_BODY_ENV})"
        )


def _plain(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": detail}, headers={"Connection": "close"}
    )


def key_matches(given: str | None, expected: bytes) -> bool:
    """Constant-time check of the X-API-Key header. Starlette decodes headers as
    Latin-1, so encoding back gives the client's exact bytes, whatever they are."""
    if given is None:
        return False
    try:
        sent = given.encode("latin-1")
    except UnicodeEncodeError:  # not from an HTTP header; never equal
        return False
    return hmac.compare_digest(sent, expected)


def create_app(
    settings: Settings,
    api_key: str | None = None,
    reload_seconds: float = 5.0,
    max_body_bytes: int | None = None,
) -> FastAPI:
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise RuntimeError(f"set {API_KEY_ENV} in the environment: the API refuses to run open")
    expected = api_key.encode("utf-8")
    max_body = max_body_bytes or _env_int(MAX_BODY_ENV, MAX_BODY_BYTES)
    champions = Champions(settings)
    champions.refresh_if_changed()
    scoring = ScoringThreads(SCORING_THREADS)
    stop = threading.Event()

    def follow_registry() -> None:
        while not stop.wait(reload_seconds):
            try:
                champions.refresh_if_changed()
            except Exception:  # noqa: BLE001 - keep serving the loaded models
                log.exception("reloading champions failed; keeping the loaded models")

    @asynccontextmanager
    async def lifespan(_app):
        thread = threading.Thread(target=follow_registry, name="champion-reload", daemon=True)
        thread.start()
        yield
        stop.set()
        scoring.close()

    app = FastAPI(
        title="CMS pipeline scoring API",
        description="Scores with the champion H2O MOJO of each use case.",
        version="1",
        lifespan=lifespan,
    )
    app.state.champions = champions
    app.state.scoring = scoring
    app.add_middleware(BodyLimit, max_bytes=max_body)
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def require_key(key: str | None) -> None:
        if not key_matches(key, expected):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    # async: a sync dependency would hop to a threadpool
    async def check_key(key: str | None = Depends(header)) -> None:
        require_key(key)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": field_errors(exc.errors())})

    # async (no threadpool): liveness must answer while the threadpool is busy scoring
    @app.get("/healthz")
    @app.get("/livez")
    async def healthz() -> dict:
        models = champions.models
        return {"status": "ok", "models": {k: s.model.version for k, s in models.items()}}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        states, served = champions.readiness, champions.models
        kinds = {s.status for s in states.values()}
        overall = "ok" if kinds == {"ok"} else "unavailable" if not served else "degraded"
        # ready while anything is served: taking the API out of rotation for one bad use
        # case would stop the good ones too
        return JSONResponse(
            status_code=200 if served else 503,
            content={"status": overall, "use_cases": {k: asdict(v) for k, v in states.items()}},
        )

    @app.get("/v1/models", dependencies=[Depends(check_key)])
    async def models() -> list[ModelInfo]:
        return [info(s) for s in champions.models.values()]

    @app.get("/v1/models/{use_case}", dependencies=[Depends(check_key)])
    async def model(use_case: str) -> dict:
        served = champions.get(use_case)
        return {**info(served).model_dump(), "request_schema": served.request.model_json_schema()}

    # The hot path. The key is checked inline (FastAPI's dependency solving costs more
    # than the scoring) and the body is validated by the served model's own request
    # model: OpenAPI gets both by hand.
    @app.post(
        "/v1/models/{use_case}/predict",
        response_model=PredictResponse,
        openapi_extra={"requestBody": PREDICT_BODY, "security": [{header.scheme_name: []}]},
    )
    async def predict(use_case: str, request: Request) -> Response:
        require_key(request.headers.get("x-api-key"))
        body = await request.body()  # 413 here when it streams past the limit
        served = champions.get(use_case)  # one model for the whole request
        if len(body) <= INLINE_BODY_BYTES:
            return score_body(served, use_case, body)
        return await scoring.run(score_body, served, use_case, body)

    @app.post(
        "/v1/models/{use_case}/explain",
        response_model=ExplainResponse,
        dependencies=[Depends(check_key)],  # solved before `top`: 401 comes before 422
        openapi_extra={"requestBody": PREDICT_BODY},
        responses={501: {"description": "the served model's MOJO has no contributions"}},
    )
    async def explain(
        use_case: str,
        request: Request,
        top: int = Query(
            TOP_CONTRIBUTIONS, ge=1, description="contributions per record (at most the features)"
        ),
    ) -> Response:
        """Score records and give each one's `top` SHAP contributions by absolute value:
        with the bias and the sum of the others they add up to the score in `space`
        (`log-odds`: the logit of the score, GBM and XGBoost; `probability`: DRF)."""
        body = await request.body()
        served = champions.get(use_case)
        if not served.model.scorer.has_contributions:
            raise HTTPException(
                501,
                f"'{use_case}' version {served.model.version} is a "
                f"{served.model.scorer.algorithm} model, whose MOJO has no SHAP contributions "
                "(only GBM, DRF and XGBoost have them). Its model card (`cms-pipeline models "
                "card`) shows the contributions of the best tree model; to explain over REST, "
                "promote a tree model or exclude the other algorithms in the use case's YAML.",
            )
        n_features = len(served.model.features)
        if top > n_features:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "top"),
                        "msg": f"the model has {n_features} features: top must be 1 to {n_features}",
                        "type": "value_error",
                        "input": top,
                    }
                ]
            )
        if len(body) <= INLINE_BODY_BYTES:
            return explain_body(served, use_case, body, top)
        return await scoring.run(explain_body, served, use_case, body, top)

    default_openapi = app.openapi

    def openapi() -> dict:
        return with_record_schemas(default_openapi(), champions.models)

    app.openapi = openapi
    return app


def _parse(served: Served, body: bytes) -> BaseModel:
    try:
        return served.request.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc


def score_body(served: Served, use_case: str, body: bytes) -> Response:
    """Validate, score and encode one request (runs in a worker thread for big bodies)."""
    parsed = _parse(served, body)
    scorer = served.model.scorer
    columns = records_to_columns(parsed.records, served.model.features)
    scores = scorer.score_columns(columns, len(parsed.records))
    labels = scorer.labels(scores)
    result = {
        "use_case": use_case,
        "model_version": served.model.version,
        "threshold": scorer.threshold,
        "predictions": [
            {"score": float(s), "label": int(v)} for s, v in zip(scores, labels, strict=True)
        ],
    }
    return Response(json.dumps(result), media_type="application/json")


def explain_body(served: Served, use_case: str, body: bytes, top: int) -> Response:
    """Validate, score and explain one request: per record its score and the `top`
    contributions by absolute value (the same encoded rows as predict)."""
    parsed = _parse(served, body)
    scorer, features = served.model.scorer, served.model.features
    columns = records_to_columns(parsed.records, features)
    x = scorer.encode(columns, len(parsed.records))
    scores = scorer.score_matrix(x)
    labels = scorer.labels(scores)
    names, contribs = scorer.contributions(x)
    result = {
        "use_case": use_case,
        "model_version": served.model.version,
        "algorithm": scorer.algorithm,
        "space": scorer.contribution_space,
        "threshold": scorer.threshold,
        "explanations": [
            _explanation(names, row, score, label, columns, i, top)
            for i, (row, score, label) in enumerate(zip(contribs, scores, labels, strict=True))
        ],
    }
    return Response(json.dumps(result), media_type="application/json")


def _explanation(names, row, score, label, columns, i, top) -> dict:
    values, bias = row[:-1], row[-1]  # the MOJO puts BiasTerm last
    order = np.argsort(-np.abs(values), kind="stable")
    listed = [
        {
            "feature": names[j],
            # XGBoost names one-hot columns ("state_code.33"), which are no feature
            "value": columns[names[j]][i] if names[j] in columns else None,
            "contribution": float(values[j]),
        }
        for j in order[:top]
    ]
    return {
        "score": float(score),
        "label": int(label),
        "bias": float(bias),
        "contributions": listed,
        "others": float(values[order[top:]].sum()),
    }


def with_record_schemas(spec: dict, models: dict[str, Served]) -> dict:
    """The OpenAPI document with each served model's request schema (typed fields: its
    features' types) as a component, and predict/explain bodies as one of them."""
    spec = json.loads(json.dumps(spec))  # FastAPI caches the base document: never change it
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    refs = []
    for served in models.values():
        doc = served.request.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(doc.pop("$defs", {}))
        schemas[doc["title"]] = doc
        refs.append({"$ref": f"#/components/schemas/{doc['title']}"})
    if refs:
        for path in ("/v1/models/{use_case}/predict", "/v1/models/{use_case}/explain"):
            content = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            content["schema"] = {"oneOf": refs}
    return spec


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        parsed = int(value)
    except ValueError:
        parsed = 0
    if parsed <= 0:
        raise RuntimeError(f"{name}={value!r}: expected a positive number of bytes")
    return parsed


def info(served: Served) -> ModelInfo:
    m = served.model
    return ModelInfo(
        use_case=m.use_case,
        model_version=m.version,
        metrics=m.metrics,
        features=[f.model_dump() for f in m.features],
    )


def field_errors(errors) -> list[dict[str, str]]:
    """One entry per bad field: where (dotted path), what is wrong, the value given."""
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        item = {"field": ".".join(loc) or "body", "message": e.get("msg", "invalid")}
        if "input" in e and e.get("type") != "missing":
            item["input"] = repr(e["input"])[:100]
        out.append(item)
    return out
