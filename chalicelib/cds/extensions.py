"""The extensions a decided order gets through a system action ("System Action", CDS Hooks 2.0).

Two extensions, side by side on the order:

1. Da Vinci CRD `coverage-information` (`CRD_URL`; HL7/davinci-crd
   `input/fsh/extensions/CoverageInformation.fsh`), so CRD-aware EHRs read it. Its required
   elements: `coverage` (a Reference: the Coverage the EHR prefetched under `coverage`, else a
   Reference carrying only `type: Coverage` and a `display` saying none was sent, because NHS
   care has no insurance Coverage to point at), `covered`, `date` (the day the assertion was
   made: when the decision was evaluated) and `coverage-assertion-id` (the decision id, for a
   claim or audit to echo). `pa-needed` is left out when not covered (invariant crd-ci-q2);
   an incomplete decision is `conditional` with `info-needed` `OTH` (crd-ci-q3) and a
   `reason` whose text lists what is missing (crd-ci-q6).
2. Our commissioning details, in ONE extension on a URL under the public base URL
   (`commissioning_url`), with sub-extensions `commissioner`, `eligibility`, `service-line`,
   `policy`, `route`, `missing` (one per item), `policy-set` and `decision` (the record's URL).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from chalicelib.cds.cards import COMMISSIONER_LABEL, decision_url
from chalicelib.cds.models import Action
from chalicelib.cds.recorded import RecordedDecision
from chalicelib.dsl.outcomes import Eligibility

CRD_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
NO_COVERAGE_DISPLAY = "NHS-funded care: the EHR sent no Coverage resource"

# Our eligibility as the CRD `covered` and `pa-needed` codes (CRDCoveredInfo, CRDCoveragePaDetail).
_CRD_CODES: Mapping[str, tuple[str, str | None]] = {
    Eligibility.ELIGIBLE: ("covered", "no-auth"),
    Eligibility.NOT_APPLICABLE: ("covered", "no-auth"),
    Eligibility.PRIOR_APPROVAL: ("covered", "auth-needed"),
    Eligibility.INCOMPLETE: ("conditional", "conditional"),
    Eligibility.IFR_REQUIRED: ("not-covered", None),  # crd-ci-q2: not-covered ⇒ no pa-needed
    Eligibility.NOT_ELIGIBLE: ("not-covered", None),
}


def commissioning_url(base_url: str) -> str:
    """The URL of our commissioning extension (StructureDefinition) on the public base URL."""
    return f"{base_url.rstrip('/')}/fhir/StructureDefinition/commissioning"


def code_system_url(base_url: str, name: str) -> str:
    """The URL of one of our code systems (`service-line`, `policy`) on the public base URL."""
    return f"{base_url.rstrip('/')}/fhir/CodeSystem/{name}"


def coverage_reference(coverage: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `coverage` Reference: to the prefetched Coverage, else a typed display-only one."""
    if coverage is not None:
        rid = coverage.get("id")
        if isinstance(rid, str) and rid:
            return {"reference": f"Coverage/{rid}"}
    return {"type": "Coverage", "display": NO_COVERAGE_DISPLAY}


def _reason(decision: RecordedDecision) -> str | None:
    """Why the assertion is what it is, when a reader could not tell from the codes."""
    policy = f" under {decision.policy.id}" if decision.policy else ""
    route = f" via {decision.route}" if decision.route else ""
    if decision.eligibility == Eligibility.INCOMPLETE:
        return "More information needed to decide eligibility" + policy + ": " + ", ".join(
            decision.missing)
    if decision.eligibility == Eligibility.NOT_ELIGIBLE:
        return "Not eligible" + policy
    if decision.eligibility == Eligibility.IFR_REQUIRED:
        return "Not routinely commissioned: individual funding request (IFR) needed" + route
    if decision.eligibility == Eligibility.PRIOR_APPROVAL:
        return "Prior approval needed" + route
    if decision.service is None:
        return "Not a prescribed specialised service: the patient's ICB commissions it"
    return None


