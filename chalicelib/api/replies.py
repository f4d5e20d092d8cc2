"""What a use case hands back to the HTTP edge: a reply, or an `ApiError` with the error body.

In: status, body (a pydantic model), headers. Out: the same, plus `error_body()` giving the
design's `{"error": {"code", "message", "details"}}` for every 4xx/5xx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from chalicelib.errors import Problem


@dataclass(frozen=True)
class Reply:
    """A successful answer: status, response model, extra headers, decision id for the log."""

    status: int
    body: BaseModel
    headers: Mapping[str, str] = field(default_factory=dict)
    decision_id: str | None = None


class ApiError(Exception):
    """An error answer: HTTP status, stable `code`, message, per-field details, headers."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[Problem] = (), headers: Mapping[str, str] | None = None,
                 decision_id: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = tuple(details)
        self.headers = dict(headers or {})
        self.decision_id = decision_id
        super().__init__(f"{status} {code}: {message}")

    def error_body(self) -> dict[str, Any]:
        """The error JSON of design section 4."""
        return {"error": {"code": self.code, "message": self.message,
                          "details": [d.to_dict() for d in self.details]}}


def bad_request(details: Sequence[Problem], message: str = "the request is invalid") -> ApiError:
    """A 400 listing every bad field."""
    return ApiError(400, "invalid_request", message, details)


def not_found(what: str) -> ApiError:
    """A 404 for an unknown id."""
    return ApiError(404, "not_found", what)


def unavailable(message: str, retry_after: int, code: str = "store_unavailable") -> ApiError:
    """A 503 with `Retry-After` (seconds)."""
    return ApiError(503, code, message, headers={"Retry-After": str(retry_after)})
