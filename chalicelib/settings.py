"""Settings of one running API, read once from the environment (design section 5a).

In: a mapping of environment variables. Out: a frozen `Settings`, or `SettingsError` naming
the variable that is wrong. Only `api.wiring` reads settings; nothing else touches `os.environ`.
Secrets (API keys, the pseudonym key) are kept out of `repr` so a logged `Settings` leaks none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.errors import PssError

STAGES = ("dev", "prod")

# Only for local/dev stages: a stable default so `chalice local` works without setup. Hashes
# made with it are not secret; prod refuses to start without a real key.
DEV_PSEUDONYM_KEY = "pss-dev-only-pseudonym-key"

_CHALICELIB = Path(__file__).resolve().parent


M = TypeVar("M", bound=BaseModel)

# What a client id may hold (CDS clients here, OAuth client ids in `api.auth`): store keys
# join client ids with `#`, so none may hold one.
CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

# The base URL `chalice local` and `pss serve` answer on by default (dev stage only).
DEV_PUBLIC_BASE_URL = "http://127.0.0.1:8000"


class SettingsError(PssError):
    """An environment variable is missing or malformed."""


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an absolute https URL")
    return value


class JwtIssuer(BaseModel):
    """Who may sign tokens we accept: the `iss` and its keys (inline JWKS or an https URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None

    _url = field_validator("jwks_url")(lambda v: None if v is None else _https_url(v))

    @field_validator("jwks")
    @classmethod
    def _keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not isinstance(value.get("keys"), list):
            raise ValueError("must be a JWKS: an object with a `keys` list")
        return value

    def model_post_init(self, _: Any) -> None:
        """Exactly one of `jwks` and `jwks_url` says where the keys are."""
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of `jwks` and `jwks_url`")


class CdsClient(JwtIssuer):
    """A trusted EHR (`PSS_CDS_CLIENTS`): its client id owns the decisions its calls record."""

    client_id: str = Field(min_length=1, pattern=CLIENT_ID_PATTERN)
    # Prefixes of the FHIR servers we may fetch prefetch from, with this EHR's token.
    fhir_servers: tuple[str, ...] = ()

    @field_validator("fhir_servers")
    @classmethod
    def _servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_https_url(v) for v in value)


class OAuthIssuer(JwtIssuer):
    """An OAuth 2.0 authorization server of the REST API (`PSS_OAUTH_ISSUERS`)."""

    audience: str = Field(min_length=1)
    # The claim naming the calling application (client-credentials tokens carry it).
    client_id_claim: str = "client_id"
    # The client ids this issuer may speak for; empty = any. Required when several issuers
    # are configured: client ids own decisions (and name auditors), so one issuer must not
    # be able to mint tokens for another's clients.
    clients: tuple[str, ...] = ()

    @field_validator("clients")
    @classmethod
    def _client_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not re.fullmatch(CLIENT_ID_PATTERN, c) for c in value):
            raise ValueError("each client id may hold only letters, digits and `.`, `_`, "
                             "`:`, `-` (at most 64)")
        return value