def coverage_information(
    decision: RecordedDecision, coverage: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The CRD coverage-information extension for one recorded decision."""
    covered, pa_needed = _CRD_CODES.get(decision.eligibility, ("indeterminate", None))
    parts: list[dict[str, Any]] = [
        {"url": "coverage", "valueReference": coverage_reference(coverage)},
        {"url": "covered", "valueCode": covered},
    ]
    if pa_needed:
        parts.append({"url": "pa-needed", "valueCode": pa_needed})
    if "conditional" in (covered, pa_needed):
        # What is missing are facts and attestations, none of CRD's own categories: OTH.
        parts.append({"url": "info-needed", "valueCode": "OTH"})
    reason = _reason(decision)
    if reason:
        parts.append({"url": "reason", "valueCodeableConcept": {"text": reason}})
    parts += [
        {"url": "date", "valueDate": decision.evaluated_at[:10]},
        {"url": "coverage-assertion-id", "valueString": decision.decision_id or ""},
    ]
    return {"url": CRD_URL, "extension": parts}


def commissioning(decision: RecordedDecision, base_url: str) -> dict[str, Any]:
    """Our commissioning extension: who commissions, which service line and policy, and why."""
    label = COMMISSIONER_LABEL.get(decision.commissioner, decision.commissioner)
    parts: list[dict[str, Any]] = [
        {"url": "commissioner", "valueCoding": {
            "system": code_system_url(base_url, "commissioner"),
            "code": decision.commissioner, "display": label}},
        {"url": "eligibility", "valueCoding": {
            "system": code_system_url(base_url, "eligibility"), "code": decision.eligibility}},
    ]
    if decision.service is not None:
        parts.append({"url": "service-line", "valueCoding": {
            "system": code_system_url(base_url, "service-line"),
            "code": decision.service.line, "display": decision.service.name}})
    if decision.policy is not None:
        parts.append({"url": "policy", "valueCoding": {
            "system": code_system_url(base_url, "policy"), "code": decision.policy.id,
            "version": str(decision.policy.version), "display": decision.policy.title}})
    if decision.route:
        parts.append({"url": "route", "valueString": decision.route})
    parts += [{"url": "missing", "valueString": m} for m in decision.missing]
    parts.append({"url": "policy-set", "valueString": decision.policy_set.version})
    if decision.decision_id:
        parts.append({"url": "decision", "valueUrl": decision_url(base_url,
                                                                 decision.decision_id)})
    return {"url": commissioning_url(base_url), "extension": parts}


def order_update(
    resource: Mapping[str, Any],
    decision: RecordedDecision,
    coverage: Mapping[str, Any] | None,
    base_url: str,
) -> Action | None:
    """The system action adding both extensions to the order; None if nothing was recorded."""
    if not decision.decision_id:
        return None  # nothing recorded, nothing for a claim to echo
    updated = copy.deepcopy(dict(resource))
    crd = coverage_information(decision, coverage)
    ours = commissioning(decision, base_url)
    # A re-fired hook replaces our earlier extensions (for the same coverage) rather than
    # stacking more; everything else on the order stays as the EHR sent it (CRD resp-37).
    kept = [e for e in updated.get("extension") or []
            if not (isinstance(e, dict) and _ours(e, crd, ours["url"]))]
    updated["extension"] = [*kept, crd, ours]
    return Action(
        type="update",
        # Name who commissions: "NHS England" here would mislead when an ICB pays.
        description=f"Record commissioning decision {decision.decision_id} "
        f"({decision.commissioner}) on the order",
        resource=updated,
    )


def _ours(extension: Mapping[str, Any], crd: Mapping[str, Any], ours_url: str) -> bool:
    if extension.get("url") == ours_url:
        return True
    if extension.get("url") != CRD_URL:
        return False
    coverage = crd["extension"][0]
    return any(part == coverage for part in extension.get("extension") or [])
