"""What a REST request must pass before it is scored: the API key, the body size, and
the records' validation against the served model's request model.

Requests need the header X-API-Key equal to $CMS_PIPELINE_API_KEY (401 otherwise, for
any bytes a client sends). A body over $CMS_PIPELINE_API_MAX_BODY_BYTES gets 413 before
it is read whole. Records are checked against a pydantic model derived from the model's
features (unknown fields, NaN and infinities rejected): 422 with one message per bad
field.
"""

from __future__ import annotations

import hmac
import os

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

MAX_BODY_ENV = "CMS_PIPELINE_API_MAX_BODY_BYTES"
MAX_BODY_BYTES = 16 * 1024 * 1024  # 10,000 records of ~20 features fit with room to spare
MAX_RECORDS = 10_000


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


def max_body_from_env() -> int:
    """$CMS_PIPELINE_API_MAX_BODY_BYTES, or MAX_BODY_BYTES when unset or empty."""
    value = os.environ.get(MAX_BODY_ENV)
    if value is None or value == "":
        return MAX_BODY_BYTES
    try:
        parsed = int(value)
    except ValueError:
        parsed = 0
    if parsed <= 0:
        raise RuntimeError(f"{MAX_BODY_ENV}={value!r}: expected a positive number of bytes")
    return parsed


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


def parse_records(request_model: type[BaseModel], body: bytes) -> BaseModel:
    """The body validated by a served model's request model; RequestValidationError
    (422, located in the body) when it does not fit."""
    try:
        return request_model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc


def field_errors(errors) -> list[dict[str, str]]:
    """One entry per bad field: where (dotted path), what is wrong, the value given."""
    out = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        item = {"field": ".".join(loc) or "body", "message": error.get("msg", "invalid")}
        if "input" in error and error.get("type") != "missing":
            item["input"] = repr(error["input"])[:100]
        out.append(item)
    return out
