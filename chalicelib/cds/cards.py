"""The cards a clinician sees: one per draft order, built to "Card Attributes" of CDS Hooks 2.0.

Every card has a `uuid` (stable per hook instance, order and decision, so a retried call gets
the same ones and feedback can find the decision); a summary under 140 characters, shortened
at word boundaries, never mid-word; Markdown detail with outside text escaped where GitHub
Flavored Markdown would act on it, and nowhere else (`cds.markdown`); a
`source.topic` from the code system Da Vinci CRD binds it to (`cdshooks-card-type`); a link to
the decision record, absolute on the configured public base URL; and `overrideReasons` on
cards a clinician may decline (prior approval, IFR, not eligible).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from urllib.parse import quote

from chalicelib.cds.codes import ICD10, OPCS4
from chalicelib.cds.markdown import code as _code
from chalicelib.cds.markdown import text as md
from chalicelib.cds.models import (
    SUMMARY_MAX,
    Card,
    Coding,
    DisplayedCoding,
    Indicator,
    Link,
    Source,
)
from chalicelib.cds.orders import Order
from chalicelib.cds.provenance import unverified_lines
from chalicelib.cds.recorded import RecordedDecision
from chalicelib.dsl.outcomes import Commissioner, Eligibility
from chalicelib.errors import Problem

SOURCE_LABEL = "NHS England specialised commissioning (PSS rules)"
# Da Vinci CRD resp-5: `source.topic` is bound (extensible) to this code system's card types.
CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
TOPIC = Coding(system=CARD_TYPE_SYSTEM, code="coverage-info", display="Coverage Information")
# The non-adherence reasons CDS Hooks 2.0 suggests ("Reasons for rejecting a card"), with the
# code system's own displays: why a clinician may go ahead against a warning card.
NON_ADHERENCE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
OVERRIDE_REASONS = (
    DisplayedCoding(system=NON_ADHERENCE_SYSTEM, code="action-completed",
                    display="Recommended action was already completed"),
    DisplayedCoding(system=NON_ADHERENCE_SYSTEM, code="expert-contradicts",
                    display="Advice from expert contradicts the recommended action"),
    DisplayedCoding(system=NON_ADHERENCE_SYSTEM, code="policy-contradicts",
                    display="Institutional policy/guideline contradicts the recommended action"),
)
_CARD_NAMESPACE = uuid.UUID("4f1c0c5e-3f7a-4b8e-9d1e-6a0c2b7d5e11")
MAX_REASONS = 15

COMMISSIONER_LABEL: dict[str, str] = {
    Commissioner.NHS_ENGLAND: "NHS England",
    Commissioner.ICB_DELEGATED: "ICB (delegated by NHS England)",
    Commissioner.ICB_CORE: "ICB",
}
_ELIGIBILITY: dict[str, str] = {
    Eligibility.ELIGIBLE: "eligible",
    Eligibility.NOT_ELIGIBLE: "not eligible",
    Eligibility.PRIOR_APPROVAL: "prior approval needed",
    Eligibility.IFR_REQUIRED: "individual funding request (IFR) needed",
    Eligibility.INCOMPLETE: "more information needed",
    Eligibility.NOT_APPLICABLE: "no eligibility policy applies",
}
# Outcomes a clinician is warned about, and may decline (with a reason) to act on.
WARNING = frozenset({Eligibility.PRIOR_APPROVAL, Eligibility.IFR_REQUIRED,
                     Eligibility.NOT_ELIGIBLE})


def card_uuid(hook_instance: str, order: Order, decision_id: str = "") -> str:
    """Stable per call, order and decision: a re-fired hook gets new ids, a replay the same."""
    name = f"{hook_instance}|{order.reference or order.path}|{decision_id}"
    return str(uuid.uuid5(_CARD_NAMESPACE, name))


def shorten(text: str, limit: int = SUMMARY_MAX) -> str:
    """`text` if it fits in `limit` characters, else cut at the last word boundary + `…`.

    E.g. `shorten("Adult specialist cardiac services", 20)` is `"Adult specialist…"`.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut falls inside a word: drop that word
        head, space, _ = cut.rpartition(" ")
        if space and head.strip():
            cut = head
    return cut.rstrip(" ,;:—-") + "…"


def _card(
    order: Order,
    hook_instance: str,
    summary: str,
    indicator: Indicator,
    detail: str,
    *,
    links: list[Link] | None = None,
    decision_id: str = "",
    declinable: bool = False,
) -> Card:
    return Card(
        uuid=card_uuid(hook_instance, order, decision_id),
        summary=shorten(summary),
        detail=detail,
        indicator=indicator,
        source=Source(label=SOURCE_LABEL, topic=TOPIC),
        links=links,
        overrideReasons=list(OVERRIDE_REASONS) if declinable else None,
    )


def _order_line(order: Order) -> str:
    ref = f" ({md(order.reference)})" if order.reference else ""
    return f"**Order:** {md(order.label)}{ref}"


def uncoded_card(order: Order, hook_instance: str) -> Card:
    """An order without codes we decide on: say which codes are needed; never guess."""
    if order.kind == "MedicationRequest":
        summary = "Commissioning not assessed: name the medicine (dm+d) to check who funds it"
        need = "the medicine as a dm+d coding with its display, or as text"
    else:
        summary = "Commissioning not assessed: add the OPCS-4 procedure code(s) and ICD-10 reason"
        need = (
            "OPCS-4 procedure code(s) (`" + OPCS4 + "`) on `ServiceRequest.code` or "
            "`orderDetail`, and ICD-10 diagnosis code(s) (`" + ICD10 + "`) in `reasonCode`"
        )
    lines = [_order_line(order), "", f"**Needed to assess:** {need}."]
    if order.other_codes:
        lines.append("")
        lines.append(
            "**Codes present:** "
            + ", ".join(md(c) for c in order.other_codes)
            + ". SNOMED CT codes are not mapped to OPCS-4/ICD-10 here: we do not guess."
        )
    return _card(order, hook_instance, summary, "info", "\n".join(lines))


