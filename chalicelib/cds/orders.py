"""Draft orders: which resources are orders, and what each says in our terms.

In: the `draftOrders` Bundle (order-select / order-sign allow only order resources in it:
DeviceRequest, MedicationRequest, NutritionOrder, ServiceRequest, VisionPrescription, plus
CommunicationRequest in CRD). Out: one `Order` per ServiceRequest / MedicationRequest with the
codes, dates, provider, facts and attestations it carries. Other order types are skipped
without a card. Supporting resources (Patient, Condition, Medication, Organization,
PractitionerRole…) belong in prefetch or `contained`; found in draftOrders they are still
indexed for references, for EHRs that send them there.

* Procedures: OPCS-4 from `ServiceRequest.code`, then `orderDetail`, then `bodySite` (Z site
  codes), in that order: the first is the dominant procedure.
* Diagnoses: ICD-10 from `reasonCode`, then `reasonReference` Conditions.
* Drugs: the name (leading words before a strength or dose form, lowercased) of the display of
  a dm+d coding, else `text`, else any coding's display, of `medicationCodeableConcept` or the
  referenced Medication's `code`.
* Provider: the ODS code of the performer, else the requester: a logical
  `Reference.identifier`, a contained / bundled / prefetched Organization, or a
  PractitionerRole's `organization`.
* Facts: extension `FACT_URL` with nested `name` (valueString|valueCode) and `value`
  (value[x]; a top-level value[x] beside the nested `name` is accepted too), or supporting
  Observations (`ServiceRequest.supportingInfo`, `MedicationRequest.supportingInformation`)
  coded in `FACT_SYSTEM` (code = fact name, value[x] = value).
* Attestations: extension `ATTESTATION_URL` (valueCode|valueString = the name), or
  supporting Observations coded in `ATTESTATION_SYSTEM` with valueBoolean true.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.cds.access import (
    FhirError,
    array,
    fhir_date,
    obj,
    objects,
    opt_obj,
    resource_type,
    string,
    unique,
)
from chalicelib.cds.codes import (
    ATTESTATION_SYSTEM,
    ATTESTATION_URL,
    DMD_KEY,
    FACT_SYSTEM,
    FACT_URL,
    ODS_KEYS,
    codings,
    drug_name,
    icd10_of,
    opcs4_of,
    other_codes,
    system_key,
)
from chalicelib.cds.patient import condition_codes
from chalicelib.cds.references import Resolver

ORDER_TYPES = ("ServiceRequest", "MedicationRequest")
# Allowed in draftOrders by the order-select/order-sign specifications but not assessed here:
# skipped without a card (no commissioning rule reads them yet).
SKIPPED_ORDER_TYPES = frozenset(
    {"NutritionOrder", "VisionPrescription", "DeviceRequest", "CommunicationRequest"}
)
# Resources EPRs put beside orders for references to resolve against.
SUPPORTING_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Medication",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Observation",
        "Encounter",
        "Coverage",
    }
)


@dataclass
class Order:
    """One ServiceRequest or MedicationRequest and what it says in our terms."""

    path: str
    resource: dict[str, Any]
    kind: str
    reference: str | None
    label: str
    procedures: list[str] = field(default_factory=list)
    diagnoses: list[str] = field(default_factory=list)
    drugs: list[str] = field(default_factory=list)
    other_codes: list[str] = field(default_factory=list)
    date: dt.date | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    attestations: list[str] = field(default_factory=list)
    provider: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def coded(self) -> bool:
        """Whether the order carries codes we can decide on (no guessing from SNOMED CT)."""
        if self.kind == "MedicationRequest":
            return bool(self.drugs)
        return bool(self.procedures or self.diagnoses)


@dataclass(frozen=True)
class DraftOrders:
    """The draftOrders Bundle split into assessable orders and supporting resources."""

    orders: list[Order]
    supporting: list[tuple[dict[str, Any], str | None]]
    skipped: list[str]


def split_draft_orders(bundle: Mapping[str, Any], path: str) -> DraftOrders:
    """Check draftOrders is a Bundle of order resources; return orders and supporting ones.

    Orders are read later (`read_order`), once every resource is indexed for references.
    """
    if bundle.get("resourceType") != "Bundle":
        raise FhirError(f"{path}.resourceType", "draftOrders must be a FHIR Bundle")
    orders: list[Order] = []
    supporting: list[tuple[dict[str, Any], str | None]] = []
    skipped: list[str] = []
    for entry, at in objects(bundle, "entry", path):
        resource = opt_obj(entry, "resource", at)
        if resource is None:
            raise FhirError(f"{at}.resource", "is required")
        kind = resource_type(resource, f"{at}.resource")
        rid = string(resource, "id", f"{at}.resource")
        if kind in ORDER_TYPES:
            ref = f"{kind}/{rid}" if rid else None
            orders.append(Order(f"{at}.resource", resource, kind, ref, kind))
        elif kind in SKIPPED_ORDER_TYPES:
            skipped.append(f"{kind}/{rid}" if rid else kind)
        elif kind in SUPPORTING_TYPES:
            supporting.append((resource, string(entry, "fullUrl", at)))
        else:
            raise FhirError(
                f"{at}.resource.resourceType",
                f"`{kind}` is not supported in draftOrders (expected "
                + ", ".join(ORDER_TYPES)
                + ")",
            )
    return DraftOrders(orders, supporting, skipped)


def read_order(order: Order, resolver: Resolver) -> Order:
    """Fill `order` with the codes, date, provider, facts and attestations it carries."""
    resource, path = order.resource, order.path
    if order.kind == "ServiceRequest":
        _read_service_request(order, resource, path)
    else:
        _read_medication_request(order, resource, path, resolver)
    for concept, at in objects(resource, "reasonCode", path):
        order.diagnoses.extend(icd10_of(concept, at))
    for reference, at in objects(resource, "reasonReference", path):
        condition = resolver.resolve(reference, resource, at)
        if condition is not None and condition.get("resourceType") == "Condition":
            order.diagnoses.extend(condition_codes(condition, at))
        else:
            order.notes.append(f"reason `{reference.get('reference')}` was not to hand")
    order.date = _order_date(resource, path)
    order.provider = _provider(resource, path, resolver, order.notes)
    _read_extensions(order, resource, path)
    _read_supporting_info(order, resource, path, resolver)
    order.procedures = unique(order.procedures)
    order.diagnoses = unique(order.diagnoses)
    order.drugs = unique(order.drugs)
    return order


def _read_service_request(order: Order, resource: dict[str, Any], path: str) -> None:
    code = opt_obj(resource, "code", path)
    order.label = _label(code, path) or "service request"
    order.procedures.extend(opcs4_of(code, f"{path}.code"))
    for name in ("orderDetail", "bodySite"):
        for concept, at in objects(resource, name, path):
            order.procedures.extend(opcs4_of(concept, at))
    order.other_codes.extend(other_codes(code, f"{path}.code"))


def _read_medication_request(
    order: Order, resource: dict[str, Any], path: str, resolver: Resolver
) -> None:
    concept = opt_obj(resource, "medicationCodeableConcept", path)
    at = f"{path}.medicationCodeableConcept"
    if concept is None:
        reference = opt_obj(resource, "medicationReference", path)
        medication = (
            resolver.resolve(reference, resource, f"{path}.medicationReference")
            if reference is not None
            else None
        )
        if medication is not None and medication.get("resourceType") == "Medication":
            concept, at = opt_obj(medication, "code", "Medication"), "Medication.code"
        elif reference is not None:
            order.notes.append(f"medication `{reference.get('reference')}` was not to hand")
    order.label = _label(concept, at) or "medication request"
    name = _medication_name(concept, at)
    if name:
        order.drugs.append(name)


def _medication_name(concept: Mapping[str, Any] | None, path: str) -> str | None:
    if concept is None:
        return None
    found = codings(concept, path)
    candidates = [c.display for c in found if system_key(c.system) == DMD_KEY and c.display]
    candidates.append(string(concept, "text", path) or "")
    candidates.extend(c.display for c in found if c.display)
    for label in candidates:
        name = drug_name(label)
        if name:
            return name
    return None


def _label(concept: Mapping[str, Any] | None, path: str) -> str:
    if concept is None:
        return ""
    text = string(concept, "text", path)
    if text:
        return text
    return next((c.display for c in codings(concept, path) if c.display), "")



def _order_date(resource: Mapping[str, Any], path: str) -> dt.date | None:
    # When the activity happens selects the commissioner and policy version (financial years
    # start on 1 April), so a planned occurrence beats the date the order was written.
    period = opt_obj(resource, "occurrencePeriod", path)
    candidates = [
        (resource.get("occurrenceDateTime"), f"{path}.occurrenceDateTime"),
        (period.get("start") if period else None, f"{path}.occurrencePeriod.start"),
        (resource.get("authoredOn"), f"{path}.authoredOn"),
    ]
    for value, at in candidates:
        day = fhir_date(value, at)
        if day is not None:
            return day
    return None


def _provider(
    resource: Mapping[str, Any], path: str, resolver: Resolver, notes: list[str]
) -> str | None:
    performers = resource.get("performer")
    refs: list[tuple[Any, str]] = []
    if isinstance(performers, list):  # ServiceRequest.performer is 0..*
        refs.extend((p, f"{path}.performer[{i}]") for i, p in enumerate(performers))
    elif performers is not None:  # MedicationRequest.performer is 0..1
        refs.append((performers, f"{path}.performer"))
    if resource.get("requester") is not None:
        refs.append((resource["requester"], f"{path}.requester"))
    for raw, at in refs:
        code = _ods_of(obj(raw, at), at, resource, resolver, depth=0)
        if code is None:
            continue
        if re.fullmatch(r"[A-Za-z0-9]{3,6}", code):
            return code.upper()
        notes.append(f"ODS code `{code}` is not well formed; left out")
    return None


def _ods_of(
    reference: Mapping[str, Any],
    path: str,
    container: Mapping[str, Any],
    resolver: Resolver,
    depth: int,
) -> str | None:
    logical = opt_obj(reference, "identifier", path)
    if logical is not None:
        code = _ods_identifier([logical], f"{path}.identifier")
        if code:
            return code
    target = resolver.resolve(reference, container, path)
    if target is None or depth > 1:
        return None
    if target.get("resourceType") == "Organization":
        return _ods_identifier(array(target, "identifier", "Organization"), "Organization")
    if target.get("resourceType") == "PractitionerRole":
        organisation = opt_obj(target, "organization", "PractitionerRole")
        if organisation is not None:
            return _ods_of(organisation, "PractitionerRole.organization", target, resolver, 1)
    return None


def _ods_identifier(identifiers: Sequence[Any], path: str) -> str | None:
    for i, raw in enumerate(identifiers):
        identifier = obj(raw, f"{path}[{i}]")
        system = string(identifier, "system", path) or ""
        if system_key(system) in ODS_KEYS:
            return string(identifier, "value", path)
    return None


_VALUE_KEYS = (
    "valueString",
    "valueCode",
    "valueInteger",
    "valueDecimal",
    "valueBoolean",
    "valueDate",
    "valueDateTime",
    "valueQuantity",
    "valueCodeableConcept",
)


def _value(element: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of an extension's or Observation's value[x], as a request fact value."""
    for key in _VALUE_KEYS:
        if key not in element:
            continue
        value = element[key]
        if key == "valueQuantity":
            value = obj(value, f"{path}.{key}").get("value")
        elif key == "valueCodeableConcept":
            concept = obj(value, f"{path}.{key}")
            found = codings(concept, f"{path}.{key}")
            value = found[0].code if found else concept.get("text")
        elif key in ("valueDate", "valueDateTime"):
            day = fhir_date(value, f"{path}.{key}")
            value = day.isoformat() if day else value
        return True, value
    return False, None


