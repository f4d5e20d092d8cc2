"""CDS Hooks use cases: the HTTP edge of `chalicelib.cds`, recording through the API.

In: the raw body of `POST /cds-services/{id}` and the calling client. Out: a `Reply` whose body
is the CDS Hooks response (cards and system actions), or an `ApiError` carrying the same error
body as the rest of the API. Every order decided is recorded as a decision with the call's
`hookInstance`, so a later claim or audit can find it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel

from chalicelib.api.replies import ApiError, Reply
from chalicelib.api.service import DecisionService
from chalicelib.cds.http_fetch import Fetch, no_fetch
from chalicelib.cds.models import HookResponse
from chalicelib.cds.service import discovery, handle
from chalicelib.errors import Problem


class CdsAnswer(RootModel[dict[str, Any]]):
    """A CDS Hooks response already validated as `HookResponse`, with absent optional fields
    left out rather than sent as null (the specification's cards omit what they lack)."""


class DiscoveryOut(BaseModel):
    """The CDS Hooks discovery document."""

    model_config = ConfigDict(extra="allow")

    services: list[dict[str, Any]]


@dataclass(frozen=True)
class HookService:
    """Answers CDS Hooks calls by deciding and recording each draft order."""

    decisions: DecisionService
    clock: Callable[[], dt.datetime]
    # The prefetch fetcher of a calling client: only its EHR's configured FHIR servers.
    fetch_for: Callable[[str], Fetch] = lambda client_id: no_fetch
    # `PSS_PUBLIC_BASE_URL`: card links are built on it, never on the `Host` header.
    base_url: str = ""

    def discover(self) -> Reply:
        """`GET /cds-services`."""
        return Reply(200, DiscoveryOut.model_validate(discovery()))

    def call(self, service_id: str, body: bytes, client_id: str) -> Reply:
        """`POST /cds-services/{id}`: cards for every order, or the error body."""

        def decide(request: dict[str, Any], hook_instance: str) -> dict[str, Any]:
            # An EHR may send the same call again (a retry, a re-fired order-sign): the same
            # hook instance and order replay the decision already recorded, never a new one.
            key = "cds-" + hashlib.sha256(
                f"{hook_instance}\0{request.get('referral_id', '')}".encode()).hexdigest()
            # The engine's own `RequestError` / `NotCoveredError` reach the adapter as they
            # are: it turns an invalid order into a card.
            try:
                reply = self.decisions.decide(request, client_id, key, False,
                                              hook_instance=hook_instance)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                # The order changed under the same hook instance: a new decision.
                reply = self.decisions.decide(request, client_id, None, False,
                                              hook_instance=hook_instance)
            decided: dict[str, Any] = reply.body.model_dump(mode="json")
            return decided

        status, answer = handle(service_id, body, decide=decide, fetch=self.fetch_for(client_id),
                                today=self.clock().date(), base_url=self.base_url)
        if status >= 400:
            error = answer.get("error", {})
            details = [Problem(d.get("field", ""), d.get("problem", ""))
                       for d in error.get("details", [])]
            raise ApiError(status, error.get("code", "invalid_request"),
                           error.get("message", "invalid CDS Hooks request"), details)
        checked = HookResponse.model_validate(answer)
        return Reply(status, CdsAnswer(checked.model_dump(mode="json", exclude_none=True)))
