"""A real `fetch` for missing prefetch: GET from the EHR's FHIR server with its bearer token.

In: the call's `fhirServer`, the `fhirAuthorization.access_token`, a relative URL
(`Patient/123`, `Condition?patient=123`). Out: the parsed JSON object, or None on any failure
(unreachable, timeout, non-2xx, not JSON, too large, a redirect): missing data is reported on
the cards, never raised, because a slow or broken EHR endpoint must not break the hook.

Redirects are refused: urllib would forward the `Authorization` header to wherever the
redirect points. `allowed_servers` (URL prefixes) limits which servers we call at all, since
`fhirServer` comes from the caller and would otherwise let it aim us at internal addresses.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from chalicelib.limits import load_json

DEFAULT_TIMEOUT = 2.0  # two fetches stay well inside CRD's 5 s budget
MAX_BYTES = 5 * 1024 * 1024

Fetch = Callable[[str, str, str], dict[str, Any] | None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn every redirect into an HTTPError instead of following it with our token."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(
    fhir_server: str,
    bearer_token: str,
    relative_url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    allowed_servers: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """GET `relative_url` from `fhir_server` with the bearer token; None on any failure."""
    base = fhir_server.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        return None
    if allowed_servers is not None and not any(
        (base + "/").startswith(prefix.rstrip("/") + "/") for prefix in allowed_servers
    ):
        return None
    request = urllib.request.Request(
        f"{base}/{relative_url.lstrip('/')}",
        headers={
            "Authorization": f"Bearer {bearer_token}",
            "Accept": "application/fhir+json, application/json",
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                return None
            raw = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None  # HTTPError is a URLError; timeouts are OSErrors
    if len(raw) > MAX_BYTES:
        return None
    try:
        parsed = load_json(raw)  # bounded: a FHIR server is input too
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def make_fetch(
    *, timeout: float = DEFAULT_TIMEOUT, allowed_servers: Sequence[str] | None = None
) -> Fetch:
    """Return a `fetch(fhir_server, token, relative_url)` bound to a timeout and allow-list."""

    def bound(fhir_server: str, bearer_token: str, relative_url: str) -> dict[str, Any] | None:
        return fetch(
            fhir_server,
            bearer_token,
            relative_url,
            timeout=timeout,
            allowed_servers=allowed_servers,
        )

    return bound


__all__ = ["DEFAULT_TIMEOUT", "MAX_BYTES", "fetch", "make_fetch"]