def _read_extensions(order: Order, resource: Mapping[str, Any], path: str) -> None:
    for ext, at in objects(resource, "extension", path):
        url = string(ext, "url", at)
        if url == FACT_URL:
            _fact_extension(order, ext, at)
        elif url == ATTESTATION_URL:
            name = ext.get("valueCode", ext.get("valueString"))
            if not isinstance(name, str) or not name:
                raise FhirError(at, "an attestation extension needs valueCode or valueString")
            order.attestations.append(name)


def _fact_extension(order: Order, ext: Mapping[str, Any], path: str) -> None:
    name: Any = None
    found, value = _value(ext, path)
    for sub, at in objects(ext, "extension", path):
        if sub.get("url") == "name":
            name = sub.get("valueString", sub.get("valueCode"))
        elif sub.get("url") == "value":
            found, value = _value(sub, at)
    if not isinstance(name, str) or not name:
        raise FhirError(path, "a fact extension needs a nested `name` (valueString or valueCode)")
    if not found:
        raise FhirError(path, f"the fact extension `{name}` has no value[x]")
    order.facts[name] = value


def _read_supporting_info(
    order: Order, resource: Mapping[str, Any], path: str, resolver: Resolver
) -> None:
    # R4 names the element differently on the two orders we read.
    name = "supportingInfo" if order.kind == "ServiceRequest" else "supportingInformation"
    for reference, at in objects(resource, name, path):
        item = resolver.resolve(reference, resource, at)
        if item is None or item.get("resourceType") != "Observation":
            continue  # supporting information we do not map (documents, other orders…)
        for coding in codings(opt_obj(item, "code", at), f"{at}.code"):
            if coding.system == FACT_SYSTEM and coding.code:
                found, value = _value(item, at)
                if found:
                    order.facts[coding.code] = value
            elif (
                coding.system == ATTESTATION_SYSTEM
                and coding.code
                and item.get("valueBoolean") is True
            ):
                # an attestation answered false (or not yet) is simply not attested
                order.attestations.append(coding.code)

