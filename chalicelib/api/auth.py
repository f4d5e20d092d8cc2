"""Who may call: the authorizer's decision, free of any web framework (design section 4).

In: `Credentials` (the route asked for and the `Authorization` / `x-api-key` headers, every
copy of each) plus the trust configuration. Out: the calling `Principal` (client id, scopes), or
`Unauthorized`, whose message API Gateway maps to HTTP 401.

* CDS Hooks routes: `Authorization: Bearer <JWT>` signed by a configured EHR (CDS Hooks 2.0),
  `aud` = public base URL + path, `jti` spent once; in the dev stage `x-api-key` as well.
* Every other route: in prod an OAuth 2.0 bearer JWT of a configured issuer; in dev an
  `x-api-key` (and bearer JWTs too, when issuers are configured).

A header sent twice is refused rather than guessed at. Keys are compared in constant time
against every configured key; neither keys nor tokens are ever logged.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from chalicelib.api import jwt_check
from chalicelib.api.jwt_check import KeySet, TokenRejected
from chalicelib.decisions.store import DecisionStore
from chalicelib.errors import PssError
from chalicelib.settings import CLIENT_ID_PATTERN, JwtIssuer, Settings

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "Authorization"
CDS_PREFIX = "/cds-services/"

WRITE = "decisions:write"
READ = "decisions:read"
AUDIT = "audit:read"
SCOPES = (WRITE, READ, AUDIT)

IssuerT = TypeVar("IssuerT", bound=JwtIssuer)
CLIENT_ID = re.compile(CLIENT_ID_PATTERN)


class Unauthorized(PssError):
    """No or bad credentials. The message must stay exactly `Unauthorized` for API Gateway;
    `reason` is for tests only."""

    code = "unauthorized"
    status = 401

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__("Unauthorized")


@dataclass(frozen=True)
class Credentials:
    """What the authorizer sees of one request: the route and the credential headers."""

    method: str
    path: str  # the request path, e.g. `/cds-services/pss-order-sign`
    authorization: tuple[str, ...] = ()
    api_key: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the client that owns what it records, and its scopes."""

    client_id: str
    scopes: frozenset[str]
    via: str  # `api_key`, `cds_jwt` or `oauth`

    def context(self) -> dict[str, str]:
        """The authorizer context API Gateway hands to the route (strings only)."""
        return {"client_id": self.client_id, "scopes": " ".join(sorted(self.scopes)),
                "via": self.via}


def credentials_from_event(event: Mapping[str, Any]) -> Credentials:
    """Credentials from an API Gateway authorizer event (REQUEST or TOKEN type).

    REQUEST events carry `multiValueHeaders`, so a doubled header is seen as two values; a
    comma-joined value (what proxies make of duplicates) counts as several too, since neither
    a JWT nor one of our keys holds a comma. TOKEN events carry only `authorizationToken`.
    """
    arn = str(event.get("methodArn", ""))
    # arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path...>
    resource = arn.split(":", 5)[-1].split("/", 3)
    method = resource[2] if len(resource) > 2 else ""
    path = "/" + (resource[3] if len(resource) > 3 else "")
    if event.get("type") == "TOKEN":
        token = event.get("authorizationToken")
        return Credentials(method, path, _values([token] if token else []))
    # Header names are case-insensitive: `Authorization` and `authorization` sent together
    # are one header sent twice, so every spelling's values are kept, none overwritten.
    multi: dict[str, list[Any]] = {}
    for k, v in (event.get("multiValueHeaders") or {}).items():
        multi.setdefault(str(k).lower(), []).extend(v if isinstance(v, list) else [v])
    single: dict[str, list[Any]] = {}
    for k, v in (event.get("headers") or {}).items():
        single.setdefault(str(k).lower(), []).append(v)

    def values(name: str) -> tuple[str, ...]:
        return _values(multi.get(name, single.get(name, [])))

    return Credentials(method, path, values("authorization"), values(API_KEY_HEADER))


def _values(raw: Sequence[Any]) -> tuple[str, ...]:
    return tuple(part.strip() for value in raw if value is not None
                 for part in str(value).split(","))