@dataclass(frozen=True)
class Settings:
    """What one deployment needs: stage, table, endpoint, keys, and where the pack lives."""

    stage: str = "dev"
    table_name: str = "pss-decisions-dev"
    region: str = "eu-west-2"
    dynamodb_endpoint: str | None = None
    # dev only (`pss serve`): record in this SQLite file instead of DynamoDB.
    local_store: Path | None = None
    policy_dir: Path = field(default_factory=lambda: default_policy_dir())
    # client id -> API key; a tuple of pairs keeps the dataclass hashable and immutable.
    api_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    pseudonym_key: bytes = field(default=DEV_PSEUDONYM_KEY.encode(), repr=False)
    # Card links and every JWT `aud` are built on this, never on the `Host` header.
    public_base_url: str = DEV_PUBLIC_BASE_URL
    cds_clients: tuple[CdsClient, ...] = ()
    audit_clients: frozenset[str] = frozenset()
    oauth_issuers: tuple[OAuthIssuer, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; raise `SettingsError` when one is bad."""
        stage = env.get("PSS_STAGE", "dev") or "dev"
        if stage not in STAGES:
            raise SettingsError(f"PSS_STAGE must be one of {', '.join(STAGES)}, not `{stage}`")
        pseudonym = env.get("PSS_PSEUDONYM_KEY", "")
        if not pseudonym:
            if stage == "prod":
                raise SettingsError("PSS_PSEUDONYM_KEY must be set in the prod stage")
            pseudonym = DEV_PSEUDONYM_KEY
        policy_dir = env.get("PSS_POLICY_DIR")
        local_store = env.get("PSS_LOCAL_STORE")
        if local_store and stage == "prod":
            raise SettingsError("PSS_LOCAL_STORE is for local stages only: prod records in "
                                "DynamoDB")
        api_keys = parse_api_keys(env.get("PSS_API_KEYS", ""))
        if api_keys and stage == "prod":
            raise SettingsError("PSS_API_KEYS is for the dev stage only; prod accepts OAuth "
                                "2.0 bearer tokens (PSS_OAUTH_ISSUERS)")
        cds_clients = _parse_list(env, "PSS_CDS_CLIENTS", CdsClient)
        return cls(
            stage=stage,
            table_name=env.get("PSS_DECISIONS_TABLE") or f"pss-decisions-{stage}",
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "eu-west-2",
            dynamodb_endpoint=env.get("PSS_DYNAMODB_ENDPOINT") or None,
            local_store=Path(local_store) if local_store else None,
            policy_dir=Path(policy_dir) if policy_dir else default_policy_dir(),
            api_keys=api_keys,
            pseudonym_key=pseudonym.encode(),
            public_base_url=parse_base_url(env.get("PSS_PUBLIC_BASE_URL", ""), stage),
            cds_clients=tuple(cds_clients),
            audit_clients=frozenset(c.strip() for c in env.get("PSS_AUDIT_CLIENTS", "")
                                    .split(",") if c.strip()),
            oauth_issuers=_separate_clients(
                _parse_list(env, "PSS_OAUTH_ISSUERS", OAuthIssuer), cds_clients),
        )

    def keys_by_client(self) -> Mapping[str, str]:
        """The API keys as a mapping client id -> key."""
        return dict(self.api_keys)


def parse_api_keys(text: str) -> tuple[tuple[str, str], ...]:
    """Parse `client:key,client2:key2` into pairs; raise `SettingsError` on a malformed entry.

    E.g. `parse_api_keys("epr:s3cret")` is `(("epr", "s3cret"),)`. The message never quotes a
    key, only the position of the bad entry.
    """
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(e.strip() for e in text.split(",")):
        if not entry:
            continue
        client, sep, key = entry.partition(":")
        if not sep or not client.strip() or not key.strip():
            raise SettingsError(f"PSS_API_KEYS entry {position + 1} is not `client_id:key`")
        if not re.fullmatch(CLIENT_ID_PATTERN, client.strip()):
            raise SettingsError(f"PSS_API_KEYS entry {position + 1}: the client id may hold "
                                "only letters, digits and `.`, `_`, `:`, `-` (at most 64)")
        pairs.append((client.strip(), key.strip()))
    return tuple(pairs)


def parse_base_url(text: str, stage: str) -> str:
    """`PSS_PUBLIC_BASE_URL` without a trailing slash; https and required in prod.

    The dev stage defaults to `pss serve`'s address and may use http for local trials.
    """
    value = text.strip().rstrip("/")
    if not value:
        if stage == "prod":
            raise SettingsError("PSS_PUBLIC_BASE_URL must be set in the prod stage")
        return DEV_PUBLIC_BASE_URL
    parts = urlsplit(value)
    schemes = ("https",) if stage == "prod" else ("https", "http")
    if parts.scheme not in schemes or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(f"PSS_PUBLIC_BASE_URL must be an absolute "
                            f"{' or '.join(schemes)} URL with no query")
    return value


def _parse_list(env: Mapping[str, str], name: str, model: type[M]) -> list[M]:
    """A JSON list of `model` objects; `SettingsError` naming the entry and field otherwise.

    The message never quotes the value: a JWKS is public, but a wrong paste might not be.
    """
    text = env.get(name, "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        raise SettingsError(f"{name} is not valid JSON") from None
    if not isinstance(data, list):
        raise SettingsError(f"{name} must be a JSON list")
    out = []
    for i, entry in enumerate(data):
        try:
            out.append(model.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SettingsError(f"{name}[{i}]{'.' + where if where else ''}: "
                                f"{first['msg'].removeprefix('Value error, ')}") from None
    seen = [getattr(e, "iss", None) for e in out]
    if len(set(seen)) != len(seen):
        raise SettingsError(f"{name}: each `iss` may appear only once")
    return out


def _separate_clients(issuers: list[OAuthIssuer],
                      cds: list[CdsClient]) -> tuple[OAuthIssuer, ...]:
    """The OAuth issuers, once each is known to speak for clients no other party has."""
    if len(issuers) > 1 and not all(i.clients for i in issuers):
        raise SettingsError("PSS_OAUTH_ISSUERS: with more than one issuer, each must list its "
                            "`clients`, so no issuer can speak for another's clients")
    listed = [c for i in issuers for c in i.clients]
    if len(set(listed)) != len(listed):
        raise SettingsError("PSS_OAUTH_ISSUERS: a client id is listed for two issuers")
    if set(listed) & {c.client_id for c in cds}:
        raise SettingsError("PSS_OAUTH_ISSUERS: a listed client id is a CDS client's")
    return tuple(issuers)


def default_policy_dir() -> Path:
    """The bundled pack when it exists (Lambda), else the repository's `policies/`."""
    bundled = _CHALICELIB / "_bundle" / "policies"
    return bundled if bundled.is_dir() else _CHALICELIB.parent / "policies"
