"""REST scoring: FastAPI over champion MOJOs held in this process's JVM.

    GET  /healthz                          liveness and loaded versions (no key)
    GET  /v1/models                        champions with versions and metrics
    GET  /v1/models/{use_case}             one champion, with its record schema
    POST /v1/models/{use_case}/predict     {"records": [{feature: value, ...}, ...]}

Requests need the header X-API-Key equal to $CMS_PIPELINE_API_KEY. Records are checked
against a pydantic model derived from the champion's features (unknown fields rejected,
one message per bad field). A background thread follows the registry: when the
champion changes, the new MOJO is loaded and swapped in.

Latency: a request touches only in-memory state on the event loop's thread (no
threadpool hop, no registry query), parses its JSON with pydantic-core in one step and
writes its response without a second validation. The background thread asks the
registry only when its SQLite file changed or `FULL_CHECK_SECONDS` passed (a tracking
server: every time).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError

from cms_pipeline.config import Settings
from models_ml import registry
from models_ml.schema import records_to_columns, request_model
from models_ml.serving import LoadedModel, load_version
from models_ml.usecase import list_use_cases

API_KEY_ENV = "CMS_PIPELINE_API_KEY"
MAX_RECORDS = 10_000
FULL_CHECK_SECONDS = 60.0  # ask the registry at least this often, changed file or not
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
log = logging.getLogger("models_ml.api")


@dataclass
class Served:
    model: LoadedModel
    request: type[BaseModel]


class Prediction(BaseModel):
    score: float
    label: int


class PredictResponse(BaseModel):
    use_case: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    use_case: str
    model_version: str
    metrics: dict[str, float]
    features: list[dict[str, Any]]


class Champions:
    """The loaded champion of each use case; swapped atomically on reload."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.models: dict[str, Served] = {}
        self._lock = threading.Lock()
        self._store = registry.local_store(settings)
        self._seen: object = None
        self._checked_at = float("-inf")

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
            champ = registry.champion(self.settings, name)
            if champ is None:
                continue
            current = self.models.get(name)
            if current is not None and current.model.version == str(champ.version):
                continue
            with self._lock:
                loaded = load_version(self.settings, name, str(champ.version))
                self.models[name] = Served(
                    loaded, request_model(name, loaded.features, MAX_RECORDS)
                )
            log.info("loaded %s version %s", name, champ.version)

    def get(self, use_case: str) -> Served:
        served = self.models.get(use_case)
        if served is None:
            raise HTTPException(
                404, f"no champion model for '{use_case}' (served: {sorted(self.models)})"
            )
        return served


def create_app(
    settings: Settings, api_key: str | None = None, reload_seconds: float = 5.0
) -> FastAPI:
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise RuntimeError(f"set {API_KEY_ENV} in the environment: the API refuses to run open")
    champions = Champions(settings)
    champions.refresh_if_changed()
    stop = threading.Event()

    def follow_registry() -> None:
        while not stop.wait(reload_seconds):
            try:
                champions.refresh_if_changed()
            except Exception:  # noqa: BLE001 - keep serving the loaded models
                log.exception("reloading champions failed; keeping the loaded models")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        thread = threading.Thread(target=follow_registry, name="champion-reload", daemon=True)
        thread.start()
        yield
        stop.set()

    app = FastAPI(
        title="CMS pipeline scoring API",
        description="Scores with the champion H2O MOJO of each use case.",
        version="1",
        lifespan=lifespan,
    )
    app.state.champions = champions
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def require_key(key: str | None) -> None:
        if key is None or not secrets.compare_digest(key, api_key):
            raise HTTPException(401, "missing or wrong X-API-Key header")

    # async: a sync dependency would hop to a threadpool
    async def check_key(key: str | None = Depends(header)) -> None:
        require_key(key)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse(status_code=422, content={"detail": field_errors(exc.errors())})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": {k: s.model.version for k, s in champions.models.items()}}

    @app.get("/v1/models", dependencies=[Depends(check_key)])
    def models() -> list[ModelInfo]:
        return [info(s) for s in champions.models.values()]

    @app.get("/v1/models/{use_case}", dependencies=[Depends(check_key)])
    def model(use_case: str) -> dict:
        served = champions.get(use_case)
        return {**info(served).model_dump(), "request_schema": served.request.model_json_schema()}

    # The hot path. async: scoring takes microseconds, a threadpool hop costs more. The
    # key is checked inline (FastAPI's dependency solving costs more than the scoring)
    # and the body is validated by the champion's own model: OpenAPI gets both by hand.
    @app.post(
        "/v1/models/{use_case}/predict",
        response_model=PredictResponse,
        openapi_extra={"requestBody": PREDICT_BODY, "security": [{header.scheme_name: []}]},
    )
    async def predict(use_case: str, request: Request) -> Response:
        require_key(request.headers.get("x-api-key"))
        served = champions.get(use_case)  # one model for the whole request
        try:
            parsed = served.request.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from exc
        scorer = served.model.scorer
        columns = records_to_columns(parsed.records, served.model.features)
        scores = scorer.score_columns(columns, len(parsed.records))
        labels = scorer.labels(scores)
        body = {
            "use_case": use_case,
            "model_version": served.model.version,
            "threshold": scorer.threshold,
            "predictions": [
                {"score": float(s), "label": int(v)} for s, v in zip(scores, labels, strict=True)
            ],
        }
        return Response(json.dumps(body), media_type="application/json")

    return app


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
