"""The CDS Hooks services: discovery, and order-select / order-sign calls answered with cards.

Framework-free so Chalice routes stay thin and tests need no HTTP:

* `discovery()` → the `GET /cds-services` body.
* `handle(service_id, body, decide=…, fetch=…, today=…)` → (status, JSON body) for
  `POST /cds-services/{id}`: 200 with `{cards, systemActions}`, 404 for an unknown service,
  400 with the API's error body for input that is not a well-formed call.

`decide(request, hook_instance)` records one decision (keeping the hookInstance on it) and
returns its JSON with `decision_id`; it raises RequestError / NotCoveredError for requests it
rejects. Any other exception from it (a store outage) propagates for the route to map.
`fetch(fhir_server, bearer_token, relative_url)` returns a resource or Bundle, or None.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from chalicelib.cds import fhir
from chalicelib.cds.models import (
    SUMMARY_MAX,
    Action,
    Card,
    Coding,
    HookRequest,
    HookResponse,
    Indicator,
    Link,
    ServiceDescription,
    Source,
)
from chalicelib.cds.provenance import unverified_lines
from chalicelib.errors import (
    NotCoveredError,
    Problem,
    RequestError,
    error_body,
    validation_problems,
)

Decide = Callable[[dict[str, Any], str], dict[str, Any]]
Fetch = Callable[[str, str, str], dict[str, Any] | None]

ORDER_SELECT = "pss-order-select"
ORDER_SIGN = "pss-order-sign"
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
}
SERVICES: dict[str, ServiceDescription] = {
    ORDER_SELECT: ServiceDescription(
        hook="order-select",
        id=ORDER_SELECT,
        title="NHS England specialised commissioning (order select)",
        description=(
            "As orders are chosen: who commissions each one (NHS England, ICB under delegation "
            "or ICB), the specialised service line, the policy that applies and what is still "
            "needed to decide eligibility."
        ),
        prefetch=PREFETCH,
        usageRequirements="Orders coded in OPCS-4 (procedures), ICD-10 (reasons) or dm+d.",
    ),
    ORDER_SIGN: ServiceDescription(
        hook="order-sign",
        id=ORDER_SIGN,
        title="NHS England specialised commissioning (order sign)",
        description=(
            "Before signing: commissioner, service line, policy and eligibility (eligible, "
            "prior approval, IFR, not eligible) of each order, recorded as a decision whose "
            "id is added to the order for later claims and audit."
        ),
        prefetch=PREFETCH,
        usageRequirements="Orders coded in OPCS-4 (procedures), ICD-10 (reasons) or dm+d.",
    ),
}

EXTENSION_URL = "https://pss-rules.example/fhir/StructureDefinition/commissioning-information"
SERVICE_LINE_SYSTEM = "https://pss-rules.example/fhir/CodeSystem/service-line"
POLICY_SYSTEM = "https://pss-rules.example/fhir/CodeSystem/policy"
TOPIC_SYSTEM = "https://pss-rules.example/fhir/CodeSystem/card-topic"
SOURCE_LABEL = "NHS England specialised commissioning (PSS rules)"
_CARD_NAMESPACE = uuid.UUID("4f1c0c5e-3f7a-4b8e-9d1e-6a0c2b7d5e11")
MAX_REASONS = 15

_COMMISSIONER = {
    "nhs_england": "NHS England",
    "icb_delegated": "ICB (delegated by NHS England)",
    "icb_core": "ICB",
}
_ELIGIBILITY = {
    "eligible": "eligible",
    "not_eligible": "not eligible",
    "prior_approval": "prior approval needed",
    "ifr_required": "individual funding request (IFR) needed",
    "incomplete": "more information needed",
    "not_applicable": "no eligibility policy applies",
}
_WARNING = frozenset({"prior_approval", "ifr_required", "not_eligible"})
# Our eligibility as the CRD coverage-information `covered` / `pa-needed` codes.
_COVERED = {
    "eligible": ("covered", "no-auth"),
    "not_applicable": ("covered", "no-auth"),
    "prior_approval": ("covered", "auth-needed"),
    "incomplete": ("conditional", "conditional"),
    "ifr_required": ("not-covered", None),  # CRD: not-covered ⇒ no pa-needed
    "not_eligible": ("not-covered", None),
}


def discovery() -> dict[str, Any]:
    """Return the discovery document (`GET /cds-services`)."""
    return {"services": [s.model_dump(exclude_none=True) for s in SERVICES.values()]}


def error(
    status: int, code: str, message: str, details: Sequence[Problem] = ()
) -> tuple[int, dict[str, Any]]:
    """Return (status, the API's standard error body)."""
    return status, error_body(code, message, details)


def handle(
    service_id: str,
    body: Any,
    *,
    decide: Decide,
    fetch: Fetch | None,
    today: dt.date,
    base_url: str = "",
) -> tuple[int, dict[str, Any]]:
    """Answer one CDS Hooks call (`POST /cds-services/{service_id}`).

    In: the service id from the path; the body as parsed JSON (or raw `str`/`bytes`, parsed
    here so "not JSON" is a 400 too); `decide` and `fetch` as in the module docstring; `today`
    for orders without a date; `base_url` of the API, prefixed to decision links.
    Out: (200, `{cards, systemActions}`), (404, error) or (400, error).
    """
    service = SERVICES.get(service_id)
    if service is None:
        known = ", ".join(SERVICES)
        return error(404, "not_found", f"no CDS service `{service_id}` (known: {known})")
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return error(400, "invalid_request", "the body is not valid JSON")
    if not isinstance(body, dict):
        return error(
            400,
            "invalid_request",
            "the body must be a JSON object",
            [Problem("body", "must be a JSON object")],
        )
    try:
        call = HookRequest.model_validate(body)
    except ValidationError as exc:
        return error(400, "invalid_request", "not a valid CDS Hooks request",
                     validation_problems(exc))
    if call.hook != service.hook:
        return error(
            400,
            "invalid_request",
            f"service `{service_id}` answers `{service.hook}`",
            [Problem("hook", f"must be `{service.hook}`, not `{call.hook}`")],
        )
    try:
        return 200, _answer(call, decide, fetch, today, base_url).to_json()
    except fhir.FhirError as exc:
        return error(400, "invalid_request", "malformed FHIR in the CDS Hooks request", exc.details)


# --- gathering the patient and their conditions ---


@dataclass
class Context:
    """What every order's decision shares: the patient, their diagnoses, what is missing."""

    patient: fhir.PatientData | None = None
    diagnoses: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _context(call: HookRequest, fetch: Fetch | None, resolver: fhir.Resolver) -> Context:
    ctx = Context()
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
        ctx.diagnoses = fhir.conditions_in(conditions, "prefetch.conditions")
        return ctx
    fetched = _fetch(call, fetch, f"Condition?patient={quote(patient_id, safe='')}")
    if fetched is not None and fetched.get("resourceType") in ("Bundle", "Condition"):
        try:
            ctx.diagnoses = fhir.conditions_in(fetched, "fetched Conditions")
        except fhir.FhirError as exc:
            ctx.notes.append(f"the Conditions fetched could not be read ({exc})")
    else:
        ctx.notes.append(
            "the patient's recorded conditions were not available; only the orders' own "
            "reasons were used"
        )
    return ctx


def _read_patient(ctx: Context, patient: dict[str, Any], patient_id: str, where: str) -> None:
    fetched = where.startswith("fetched")
    try:
        if fhir.resource_type(patient, where) != "Patient":
            raise fhir.FhirError(f"{where}.resourceType", "must be `Patient`")
        if patient.get("id") not in (None, patient_id):
            raise fhir.FhirError(f"{where}.id", f"is not context.patientId `{patient_id}`")
        ctx.patient = fhir.read_patient(patient, where)
    except fhir.FhirError as exc:
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
) -> HookResponse:
    draft = fhir.split_draft_orders(call.context.draftOrders, "context.draftOrders")
    resolver = fhir.Resolver()
    for resource, full_url in draft.supporting:
        resolver.add(resource, full_url)
    for order in draft.orders:
        resolver.add(order.resource)
    for key, value in (call.prefetch or {}).items():
        if value is not None:
            _index_prefetch(resolver, value, f"prefetch.{key}")
    orders = [fhir.read_order(order, resolver) for order in _selected(call, draft.orders)]
    # Fetching costs the EHR round trips inside CRD's 5 s budget: only when a decision needs it.
    needed = any(order.coded for order in orders)
    ctx = _context(call, fetch if needed else None, resolver)
    response = HookResponse()
    for order in orders:
        card, action = _assess(order, ctx, call.hookInstance, decide, today, base_url)
        response.cards.append(card)
        if action is not None:
            response.systemActions.append(action)
    return response


