"""What a use case hands back to the HTTP edge: a reply, or an `ApiError` with the error body.

In: status, body (a pydantic model), headers. Out: the same; errors are `PssError`s (the
engine's own, or `ApiError` for the answers only the API gives), whose `body()` is the
design's `{"error": {"code", "message", "details"}}` for every 4xx/5xx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from chalicelib.errors import Problem, PssError, RequestError


@dataclass(frozen=True)
class Reply:
    """A successful answer: status, response model, extra headers, decision id for the log."""

    status: int
    body: BaseModel
    headers: Mapping[str, str] = field(default_factory=dict)
    decision_id: str | None = None


class ApiError(PssError):
    """An error answer the engine's own errors do not cover: any status and `code`, plus
    response headers (`Retry-After`) and the decision id the access log names."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[Problem] = (), headers: Mapping[str, str] | None = None,
                 decision_id: str | None = None) -> None:
        super().__init__(message, details)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self.decision_id = decision_id


def bad_request(details: Sequence[Problem],
                message: str = "the request is invalid") -> RequestError:
    """A 400 listing every bad field."""
    return RequestError(details, message)


def not_found(what: str) -> ApiError:
    """A 404 for an unknown id."""
    return ApiError(404, "not_found", what)


def unavailable(message: str, retry_after: int, code: str = "store_unavailable") -> ApiError:
    """A 503 with `Retry-After` (seconds)."""
    return ApiError(503, code, message, headers={"Retry-After": str(retry_after)})
