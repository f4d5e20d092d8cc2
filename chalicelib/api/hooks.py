"""CDS Hooks use cases: the HTTP edge of `chalicelib.cds`, recording through the API.

In: the raw body of `POST /cds-services/{id}` or `.../feedback` and the calling client. Out: a
`Reply` whose body is the CDS Hooks response (cards and system actions) or the feedback
results, or an `ApiError` carrying the same error body as the rest of the API. Every order
decided is recorded as a decision with the call's `hookInstance`, and every card that came
from a decision is recorded (scoped by client) so feedback about it finds that decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chalicelib.api.http import json_body
from chalicelib.api.replies import ApiError, Reply, bad_request, not_found
from chalicelib.api.service import DecisionService, guarded
from chalicelib.cds.models import FeedbackAnswer, FeedbackRequest, FeedbackResult
from chalicelib.cds.recorded import Fetch, RecordedDecision
from chalicelib.cds.service import SERVICES, HookRequestError, discovery, handle
from chalicelib.decisions.store import CardRecord, DecisionStore, FeedbackRecord
from chalicelib.errors import Problem, UnknownNameError, validation_problems


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class HookService:
    """Answers CDS Hooks calls by deciding and recording each draft order."""

    decisions: DecisionService
    clock: Callable[[], dt.datetime]
    store: Callable[[], DecisionStore]
    # The prefetch fetcher of a calling client: only its EHR's configured FHIR servers.
    fetch_for: Callable[[str], Fetch | None]
    # `PSS_PUBLIC_BASE_URL`: card links are built on it, never on the `Host` header.
    base_url: str

    def discover(self) -> Reply:
        """`GET /cds-services`."""
        return Reply(200, discovery())

    def call(self, service_id: str, body: bytes, client_id: str) -> Reply:
        """`POST /cds-services/{id}`: cards for every order, or the error body."""

        def decide(request: dict[str, Any], hook_instance: str) -> RecordedDecision:
            # An EHR may send the same call again (a retry, a re-fired order-sign): the same
            # hook instance and order replay the decision already recorded, never a new one.
            # The request is part of the key, so an order changed under the same hook
            # instance is a new decision rather than a reused key. Keyed: the request holds
            # an NHS number and a birth date, which a plain hash would let anyone try.
            digest = self.decisions.pseudonymiser.digest({"hook": hook_instance,
                                                          "request": request})
            return self.decisions.record(request, client_id, "cds-" + digest, hook_instance)

        try:
            # Parsed here, within the API's JSON limits (depth, digits), not by `handle`.
            answer = handle(service_id, json_body(body), decide=decide,
                            fetch=self.fetch_for(client_id), today=self.clock().date(),
                            base_url=self.base_url)
        except UnknownNameError as exc:
            raise not_found(str(exc)) from None
        except HookRequestError as exc:
            raise bad_request(exc.details, exc.message) from None
        if answer.issued:
            issued_at = _stamp(self.clock())
            cards = [CardRecord(client_id, c.card_uuid, c.decision_id, service_id, issued_at)
                     for c in answer.issued]
            guarded(lambda: self.store().add_cards(cards))
        return Reply(200, answer.response)

    def feedback(self, service_id: str, body: bytes, client_id: str) -> Reply:
        """`POST /cds-services/{id}/feedback`: record each entry against its card's decision.

        200 with one result per entry when at least one was recorded; an entry whose card
        this client was not issued by this service is 404 in its result. 404 with the error
        body when no entry was recorded; 400 naming the field for a malformed body.
        """
        if service_id not in SERVICES:
            raise not_found(f"no CDS service `{service_id}` (known: {', '.join(SERVICES)})")
        request = _feedback_request(body)
        store = self.store()
        received_at = _stamp(self.clock())
        results = []
        for entry in request.feedback:
            card = guarded(lambda: store.card(client_id, entry.card))  # noqa: B023
            if card is None or card.service_id != service_id:
                results.append(FeedbackResult(card=entry.card, status=404, problem=(
                    f"no card `{entry.card}` was issued to this client by `{service_id}`")))
                continue
            reason = (entry.overrideReason.model_dump(mode="json", exclude_none=True)
                      if entry.overrideReason is not None else None)
            record = FeedbackRecord(
                decision_id=card.decision_id, card_uuid=entry.card, client_id=client_id,
                service_id=service_id, outcome=entry.outcome,
                outcome_timestamp=entry.outcomeTimestamp, received_at=received_at,
                override_reason=reason,
                accepted_suggestions=tuple(s.id for s in entry.acceptedSuggestions or ()))
            guarded(lambda: store.add_feedback(record))  # noqa: B023
            results.append(FeedbackResult(card=entry.card, status=200,
                                          decision_id=card.decision_id))
        if all(r.status == 404 for r in results):
            raise ApiError(404, "not_found", "no feedback entry names a card this service "
                           "issued to this client",
                           [Problem(f"feedback[{i}].card", r.problem or "unknown card")
                            for i, r in enumerate(results)])
        return Reply(200, FeedbackAnswer(results=results))


def _feedback_request(body: bytes) -> FeedbackRequest:
    raw = json_body(body)  # within the API's JSON limits
    if not isinstance(raw, dict):
        raise bad_request([Problem("body", "must be a JSON object with `feedback`")])
    try:
        return FeedbackRequest.model_validate(raw)
    except ValidationError as exc:
        raise bad_request(validation_problems(exc),
                          "not a valid CDS Hooks feedback request") from None