def needs_card(order: Order, hook_instance: str, missing: Sequence[str]) -> Card:
    """No decision yet: the patient's birth date is missing."""
    summary = "Commissioning not assessed yet: the patient's birth date is needed"
    lines = [_order_line(order), "", "**Still needed:**",
             *(f"- {md(m, line_start=True)}" for m in missing)]
    return _card(order, hook_instance, summary, "info", "\n".join(lines))


def rejected_card(order: Order, hook_instance: str, details: Sequence[Problem]) -> Card:
    """The engine rejected the order's coded data: list each problem to fix."""
    summary = "Commissioning not assessed: the order's coded data was rejected"
    lines = [
        _order_line(order),
        "",
        "**Problems** (fix in the order, then sign again):",
        *(f"- {_code(p.field)}: {md(p.problem)}" for p in details),
    ]
    return _card(order, hook_instance, summary, "warning", "\n".join(lines))


def not_covered_card(order: Order, hook_instance: str, day: str) -> Card:
    """The order's date is before every policy set."""
    summary = f"No NHS England policy set covers {day}: not assessed"
    return _card(order, hook_instance, summary, "info", _order_line(order))


def summary(decision: RecordedDecision) -> str:
    """One sentence under 140 characters; a long service name is shortened, the outcome kept."""
    service = decision.service
    if service is None:
        return "Not specialised — the patient's ICB commissions this as a core service"
    who = COMMISSIONER_LABEL.get(decision.commissioner, decision.commissioner)
    policy = decision.policy.id if decision.policy else None
    route = decision.route
    outcomes: dict[str, str] = {
        Eligibility.ELIGIBLE: f"Eligible under {policy}" if policy else "Eligible",
        Eligibility.PRIOR_APPROVAL:
            f"Prior approval via {route}" if route else "Prior approval needed",
        Eligibility.IFR_REQUIRED: f"IFR needed via {route}" if route else "IFR needed",
        Eligibility.NOT_ELIGIBLE: f"Not eligible under {policy}" if policy else "Not eligible",
        Eligibility.INCOMPLETE:
            f"More information needed for {policy}" if policy else "More info needed",
        Eligibility.NOT_APPLICABLE: "No eligibility policy applies",
    }
    outcome = outcomes.get(decision.eligibility, decision.eligibility)
    head, tail = f"Specialised — {who} commissions: ", f". {outcome}"
    room = SUMMARY_MAX - len(head) - len(tail)
    return head + shorten(service.name, max(room, 12)) + tail


def decision_card(
    order: Order,
    decision: RecordedDecision,
    hook_instance: str,
    base_url: str,
    detail_lines: Sequence[str],
) -> Card:
    """The card of a decided order: commissioner, service, policy, eligibility, reasons."""
    decision_id = decision.decision_id or ""
    links = None
    if decision_id:
        links = [Link(label=f"Decision record {decision_id}", url=decision_url(base_url,
                                                                            decision_id),
                      type="absolute")]
    warning = decision.eligibility in WARNING
    return _card(
        order,
        hook_instance,
        summary(decision),
        "warning" if warning else "info",
        "\n".join(detail_lines),
        links=links,
        decision_id=decision_id,
        declinable=warning,
    )


def decision_url(base_url: str, decision_id: str) -> str:
    """The absolute URL of a decision record on the public base URL."""
    return f"{base_url.rstrip('/')}/v1/decisions/{quote(decision_id, safe='')}"


def detail_lines(
    order: Order,
    decision: RecordedDecision,
    assessed_from: str,
    notes: Sequence[str],
) -> list[str]:
    """The card's Markdown, one field per list item (CommonMark EHRs show one per line)."""
    service, policy = decision.service, decision.policy
    who = COMMISSIONER_LABEL.get(decision.commissioner, decision.commissioner)
    lines = [f"- {_order_line(order)}", f"- **Commissioner:** {who}"]
    if service:
        lines.append(f"- **Service:** {service.id} {md(service.name)} "
                     f"(service line {service.line})")
    if policy:
        lines.append(f"- **Policy:** {policy.id} version {policy.version}, {md(policy.title)}")
    eligibility = _ELIGIBILITY.get(decision.eligibility, decision.eligibility)
    route = f" via {md(decision.route)}" if decision.route else ""
    lines.append(f"- **Eligibility:** {eligibility}{route}")
    lines += unverified_lines(decision)
    if decision.missing:
        lines += ["", "**Still needed:** " + ", ".join(_code(m) for m in decision.missing)]
    reasons = decision.reasons
    if reasons:
        lines += ["", "**Reasons:**"]
        mark = {True: "met", False: "not met", None: "unknown"}
        for r in reasons[:MAX_REASONS]:
            lines.append(f"- {_code(r.clause)}: {mark[r.result]} ({md(r.rule)}, {md(r.at)})")
        if len(reasons) > MAX_REASONS:
            lines.append(f"- … {len(reasons) - MAX_REASONS} more on the decision record")
    lines += ["", "**Assessed from:** " + md(assessed_from)]
    if notes:
        lines += ["", "**Notes:**", *(f"- {md(n, line_start=True)}" for n in notes)]
    return lines
