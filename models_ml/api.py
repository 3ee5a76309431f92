"""REST scoring: FastAPI over champion MOJOs held in this process's JVM.

    GET  /healthz (or /livez)              liveness and served versions (no key)
    GET  /readyz                           per use case: ok / degraded / unavailable (no key)
    GET  /v1/models                        served models with versions and metrics
    GET  /v1/models/{use_case}             one served model, with its record schema
    POST /v1/models/{use_case}/predict     {"records": [{feature: value, ...}, ...]}
    POST /v1/models/{use_case}/explain?top=5  same body: scores and top SHAP contributions

This module holds the app and its routes. What a request must pass (key, body size,
record validation) is in models_ml.api_guards; what is served, and how it follows the
registry's champions, in models_ml.api_champions; scoring and explaining a request, and
the threads large ones run on, in models_ml.api_scoring.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from cms_pipeline.config import Settings
from models_ml.api_champions import Champions, Served
from models_ml.api_guards import BodyLimit, field_errors, key_matches, max_body_from_env
from models_ml.api_scoring import (
    INLINE_BODY_BYTES,
    SCORING_THREADS,
    TOP_CONTRIBUTIONS,
    ExplainResponse,
    PredictResponse,
    ScoringThreads,
    explain_body,
    score_body,
)

API_KEY_ENV = "CMS_PIPELINE_API_KEY"
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


class ModelInfo(BaseModel):
    use_case: str
    model_version: str
    metrics: dict[str, float]
    features: list[dict[str, Any]]


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
    max_body = max_body_bytes or max_body_from_env()
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


def info(served: Served) -> ModelInfo:
    model = served.model
    return ModelInfo(
        use_case=model.use_case,
        model_version=model.version,
        metrics=model.metrics,
        features=[feature.model_dump() for feature in model.features],
    )
