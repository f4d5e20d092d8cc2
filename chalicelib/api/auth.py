"""API-key authentication for the Chalice authorizer.

In: the token from the `x-api-key` header and the configured `client id -> key` pairs. Out: the
client id, or `Unauthorized`, whose message API Gateway maps to HTTP 401. Keys are compared in
constant time against every configured key, so timing reveals neither a key nor a client;
neither keys nor tokens are ever logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from chalicelib.errors import PssError

API_KEY_HEADER = "x-api-key"


class Unauthorized(PssError):
    """No or wrong API key. The message must stay exactly `Unauthorized` for API Gateway."""

    code = "unauthorized"
    status = 401

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def authenticate(token: str | None, keys: Mapping[str, str]) -> str:
    """Return the client id owning `token`; raise `Unauthorized` otherwise."""
    presented = (token or "").encode()
    found: str | None = None
    for client, key in keys.items():
        # No early exit: every key is compared whatever matched before.
        if hmac.compare_digest(presented, key.encode()) and presented:
            found = client
    if found is None:
        raise Unauthorized()
    return found
