"""The CDS Hooks services: discovery, and order-select / order-sign calls answered with cards.

Framework-free so Chalice routes stay thin and tests need no HTTP:

* `discovery()` → the `GET /cds-services` body.
* `handle(service_id, body, decide=…, fetch=…, today=…, base_url=…)` → an `Answer`: the
  `HookResponse` (cards and system actions) and which decision each card came from. An
  unknown service raises `UnknownNameError`; input that is not a well-formed call raises
  `HookRequestError` (a `RequestError` whose `details` name each bad field).

`decide` and `fetch` are as in `chalicelib.cds.recorded`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from chalicelib.cds import cards
from chalicelib.cds.access import FhirError, resource_type
from chalicelib.cds.extensions import order_update
from chalicelib.cds.models import Action, Card, Discovery, HookRequest, HookResponse
from chalicelib.cds.models import ServiceDescription as Service
from chalicelib.cds.orders import Order, read_order, split_draft_orders
from chalicelib.cds.patient import PatientData, conditions_in, read_patient
from chalicelib.cds.recorded import Decide, Fetch
from chalicelib.cds.references import Resolver
from chalicelib.cds.request import referral_request
from chalicelib.errors import (
    NotCoveredError,
    Problem,
    RequestError,
    UnknownNameError,
    validation_problems,
)
from chalicelib.limits import LimitError, load_json

ORDER_SELECT = "pss-order-select"
ORDER_SIGN = "pss-order-sign"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    # Da Vinci CRD's coverage-information points at the Coverage this was assessed under.
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
}
_USAGE = "Orders coded in OPCS-4 (procedures), ICD-10 (reasons) or dm+d."
SERVICES: dict[str, Service] = {
    ORDER_SELECT: Service(
        hook="order-select",
        id=ORDER_SELECT,
        title="NHS England specialised commissioning (order select)",
        description=(
            "As orders are chosen: who commissions each one (NHS England, ICB under delegation "
            "or ICB), the specialised service line, the policy that applies and what is still "
            "needed to decide eligibility."
        ),
        prefetch=PREFETCH,
        usageRequirements=_USAGE,
    ),
    ORDER_SIGN: Service(
        hook="order-sign",
        id=ORDER_SIGN,
        title="NHS England specialised commissioning (order sign)",
        description=(
            "Before signing: commissioner, service line, policy and eligibility (eligible, "
            "prior approval, IFR, not eligible) of each order, recorded as a decision whose "
            "id is added to the order for later claims and audit."
        ),
        prefetch=PREFETCH,
        usageRequirements=_USAGE,
    ),
}


class HookRequestError(RequestError):
    """A call that is not a well-formed CDS Hooks request; `message` says which part."""

    def __init__(self, message: str, details: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(details, message)


@dataclass(frozen=True)
class IssuedCard:
    """A card we answered with and the decision it came from, for feedback to find."""

    card_uuid: str
    decision_id: str


@dataclass(frozen=True)
class Answer:
    """The response to send and the decisions behind its cards."""

    response: HookResponse
    issued: tuple[IssuedCard, ...]


def discovery() -> Discovery:
    """The discovery document (`GET /cds-services`)."""
    return Discovery(services=list(SERVICES.values()))


def handle(
    service_id: str,
    body: Any,
    *,
    decide: Decide,
    fetch: Fetch | None,
    today: dt.date,
    base_url: str,
) -> Answer:
    """Answer one CDS Hooks call (`POST /cds-services/{service_id}`).

    In: the service id from the path; the body as parsed JSON (or raw `str`/`bytes`, parsed
    here so "not JSON" is a 400 too); `today` for orders without a date; `base_url`, the
    public base URL links and extension URLs are built on.
    """
    service = SERVICES.get(service_id)
    if service is None:
        raise UnknownNameError(f"no CDS service `{service_id}` (known: {', '.join(SERVICES)})")
    call = parse_call(body, service)
    try:
        return _answer(call, decide, fetch, today, base_url)
    except FhirError as exc:
        raise HookRequestError("malformed FHIR in the CDS Hooks request", exc.details) from None


def parse_call(body: Any, service: Service) -> HookRequest:
    """The body as a `HookRequest` for `service`, or `HookRequestError`."""
    if isinstance(body, bytes | str):
        try:
            body = load_json(body)  # depth and digits bounded (`chalicelib.limits`)
        except LimitError as exc:
            raise HookRequestError("the body is over a limit",
                                   [Problem(exc.field or "body", str(exc))]) from None
        except (ValueError, UnicodeDecodeError):
            raise HookRequestError("the body is not valid JSON",
                                   [Problem("body", "is not valid JSON")]) from None
    if not isinstance(body, dict):
        raise HookRequestError("the body must be a JSON object",
                               [Problem("body", "must be a JSON object")])
    try:
        call = HookRequest.model_validate(body)
    except ValidationError as exc:
        raise HookRequestError("not a valid CDS Hooks request", validation_problems(exc)) from None
    if call.hook != service.hook:
        raise HookRequestError(f"service `{service.id}` answers `{service.hook}`",
                               [Problem("hook", f"must be `{service.hook}`, not `{call.hook}`")])
    return call


# --- gathering the patient, their conditions and coverage ---


@dataclass
class Context:
    """What every order's decision shares: the patient, their diagnoses, what is missing."""

    patient: PatientData | None = None
    diagnoses: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    coverage: dict[str, Any] | None = None


