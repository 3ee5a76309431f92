"""What the dashboard answers with, before HTTP: a response (status, body, type, content
security policy), a JSON one, and `NotFound`, the 404 whose JSON body names what is
missing and the command that makes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus

# The page's own files only: no CDN, no inline script (a card keeps its inline styles).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)
CARD_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class NotFound(Exception):
    """A path that is not served, or an export that does not exist (yet)."""

    def __init__(self, message: str, make: str | None = None):
        super().__init__(message)
        self.message = message
        self.make = make

    def body(self) -> dict:
        return {"error": self.message, **({"make": self.make} if self.make else {})}


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    policy: str = PAGE_POLICY


def json_response(body, status: int = HTTPStatus.OK) -> Response:
    return Response(status, json.dumps(body, indent=1, default=str).encode())
