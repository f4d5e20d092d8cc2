"""The authorizer's edge: API Gateway authorizer events in, `auth.Credentials` out.

Chalice's `ChaliceAuthorizer` understands only TOKEN events (one header). Deployed, ours is a
REQUEST authorizer (set in the merge template under `.chalice/`), so it is given every header:
`x-api-key` in the dev stage as well as `Authorization`, and every copy of each.
`reads_every_header` turns a Chalice authorizer into one that accepts both event types.
"""

from __future__ import annotations

from typing import Any

from chalice.app import AuthRequest, ChaliceAuthorizer

from chalicelib.api.auth import Credentials, credentials_from_event


class CredentialsRequest(AuthRequest):
    """Chalice's `AuthRequest` plus the credentials read from the whole event."""

    def __init__(self, event: dict[str, Any]) -> None:
        token = event.get("authorizationToken")
        super().__init__(str(event.get("type", "")), str(token) if token else "",
                         str(event.get("methodArn", "")))
        self.credentials: Credentials = credentials_from_event(event)


class _EveryHeaderAuthorizer(ChaliceAuthorizer):
    def _transform_event(self, event: dict[str, Any]) -> AuthRequest:
        return CredentialsRequest(event)


def reads_every_header(authorizer: ChaliceAuthorizer) -> ChaliceAuthorizer:
    """Make a registered Chalice authorizer accept REQUEST events (and still TOKEN ones)."""
    authorizer.__class__ = _EveryHeaderAuthorizer
    return authorizer


def credentials_of(request: AuthRequest) -> Credentials:
    """The credentials of an authorizer call."""
    if isinstance(request, CredentialsRequest):
        return request.credentials
    return credentials_from_event({"type": "TOKEN", "authorizationToken": request.token,
                                   "methodArn": request.method_arn})