def _prefetched(call: HookRequest, key: str) -> dict[str, Any] | None:
    value = (call.prefetch or {}).get(key)
    # CRD lets an EHR put an OperationOutcome where it failed to prefetch: same as absent.
    if value is None or value.get("resourceType") == "OperationOutcome":
        return None
    return value


def _fetch(call: HookRequest, fetch: Fetch | None, relative: str) -> dict[str, Any] | None:
    if fetch is None or not call.fhirServer or call.fhirAuthorization is None:
        return None
    return fetch(call.fhirServer, call.fhirAuthorization.access_token, relative)


def _context(call: HookRequest, fetch: Fetch | None, resolver: Resolver) -> Context:
    ctx = Context(coverage=_coverage(_prefetched(call, "coverage")))
    patient_id = call.context.patientId
    patient = _prefetched(call, "patient")
    where = "prefetch.patient"
    if patient is None:
        patient = resolver.by_reference.get(f"Patient/{patient_id}")
        where = "context.draftOrders (Patient)"
    if patient is None:
        patient = _fetch(call, fetch, f"Patient/{quote(patient_id, safe='')}")
        where = "fetched Patient"
    if patient is not None:
        _read_patient(ctx, patient, patient_id, where)
    else:
        ctx.missing.append("the patient's birth date (no Patient prefetched or fetchable)")
    conditions = _prefetched(call, "conditions")
    if conditions is not None:
        ctx.diagnoses = conditions_in(conditions, "prefetch.conditions")
        return ctx
    fetched = _fetch(call, fetch, f"Condition?patient={quote(patient_id, safe='')}")
    if fetched is not None and fetched.get("resourceType") in ("Bundle", "Condition"):
        try:
            ctx.diagnoses = conditions_in(fetched, "fetched Conditions")
        except FhirError as exc:
            ctx.notes.append(f"the Conditions fetched could not be read ({exc})")
    else:
        ctx.notes.append(
            "the patient's recorded conditions were not available; only the orders' own "
            "reasons were used"
        )
    return ctx