def _index_prefetch(resolver: fhir.Resolver, value: Mapping[str, Any], path: str) -> None:
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


def _selected(call: HookRequest, orders: list[fhir.Order]) -> list[fhir.Order]:
    """order-select names the newly chosen orders in `selections`: assess those only."""
    selections = call.context.selections
    if call.hook != "order-select" or not selections:
        return orders
    chosen = [o for o in orders if o.reference is None or o.reference in selections]
    return chosen or orders


def _assess(
    order: fhir.Order,
    ctx: Context,
    hook_instance: str,
    decide: Decide,
    today: dt.date,
    base_url: str,
) -> tuple[Card, Action | None]:
    if not order.coded:
        return _uncoded_card(order, hook_instance), None
    if ctx.patient is None or ctx.patient.birth_date is None:
        return _needs_card(order, hook_instance, ctx.missing), None
    request = fhir.referral_request(order, ctx.patient, ctx.diagnoses, order.date or today)
    try:
        decision = decide(request, hook_instance)
    except RequestError as exc:
        return _rejected_card(order, hook_instance, exc.details), None
    except NotCoveredError:
        summary = f"No NHS England policy set covers {request['date']}: not assessed"
        card = _card(order, hook_instance, summary, "info", "not-assessed", _order_line(order))
        return card, None
    return _decision_card(order, ctx, request, decision, hook_instance, base_url), _action(
        order, request, decision
    )


