"""The composition root: the only place settings, store, policy set, clock, ids, the
authenticator, the JWKS cache and the FHIR fetchers are built.

In: the environment (or overrides from tests and `pss serve`). Out: lazily built collaborators,
once per Lambda container: nothing is built at import, so `import app` needs no AWS
credentials, no network and no table; a dry run never builds the store at all.

A collaborator that fails to build (bad settings, a pack that does not compile) answers 503 and
is tried again on the next request: `cached_property` does not cache exceptions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib import system_clock
from chalicelib.api.auth import (
    CDS_PREFIX,
    Authenticator,
    Credentials,
    Principal,
    Unauthorized,
)
from chalicelib.api.catalogue import Catalogue
from chalicelib.api.http import Endpoint
from chalicelib.api.ids import UlidFactory
from chalicelib.api.jwt_check import KeySet
from chalicelib.api.logs import AccessLog, stdout_emitter
from chalicelib.api.privacy import Pseudonymiser
from chalicelib.api.replies import ApiError, unavailable
from chalicelib.api.service import DecisionService
from chalicelib.decisions.store import DecisionStore
from chalicelib.errors import PolicyError
from chalicelib.settings import Settings, SettingsError

if TYPE_CHECKING:
    from chalicelib.api.hooks import HookService
    from chalicelib.api.whatif import WhatIfService
    from chalicelib.cds.http_fetch import SafeGet
    from chalicelib.cds.recorded import Fetch
    from chalicelib.engine.policy_set import PolicySet

Clock = Callable[[], dt.datetime]
FetchJson = Callable[[str], Mapping[str, Any] | None]


class Wiring:
    """Builds each collaborator on first use; pass any of them in to replace it."""

    def __init__(self, env: Mapping[str, str] | None = None, *,
                 settings: Settings | None = None, policy_set: PolicySet | None = None,
                 store: DecisionStore | None = None, clock: Clock | None = None,
                 entropy: Callable[[int], bytes] | None = None,
                 emit: Callable[[str], None] | None = None,
                 http: SafeGet | None = None, jwks_fetch: FetchJson | None = None) -> None:
        self._env = os.environ if env is None else env
        self._given_settings = settings
        self._given_policy_set = policy_set
        self._given_store = store
        self.clock: Clock = clock or system_clock
        self._entropy = entropy or os.urandom
        self._emit = emit
        self._given_http = http
        self._given_jwks_fetch = jwks_fetch
        self._logged_causes: set[tuple[str, str]] = set()

    @cached_property
    def settings(self) -> Settings:
        """Settings from the environment; 503 when they are malformed."""
        if self._given_settings is not None:
            return self._given_settings
        try:
            return Settings.from_env(self._env)
        except SettingsError as exc:
            raise self._unavailable("misconfigured", "the service is misconfigured",
                                    str(exc)) from None

    @cached_property
    def policy_set(self) -> PolicySet:
        """The compiled pack; 503 when it does not compile."""
        if self._given_policy_set is not None:
            return self._given_policy_set
        from chalicelib import load_policy_set

        try:
            return load_policy_set(self.settings.policy_dir, clock=self.clock)
        except PolicyError as exc:
            raise self._unavailable("policy_set_unavailable", "the policy set does not load",
                                    str(exc)) from None

    def _unavailable(self, code: str, said: str, why: str) -> ApiError:
        """The 503 for a collaborator that cannot be built. The caller learns that the
        service is down and when to retry; why (a configuration variable's name, a pack
        file's line) is the operator's, so it goes to the log, once per distinct cause."""
        if (code, why) not in self._logged_causes:
            self._logged_causes.add((code, why))
            self.log_event("unavailable", {"code": code, "why": why})
        return unavailable(f"{said}; the operator's log says why", 60, code)

    @cached_property
    def store(self) -> DecisionStore:
        """The DynamoDB store; its boto3 client is made here, on the first recorded decision.

        Only a local stage with `PSS_LOCAL_STORE` set (`pss serve`) records in SQLite instead.
        """
        if self._given_store is not None:
            return self._given_store
        if self.settings.local_store is not None:
            from chalicelib.decisions.sqlite import SqliteDecisionStore

            return SqliteDecisionStore(self.settings.local_store)
        import boto3
        from botocore.config import Config

        from chalicelib.decisions.dynamodb import DynamoDBDecisionStore

        settings = self.settings
        client = boto3.session.Session().client(
            "dynamodb", region_name=settings.region, endpoint_url=settings.dynamodb_endpoint,
            # Fail fast: the client retries throttling itself, then we answer 503.
            config=Config(connect_timeout=2, read_timeout=5,
                          retries={"max_attempts": 3, "mode": "standard"}))
        return DynamoDBDecisionStore(client, settings.table_name)

    @cached_property
    def decisions(self) -> DecisionService:
        """The decision use cases."""
        return DecisionService(policy_set=self.policy_set, store=lambda: self.store,
                               clock=self.clock, new_id=UlidFactory(self.clock, self._entropy),
                               pseudonymiser=Pseudonymiser(self.settings.pseudonym_key),
                               audit_log=self._audit_read)

    def _audit_read(self, auditor: str, decision_id: str, read: str) -> None:
        # Ids only: who read whose decision, never what it holds.
        self.log_event("audit_read", {"auditor": auditor, "decision_id": decision_id,
                                      "read": read})

    @cached_property
    def hooks(self) -> HookService:
        """The CDS Hooks use cases (they record through `decisions`)."""
        from chalicelib.api.hooks import HookService

        return HookService(self.decisions, self.clock, lambda: self.store, self.fetch_for,
                           self.settings.public_base_url)

    @cached_property
    def http(self) -> SafeGet:
        """Outbound GETs: https, public addresses only, no redirects (FHIR and JWKS)."""
        if self._given_http is not None:
            return self._given_http
        from chalicelib.cds.http_fetch import SafeGet

        return SafeGet()

    def fetch_for(self, client_id: str) -> Fetch:
        """The prefetch fetcher of a CDS caller: only its EHR's configured FHIR servers."""
        from chalicelib.cds.http_fetch import FhirFetcher, no_fetch

        for client in self.settings.cds_clients:
            if client.client_id == client_id and client.fhir_servers:
                return FhirFetcher(client.fhir_servers, self.http)
        return no_fetch

    @cached_property
    def keys(self) -> KeySet:
        """The trusted issuers' public keys, cached once per container."""
        fetch = self._given_jwks_fetch or (lambda url: self.http.url(url))
        return KeySet(fetch, self.clock)

    @cached_property
    def authenticator(self) -> Authenticator:
        """Who may call (built on the settings, the JWKS cache and the store for `jti`s)."""
        return Authenticator(self.settings, self.keys, lambda: self.store, self.clock)

    @cached_property
    def s3(self) -> Any:
        """The S3 client of the batch handler, made on its first event."""
        import boto3

        return boto3.session.Session().client("s3", region_name=self.settings.region)

    def log_event(self, event: str, fields: Mapping[str, Any]) -> None:
        """Write one JSON log line for a non-HTTP event (no personal data in `fields`)."""
        emit = self._emit or stdout_emitter()
        emit(json.dumps({"event": event, **fields}, default=str))

    @cached_property
    def what_if(self) -> WhatIfService:
        """The what-if use case (never changes the served pack)."""
        from chalicelib.api.whatif import WhatIfService

        return WhatIfService(self.policy_set, self.settings.policy_dir)

    @cached_property
    def catalogue(self) -> Catalogue:
        """The read-only policy-set use cases."""
        return Catalogue(self.policy_set, self.settings.stage)

    @cached_property
    def endpoint(self) -> Endpoint:
        """Runs use cases for routes and writes the access log."""
        return Endpoint(AccessLog(self._emit or stdout_emitter()), time.perf_counter)

    def authorize(self, credentials: Credentials) -> Principal:
        """The caller; `auth.Unauthorized` otherwise (also when the settings are broken: no
        credential can be checked then)."""
        try:
            try:
                authenticator = self.authenticator
            except Exception:
                raise Unauthorized("the service is misconfigured") from None
            return authenticator.authorize(credentials)
        except Unauthorized as refused:
            # One line per refusal for whoever watches for attacks: the kind of route and the
            # reason (a fixed, token-free phrase); never the token, a key, a header value or
            # the path (whose id segment is whatever the caller typed).
            kind = "cds_hooks" if credentials.path.startswith(CDS_PREFIX) else "rest"
            self.log_event("auth_refused", {"method": credentials.method, "api": kind,
                                            "reason": refused.reason})
            raise

    def on_lambda(self) -> bool:
        """True when running on AWS Lambda (the local authorizer shim is not needed there)."""
        return bool(self._env.get("AWS_LAMBDA_FUNCTION_NAME"))


_current: Wiring | None = None


def current() -> Wiring:
    """The wiring of this process, created on first use."""
    global _current
    if _current is None:
        _current = Wiring()
    return _current


def install(wiring: Wiring | None) -> None:
    """Replace the process's wiring (tests, `pss serve`); None goes back to the default."""
    global _current
    _current = wiring