def _coverage(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The first Coverage of the `coverage` prefetch (a Coverage or a search Bundle)."""
    if value is None:
        return None
    if value.get("resourceType") == "Coverage":
        return value
    for entry in value.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Coverage":
            return resource
    return None


def _read_patient(ctx: Context, patient: dict[str, Any], patient_id: str, where: str) -> None:
    fetched = where.startswith("fetched")
    try:
        if resource_type(patient, where) != "Patient":
            raise FhirError(f"{where}.resourceType", "must be `Patient`")
        if patient.get("id") not in (None, patient_id):
            raise FhirError(f"{where}.id", f"is not context.patientId `{patient_id}`")
        ctx.patient = read_patient(patient, where)
    except FhirError as exc:
        if not fetched:
            raise  # the EHR sent it: its error to fix
        ctx.missing.append(f"the patient's birth date (the Patient fetched was unusable: {exc})")
        return
    ctx.notes.extend(ctx.patient.notes)
    if ctx.patient.birth_date is None:
        ctx.missing.append("the patient's full birth date")


# --- the answer ---


def _answer(
    call: HookRequest, decide: Decide, fetch: Fetch | None, today: dt.date, base_url: str
) -> Answer:
    draft = split_draft_orders(call.context.draftOrders, "context.draftOrders")
    resolver = Resolver()
    for resource, full_url in draft.supporting:
        resolver.add(resource, full_url)
    for order in draft.orders:
        resolver.add(order.resource)
    for value in (call.prefetch or {}).values():
        if value is not None:
            _index_prefetch(resolver, value)
    orders = [read_order(order, resolver) for order in _selected(call, draft.orders)]
    # Fetching costs the EHR round trips inside CRD's 5 s budget: only when a decision needs it.
    needed = any(order.coded for order in orders)
    ctx = _context(call, fetch if needed else None, resolver)
    shown: list[Card] = []
    actions: list[Action] = []
    issued: list[IssuedCard] = []
    for order in orders:
        card, action, decision_id = _assess(order, ctx, call.hookInstance, decide, today,
                                            base_url)
        shown.append(card)
        if action is not None:
            actions.append(action)
        if decision_id:
            issued.append(IssuedCard(card.uuid, decision_id))
    response = HookResponse(cards=shown, systemActions=actions or None)
    return Answer(response, tuple(issued))


def _index_prefetch(resolver: Resolver, value: Mapping[str, Any]) -> None:
    if value.get("resourceType") != "Bundle":
        resolver.add(value)
        return
    entries = value.get("entry")
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            full_url = entry.get("fullUrl")
            resolver.add(entry["resource"], full_url if isinstance(full_url, str) else None)


def _selected(call: HookRequest, orders: list[Order]) -> list[Order]:
    """order-select names the newly chosen orders in `selections`: assess those only."""
    selections = call.context.selections
    if call.hook != "order-select" or not selections:
        return orders
    chosen = [o for o in orders if o.reference is None or o.reference in selections]
    return chosen or orders


def _assess(
    order: Order,
    ctx: Context,
    hook_instance: str,
    decide: Decide,
    today: dt.date,
    base_url: str,
) -> tuple[Card, Action | None, str | None]:
    if not order.coded:
        return cards.uncoded_card(order, hook_instance), None, None
    if ctx.patient is None or ctx.patient.birth_date is None:
        return cards.needs_card(order, hook_instance, ctx.missing), None, None
    request = referral_request(order, ctx.patient, ctx.diagnoses, order.date or today)
    try:
        decision = decide(request, hook_instance)
    except RequestError as exc:
        return cards.rejected_card(order, hook_instance, exc.details), None, None
    except NotCoveredError:
        return cards.not_covered_card(order, hook_instance, request["date"]), None, None
    notes = [*order.notes, *ctx.notes]
    if order.kind == "ServiceRequest" and not order.procedures:
        notes.append("no OPCS-4 procedure code on the order: identified by diagnosis only")
    lines = cards.detail_lines(order, decision, _assessed_from(request), notes)
    card = cards.decision_card(order, decision, hook_instance, base_url, lines)
    action = order_update(order.resource, decision, ctx.coverage, base_url)
    return card, action, decision.decision_id


def _assessed_from(request: Mapping[str, Any]) -> str:
    parts = [f"date {request['date']}", f"born {request['patient']['birth_date']}"]
    for key, label in (("procedures", "OPCS-4"), ("diagnoses", "ICD-10"), ("drugs", "drugs")):
        if request.get(key):
            parts.append(f"{label} " + ", ".join(request[key]))
    if request.get("provider"):
        parts.append(f"provider {request['provider']['ods_code']}")
    if request.get("facts"):
        parts.append("facts " + ", ".join(f"{k}={v}" for k, v in request["facts"].items()))
    if request.get("attestations"):
        parts.append("attested " + ", ".join(request["attestations"]))
    return "; ".join(parts)


__all__ = [
    "ORDER_SELECT",
    "ORDER_SIGN",
    "SERVICES",
    "Answer",
    "HookRequestError",
    "IssuedCard",
    "discovery",
    "handle",
    "parse_call",
]
