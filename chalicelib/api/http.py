"""The HTTP edge: a Chalice request in, a use case called, a Chalice response out.

In: the current Chalice request, a route label and a use case `HttpRequest -> Reply`. Out: a
JSON `Response` (the reply's model, or the error body of design section 4) and one access-log
line. Size limits, JSON parsing and query flags are checked here, before any use case runs.

INVARIANT: every answer has a JSON body and an `X-Request-Id` header. An unexpected exception
is logged as one structured line (its type, the traceback's frames and the request id; never
its message, which could quote the request) and answered 500 with the error body naming the
request id, so a caller's report can be matched to the log line.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Request, Response

from chalicelib.api.auth import AUDIT
from chalicelib.api.logs import AccessLog
from chalicelib.api.replies import ApiError, Reply, bad_request
from chalicelib.errors import Problem, PssError
from chalicelib.limits import LimitError, load_json

MAX_BODY_BYTES = 256 * 1024
REQUEST_ID_HEADER = "X-Request-Id"


def json_body(body: bytes) -> Any:
    """`body` as JSON data within the limits of `chalicelib.limits`; 400 (field `body`) when
    empty, not UTF-8, not JSON or over a limit."""
    if not body.strip():
        raise bad_request([Problem("body", "is required: a JSON object")])
    try:
        return load_json(body)
    except LimitError as exc:
        where = f" (at character {exc.position})" if exc.position is not None else ""
        raise bad_request([Problem(exc.field or "body", f"{exc}{where}")]) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request([Problem("body", f"is not valid JSON: {_short(exc)}")]) from None


@dataclass(frozen=True)
class HttpRequest:
    """What a use case may read from an HTTP request; headers are lower-cased."""

    method: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    client_id: str = "anonymous"
    request_id: str | None = None
    scopes: frozenset[str] = frozenset()  # granted by the authorizer

    @property
    def audit(self) -> bool:
        """True when the caller may read every client's decisions (`audit:read`)."""
        return AUDIT in self.scopes

    def json(self) -> Any:
        """The body as JSON data; 400 (field `body`) as `json_body` says."""
        return json_body(self.body)

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def flag(self, name: str) -> bool:
        """A boolean query parameter: absent or `false` is False, `true` is True, else 400."""
        value = self.query.get(name)
        if value is None or value == "false":
            return False
        if value == "true":
            return True
        raise bad_request([Problem(name, "must be `true` or `false`")])


def _short(exc: Exception) -> str:
    # json's messages hold only positions, never the input text; keep them short anyway.
    return str(exc).split("\n", 1)[0][:200]


def from_chalice(request: Request, new_request_id: Callable[[], str]) -> HttpRequest:
    """Copy what the use cases need out of Chalice's request; a request id is made with
    `new_request_id` when API Gateway gave none (`chalice local`, `pss serve`)."""
    context: dict[str, Any] = request.context or {}
    authorizer = context.get("authorizer") or {}
    raw = request.raw_body or b""
    return HttpRequest(
        method=request.method,
        body=raw if isinstance(raw, bytes) else raw.encode(),
        headers={k.lower(): v for k, v in (request.headers or {}).items()},
        query=dict(request.query_params or {}),
        params=dict(request.uri_params or {}),
        client_id=str(authorizer.get("client_id") or authorizer.get("principalId")
                      or "anonymous"),
        request_id=str(context.get("requestId") or new_request_id()),
        scopes=frozenset(str(authorizer.get("scopes") or "").split()),
    )


def _random_request_id() -> str:
    return uuid.uuid4().hex


def requires(scopes: frozenset[str], use_case: Callable[[HttpRequest], Reply]
             ) -> Callable[[HttpRequest], Reply]:
    """`use_case`, answered 403 `insufficient_scope` unless the caller holds one of `scopes`:
    the body names the scope needed and the scopes held (RFC 6750 section 3.1's error, also
    in `WWW-Authenticate`), so the integrator knows what to ask their token for."""
    needed = " or ".join(f"`{scope}`" for scope in sorted(scopes))

    def guarded(request: HttpRequest) -> Reply:
        if not scopes & request.scopes:
            held = ", ".join(f"`{scope}`" for scope in sorted(request.scopes)) or "no scope"
            raise ApiError(403, "insufficient_scope", f"this route needs the scope {needed}; "
                           f"these credentials hold {held}",
                           [Problem("scope", f"needs {needed}")],
                           headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
        return use_case(request)

    return guarded


@dataclass(frozen=True)
class Endpoint:
    """Runs use cases for routes, turning replies and errors into responses and log lines."""

    log: AccessLog
    timer: Callable[[], float] = time.perf_counter
    new_request_id: Callable[[], str] = _random_request_id

    def __call__(self, route: str, request: Request,
                 use_case: Callable[[HttpRequest], Reply]) -> Response:
        """Answer `request` with `use_case`, logging one line."""
        started = self.timer()
        http = from_chalice(request, self.new_request_id)
        status, body, headers, decision_id, code = self._run(http, use_case, route)
        self.log.request(route=route, method=http.method, status=status,
                         latency_ms=(self.timer() - started) * 1000, decision_id=decision_id,
                         client=http.client_id if http.client_id != "anonymous" else None,
                         error_code=code, request_id=http.request_id)
        return Response(body=json.dumps(body, separators=(",", ":")), status_code=status,
                        headers={"Content-Type": "application/json",
                                 REQUEST_ID_HEADER: http.request_id or "", **headers})

    def _run(self, http: HttpRequest, use_case: Callable[[HttpRequest], Reply], route: str
             ) -> tuple[int, dict[str, Any], Mapping[str, str], str | None, str | None]:
        try:
            if len(http.body) > MAX_BODY_BYTES:
                raise ApiError(413, "payload_too_large",
                               f"the body is over {MAX_BODY_BYTES // 1024} KiB",
                               [Problem("body", f"must be at most {MAX_BODY_BYTES} bytes")])
            reply = use_case(http)
            body = reply.body.model_dump(mode="json")
            return reply.status, body, reply.headers, reply.decision_id, None
        except ApiError as exc:
            return exc.status, exc.body(), exc.headers, exc.decision_id, exc.code
        except PssError as exc:  # the engine's own errors carry their status and details
            return exc.status, exc.body(), {}, None, exc.code
        except Exception as exc:
            self.log.unexpected(route=route, method=http.method, request_id=http.request_id,
                                error=exc)
            internal = ApiError(500, "internal_error",
                                f"unexpected {type(exc).__name__}; quote request id "
                                f"{http.request_id} when reporting it")
            return 500, internal.body(), {}, None, internal.code


def method_not_allowed(allowed: str) -> Callable[[HttpRequest], Reply]:
    """A use case answering 405 with the `Allow` header."""

    def answer(_: HttpRequest) -> Reply:
        raise ApiError(405, "method_not_allowed", f"this route allows {allowed}",
                       headers={"Allow": allowed})

    return answer