@dataclass(frozen=True)
class Authenticator:
    """Decides who is calling, from the settings built once in `api.wiring`."""

    settings: Settings
    keys: KeySet
    store: Callable[[], DecisionStore]
    clock: Callable[[], dt.datetime]

    def authorize(self, credentials: Credentials) -> Principal:
        """The caller, or `Unauthorized`."""
        if len(credentials.authorization) > 1 or len(credentials.api_key) > 1:
            raise Unauthorized("a credential header was sent more than once")
        cds = credentials.path.startswith(CDS_PREFIX)
        if credentials.authorization:
            scheme, _, token = credentials.authorization[0].partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization is not `Bearer <token>`")
            token = token.strip()
            return self._cds_jwt(token, credentials.path) if cds else self._oauth(token)
        if credentials.api_key and self.settings.stage == "dev":
            return self._api_key(credentials.api_key[0])
        raise Unauthorized("no credentials this stage accepts")

    # --- the three kinds of caller ---------------------------------------------------------

    def _api_key(self, presented: str) -> Principal:
        client = key_owner(presented, self.settings.keys_by_client())
        if client is None:
            raise Unauthorized("unknown API key")
        return self._principal(client, frozenset({WRITE, READ}), "api_key")

    def _cds_jwt(self, token: str, path: str) -> Principal:
        clients = {c.iss: c for c in self.settings.cds_clients}
        url = self.settings.public_base_url + path
        client, claims = self._verify(token, clients, lambda _: url, jwt_check.CDS_HOOKS)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise Unauthorized("jti is not a string")
        # Single use across Lambda instances: a conditional put in the decisions table,
        # kept until the token could no longer be accepted anyway.
        key = f"jti#{claims['iss']}#{jti}"
        expires = int(claims["exp"]) + jwt_check.CLOCK_SKEW
        try:
            fresh = self.store().claim_once(key, expires, int(self.clock().timestamp()))
        except Exception:  # StoreUnavailable, or a store that could not even be built
            # Without the replay check the token cannot be accepted; the EHR retries. Any
            # failure here is a refusal (401), never an authorizer error (500).
            raise Unauthorized("the replay check is unavailable") from None
        if not fresh:
            raise Unauthorized("jti replayed")
        return self._principal(client.client_id, frozenset({WRITE}), "cds_jwt")

    def _oauth(self, token: str) -> Principal:
        issuers = {i.iss: i for i in self.settings.oauth_issuers}
        issuer, claims = self._verify(token, issuers, lambda i: i.audience, jwt_check.OAUTH)
        client = claims.get(issuer.client_id_claim)
        if not isinstance(client, str) or not CLIENT_ID.fullmatch(client):
            # Client ids go into store keys joined by `#` (idempotency, referral index): one
            # holding a `#` could land on another client's keys.
            raise Unauthorized(f"no usable `{issuer.client_id_claim}` claim")
        if issuer.clients and client not in issuer.clients:
            raise Unauthorized("the client id is not one this issuer may speak for")
        if any(c.client_id == client for c in self.settings.cds_clients):
            # That id owns an EHR's decisions and is bound to the EHR's own `iss`: an OAuth
            # token naming it would read and re-decide them.
            raise Unauthorized("the client id belongs to a CDS client")
        # A valid token for this audience holding none of our scopes is authenticated but not
        # authorised: each route answers 403 `insufficient_scope` (RFC 6750 section 3.1), not
        # 401, which would tell the integration engine to fetch another token of the same kind.
        granted = jwt_check.scopes_of(claims) & frozenset(SCOPES)
        return self._principal(client, granted, "oauth")

    def _verify(self, token: str, issuers: Mapping[str, IssuerT],
                audience: Callable[[IssuerT], str],
                profile: jwt_check.Profile) -> tuple[IssuerT, dict[str, Any]]:
        try:
            return jwt_check.verify(token, issuers=issuers, audience=audience, keys=self.keys,
                                    now=self.clock(), profile=profile)
        except TokenRejected as exc:
            raise Unauthorized(exc.reason) from None

    def _principal(self, client: str, scopes: frozenset[str], via: str) -> Principal:
        if client in self.settings.audit_clients:
            scopes = scopes | {AUDIT}
        return Principal(client, scopes, via)


def key_owner(presented: str, keys: Mapping[str, str]) -> str | None:
    """The client id owning API key `presented`, or None; constant time over every key."""
    token = presented.encode()
    found: str | None = None
    for client, key in keys.items():
        # No early exit: every key is compared whatever matched before.
        if hmac.compare_digest(token, key.encode()) and token:
            found = client
    return found