# --- cards ---


def _card(
    order: fhir.Order,
    hook_instance: str,
    summary: str,
    indicator: Indicator,
    topic: str,
    detail: str,
    links: list[Link] | None = None,
    decision_id: str = "",
) -> Card:
    # Stable per call, order and decision: a re-fired hook gets new ids, a replay the same.
    name = f"{hook_instance}|{order.reference or order.path}|{decision_id}"
    return Card(
        uuid=str(uuid.uuid5(_CARD_NAMESPACE, name)),
        summary=_fit(summary),
        detail=detail,
        indicator=indicator,
        source=Source(
            label=SOURCE_LABEL,
            topic=Coding(system=TOPIC_SYSTEM, code=topic, display=topic.replace("-", " ")),
        ),
        links=links,
    )


def _fit(text: str, limit: int = SUMMARY_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _md(text: str) -> str:
    """Escape EPR-supplied text so it cannot turn into Markdown links or emphasis."""
    return "".join("\\" + ch if ch in "\\`*_[]<>|#" else ch for ch in text)


def _code(text: object) -> str:
    """A Markdown code span; inside one, backslash escapes would show, so drop backticks."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def _order_line(order: fhir.Order) -> str:
    ref = f" ({_md(order.reference)})" if order.reference else ""
    return f"**Order:** {_md(order.label)}{ref}"


def _uncoded_card(order: fhir.Order, hook_instance: str) -> Card:
    if order.kind == "MedicationRequest":
        summary = "Commissioning not assessed: name the medicine (dm+d) to check who funds it"
        need = "the medicine as a dm+d coding with its display, or as text"
    else:
        summary = "Commissioning not assessed: add the OPCS-4 procedure code(s) and ICD-10 reason"
        need = (
            "OPCS-4 procedure code(s) (`" + fhir.OPCS4 + "`) on `ServiceRequest.code` or "
            "`orderDetail`, and ICD-10 diagnosis code(s) (`" + fhir.ICD10 + "`) in `reasonCode`"
        )
    lines = [_order_line(order), "", f"**Needed to assess:** {need}."]
    if order.other_codes:
        lines.append("")
        lines.append(
            "**Codes present:** "
            + ", ".join(_md(c) for c in order.other_codes)
            + ". SNOMED CT codes are not mapped to OPCS-4/ICD-10 here: we do not guess."
        )
    return _card(order, hook_instance, summary, "info", "information-needed", "\n".join(lines))


def _needs_card(order: fhir.Order, hook_instance: str, missing: Sequence[str]) -> Card:
    summary = "Commissioning not assessed yet: the patient's birth date is needed"
    lines = [_order_line(order), "", "**Still needed:**", *(f"- {_md(m)}" for m in missing)]
    return _card(order, hook_instance, summary, "info", "information-needed", "\n".join(lines))


def _rejected_card(order: fhir.Order, hook_instance: str, details: Sequence[Problem]) -> Card:
    summary = "Commissioning not assessed: the order's coded data was rejected"
    lines = [
        _order_line(order),
        "",
        "**Problems** (fix in the order, then sign again):",
        *(f"- {_code(p.field)}: {_md(p.problem)}" for p in details),
    ]
    return _card(order, hook_instance, summary, "warning", "order-rejected", "\n".join(lines))


def _summary(decision: Mapping[str, Any]) -> str:
    service = decision.get("service")
    if not service:
        return "Not specialised — the patient's ICB commissions this as a core service"
    who = _COMMISSIONER.get(decision["commissioner"], decision["commissioner"])
    policy = (decision.get("policy") or {}).get("id")
    route = decision.get("route")
    outcome = {
        "eligible": f"Eligible under {policy}" if policy else "Eligible",
        "prior_approval": f"Prior approval via {route}" if route else "Prior approval needed",
        "ifr_required": f"IFR needed via {route}" if route else "IFR needed",
        "not_eligible": f"Not eligible under {policy}" if policy else "Not eligible",
        "incomplete": f"More information needed for {policy}" if policy else "More info needed",
        "not_applicable": "No eligibility policy applies",
    }.get(decision["eligibility"], decision["eligibility"])
    head, tail = f"Specialised — {who} commissions: ", f". {outcome}"
    room = SUMMARY_MAX - len(head) - len(tail)
    return head + _fit(str(service["name"]), max(room, 10)) + tail


def _topic(decision: Mapping[str, Any]) -> str:
    if not decision.get("service"):
        return "not-specialised"
    return str(decision["eligibility"]).replace("_", "-")


def _decision_card(
    order: fhir.Order,
    ctx: Context,
    request: Mapping[str, Any],
    decision: Mapping[str, Any],
    hook_instance: str,
    base_url: str,
) -> Card:
    decision_id = str(decision.get("decision_id", ""))
    indicator: Indicator = "warning" if decision["eligibility"] in _WARNING else "info"
    links = None
    if decision_id:
        url = f"{base_url.rstrip('/')}/v1/decisions/{quote(decision_id, safe='')}"
        links = [Link(label=f"Decision record {decision_id}", url=url)]
    detail = "\n".join(_detail_lines(order, ctx, request, decision))
    return _card(
        order,
        hook_instance,
        _summary(decision),
        indicator,
        _topic(decision),
        detail,
        links,
        decision_id,
    )


def _detail_lines(
    order: fhir.Order,
    ctx: Context,
    request: Mapping[str, Any],
    decision: Mapping[str, Any],
) -> list[str]:
    service, policy = decision.get("service"), decision.get("policy")
    who = _COMMISSIONER.get(decision["commissioner"], decision["commissioner"])
    # A list, so EHRs rendering CommonMark show one field per line.
    lines = [f"- {_order_line(order)}", f"- **Commissioner:** {who}"]
    if service:
        line = service["line"]
        lines.append(f"- **Service:** {service['id']} {_md(service['name'])} (service line {line})")
    if policy:
        title = _md(policy["title"])
        lines.append(f"- **Policy:** {policy['id']} version {policy['version']}, {title}")
    eligibility = _ELIGIBILITY.get(decision["eligibility"], str(decision["eligibility"]))
    route = f" via {_md(decision['route'])}" if decision.get("route") else ""
    lines.append(f"- **Eligibility:** {eligibility}{route}")
    lines += unverified_lines(decision)
    missing = list(decision.get("missing") or [])
    if missing:
        lines += ["", "**Still needed:** " + ", ".join(_code(m) for m in missing)]
    reasons = list(decision.get("reasons") or [])
    if reasons:
        lines += ["", "**Reasons:**"]
        mark = {True: "met", False: "not met", None: "unknown"}
        for r in reasons[:MAX_REASONS]:
            lines.append(
                f"- {_code(r['clause'])}: {mark.get(r['result'], 'unknown')} "
                f"({_md(str(r['rule']))}, {_md(str(r['at']))})"
            )
        if len(reasons) > MAX_REASONS:
            lines.append(f"- … {len(reasons) - MAX_REASONS} more on the decision record")
    lines += ["", "**Assessed from:** " + _md(_assessed_from(request))]
    notes = [*order.notes, *ctx.notes]
    if order.kind == "ServiceRequest" and not order.procedures:
        notes.append("no OPCS-4 procedure code on the order: identified by diagnosis only")
    if notes:
        lines += ["", "**Notes:**", *(f"- {_md(n)}" for n in notes)]
    return lines


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


# --- system actions ---


def commissioning_extension(
    request: Mapping[str, Any], decision: Mapping[str, Any]
) -> dict[str, Any]:
    """The extension added to an order, modelled on Da Vinci CRD coverage-information.

    Sub-extensions: `coverage-assertion-id` (the decision id, for a claim to echo), `date`,
    `covered` and `pa-needed` (CRD codes), then ours: `commissioner`, `service-line`,
    `policy`, `eligibility`, `route`, `missing` (one per item), `policy-set`.
    """
    covered, pa_needed = _COVERED.get(decision["eligibility"], ("conditional", None))
    parts: list[dict[str, Any]] = [
        {"url": "coverage-assertion-id", "valueString": str(decision.get("decision_id", ""))},
        {"url": "date", "valueDate": request["date"]},
        {"url": "covered", "valueCode": covered},
    ]
    if pa_needed:
        parts.append({"url": "pa-needed", "valueCode": pa_needed})
    parts.append({"url": "commissioner", "valueCode": decision["commissioner"]})
    if decision.get("service"):
        service = decision["service"]
        parts.append(
            {
                "url": "service-line",
                "valueCoding": {
                    "system": SERVICE_LINE_SYSTEM,
                    "code": service["line"],
                    "display": service["name"],
                },
            }
        )
    if decision.get("policy"):
        policy = decision["policy"]
        parts.append(
            {
                "url": "policy",
                "valueCoding": {
                    "system": POLICY_SYSTEM,
                    "code": policy["id"],
                    "version": str(policy["version"]),
                    "display": policy["title"],
                },
            }
        )
    parts.append({"url": "eligibility", "valueCode": decision["eligibility"]})
    if decision.get("route"):
        parts.append({"url": "route", "valueString": decision["route"]})
    parts.extend({"url": "missing", "valueString": m} for m in decision.get("missing") or [])
    policy_set = decision.get("policy_set") or {}
    if policy_set.get("version"):
        parts.append({"url": "policy-set", "valueString": str(policy_set["version"])})
    return {"url": EXTENSION_URL, "extension": parts}


def _action(
    order: fhir.Order, request: Mapping[str, Any], decision: Mapping[str, Any]
) -> Action | None:
    if not decision.get("decision_id"):
        return None  # nothing recorded, nothing for a claim to echo
    resource = copy.deepcopy(order.resource)
    # A re-fired hook replaces our earlier extension rather than stacking another.
    kept = [
        e
        for e in resource.get("extension") or []
        if not (isinstance(e, dict) and e.get("url") == EXTENSION_URL)
    ]
    resource["extension"] = [*kept, commissioning_extension(request, decision)]
    return Action(
        type="update",
        description=f"Record NHS England commissioning decision {decision['decision_id']} "
        "on the order",
        resource=resource,
    )


__all__ = [
    "EXTENSION_URL",
    "ORDER_SELECT",
    "ORDER_SIGN",
    "SERVICES",
    "Decide",
    "Fetch",
    "commissioning_extension",
    "discovery",
    "handle",
]
