"""Scoring and explaining one REST request, and the threads large requests run on.

Latency and liveness: a small body (under `INLINE_BODY_BYTES`: microseconds of work) is
parsed and scored on the event loop's thread; a larger one on one of a few long-lived
scoring threads, so health checks answer while 10,000 records are scored. JPype attaches
a thread to the JVM on its first Java call and never detaches it by itself: fixed
threads are attached once, where a pool that starts and drops threads (anyio's) would
leave an attachment behind for each.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from fastapi.responses import Response
from pydantic import BaseModel

from models_ml.api_champions import Served
from models_ml.api_guards import parse_records
from models_ml.schema import records_to_columns

INLINE_BODY_BYTES = 32 * 1024  # smaller bodies are scored on the event loop (no thread hop)
SCORING_THREADS = 2  # large requests scored at once; more wait their turn
TOP_CONTRIBUTIONS = 5


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


def score_body(served: Served, use_case: str, body: bytes) -> Response:
    """Validate, score and encode one request (runs in a worker thread for big bodies)."""
    parsed = parse_records(served.request, body)
    scorer = served.model.scorer
    columns = records_to_columns(parsed.records, served.model.features)
    scores = scorer.score_columns(columns, len(parsed.records))
    labels = scorer.labels(scores)
    result = {
        "use_case": use_case,
        "model_version": served.model.version,
        "threshold": scorer.threshold,
        "predictions": [
            {"score": float(score), "label": int(label)}
            for score, label in zip(scores, labels, strict=True)
        ],
    }
    return Response(json.dumps(result), media_type="application/json")


def explain_body(served: Served, use_case: str, body: bytes, top: int) -> Response:
    """Validate, score and explain one request: per record its score and the `top`
    contributions by absolute value (the same encoded rows as predict)."""
    parsed = parse_records(served.request, body)
    scorer, features = served.model.scorer, served.model.features
    columns = records_to_columns(parsed.records, features)
    encoded = scorer.encode(columns, len(parsed.records))
    scores = scorer.score_matrix(encoded)
    labels = scorer.labels(scores)
    names, contributions = scorer.contributions(encoded)
    result = {
        "use_case": use_case,
        "model_version": served.model.version,
        "algorithm": scorer.algorithm,
        "space": scorer.contribution_space,
        "threshold": scorer.threshold,
        "explanations": [
            _explanation(names, row, score, label, columns, index, top)
            for index, (row, score, label) in enumerate(
                zip(contributions, scores, labels, strict=True)
            )
        ],
    }
    return Response(json.dumps(result), media_type="application/json")


def _explanation(names, row, score, label, columns, index, top) -> dict:
    values, bias = row[:-1], row[-1]  # the MOJO puts BiasTerm last
    order = np.argsort(-np.abs(values), kind="stable")
    listed = [
        {
            "feature": names[position],
            # XGBoost names one-hot columns ("state_code.33"), which are no feature
            "value": columns[names[position]][index] if names[position] in columns else None,
            "contribution": float(values[position]),
        }
        for position in order[:top]
    ]
    return {
        "score": float(score),
        "label": int(label),
        "bias": float(bias),
        "contributions": listed,
        "others": float(values[order[top:]].sum()),
    }
