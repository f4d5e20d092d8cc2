"""From FHIR R4 JSON (plain dicts) to decision requests (design section 4).

In: the `draftOrders` Bundle of a CDS Hooks call, the Patient and the patient's Conditions
(prefetched or fetched). Out: one `Order` per ServiceRequest / MedicationRequest with the codes,
dates, provider, facts and attestations it carries, and `referral_request()` building the JSON
`PolicySet.decide` takes. Structurally malformed FHIR raises `FhirError` naming the JSON path;
anything well formed but unusable (SNOMED-only codes, a partial birth date, an unresolvable
reference) becomes a note, never a guess.

Why plain dicts and not `fhir.resources`: we read perhaps thirty elements; a full R4 model costs
cold-start time on Lambda (hundreds of classes), rejects the extensions and partial resources
order-select sends, and would still need our own reading of code systems.

Code systems accepted (compared without scheme, case or trailing slash):

* OPCS-4: `http(s)://fhir.hl7.org.uk/CodeSystem/OPCS-4` (HL7 UK) and
  `http(s)://fhir.hl7.org.uk/R4/CodeSystem/OPCS-4` (the form NHS terminology tooling publishes).
  Read from `ServiceRequest.code`, then `orderDetail`, then `bodySite` (OPCS-4 Z site codes), in
  that order: the first is the dominant procedure.
* ICD-10: `http://hl7.org/fhir/sid/icd-10` and `http://hl7.org/fhir/sid/icd-10-uk` (the NHS
  5th Edition). From the order's `reasonCode`, then `reasonReference` Conditions, then the
  patient's Conditions; the first is the primary diagnosis.
* Drugs: the name (leading words before a strength or dose form, lowercased) of the display of
  a dm+d coding (`https://dmd.nhs.uk`), else `text`, else any coding's display, of
  `medicationCodeableConcept` or the referenced Medication's `code`.
* Provider: the ODS code (`https://fhir.nhs.uk/Id/ods-organization-code`) of the performer,
  else the requester: a logical `Reference.identifier`, or a contained / bundled / prefetched
  Organization, or a PractitionerRole's `organization`.
* Patient: `birthDate`, `gender` (`other` → `indeterminate`), NHS number from `identifier`
  (`https://fhir.nhs.uk/Id/nhs-number`, dropped with a note if it fails the modulus 11 check).

Facts and attestations (see `FACT_URL`, `ATTESTATION_URL`, `FACT_SYSTEM`, `ATTESTATION_SYSTEM`):

* order extension `FACT_URL` with nested `name` (valueString|valueCode) and nested `value`
  (valueString|valueCode|valueInteger|valueDecimal|valueBoolean|valueDate|valueDateTime|
  valueQuantity); a top-level value[x] beside the nested `name` is accepted too;
* order extension `ATTESTATION_URL` with valueCode|valueString = the attestation's name;
* `supportingInfo` references to Observations whose `code` has a `FACT_SYSTEM` coding (code =
  fact name, value[x] = value) or an `ATTESTATION_SYSTEM` coding with valueBoolean true.

Fact names `treatment_function`, `region` and `icb` fill the request fields of those names.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.engine.request import nhs_number_valid
from chalicelib.errors import Problem, PssError

FACT_URL = "https://pss-rules.example/fhir/StructureDefinition/fact"
ATTESTATION_URL = "https://pss-rules.example/fhir/StructureDefinition/attestation"
FACT_SYSTEM = "https://pss-rules.example/fhir/CodeSystem/fact"
ATTESTATION_SYSTEM = "https://pss-rules.example/fhir/CodeSystem/attestation"

OPCS4 = "http://fhir.hl7.org.uk/CodeSystem/OPCS-4"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DMD = "https://dmd.nhs.uk"
SNOMED = "http://snomed.info/sct"
ODS_ORGANISATION = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"


def _key(system: str) -> str:
    """Compare code-system URIs without scheme, case or trailing slash (EPRs vary on all)."""
    return re.sub(r"^https?://", "", system.strip().lower()).rstrip("/")


_OPCS4_KEYS = frozenset(_key(s) for s in (OPCS4, "http://fhir.hl7.org.uk/R4/CodeSystem/OPCS-4"))
_ICD10_KEYS = frozenset(_key(s) for s in (ICD10, "http://hl7.org/fhir/sid/icd-10-uk"))
_DMD_KEY = _key(DMD)
_SNOMED_KEY = _key(SNOMED)
_ODS_KEYS = frozenset(
    _key(s) for s in (ODS_ORGANISATION, "https://fhir.nhs.uk/Id/ods-organisation-code")
)
_NHS_NUMBER_KEY = _key(NHS_NUMBER)

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
_FHIR_DATE = re.compile(r"^(\d{4})(-(\d{2})(-(\d{2}))?)?(T.*)?$")
_GENDER_TO_SEX = {"female": "female", "male": "male", "other": "indeterminate", "unknown": None}
_DOSE_WORDS = frozenset(
    {
        *("tablet", "tablets", "capsule", "capsules", "solution", "injection", "infusion"),
        *("powder", "concentrate", "oral", "suspension", "cream", "ointment", "gel", "patch"),
        *("patches", "pre-filled", "prefilled", "syringe", "syringes", "vial", "vials", "for"),
        *("ampoules", "modified-release", "gastro-resistant", "dispersible"),
    }
)


class FhirError(PssError):
    """FHIR that is not well formed; `details` names each bad element by JSON path."""

    code = "invalid_request"
    status = 400

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path}: {problem}", [Problem(field_path, problem)])


# --- typed access: every read either gets the JSON type FHIR defines or raises FhirError ---


def obj(value: Any, path: str) -> dict[str, Any]:
    """Return `value` if it is a JSON object, else raise FhirError at `path`."""
    if not isinstance(value, dict):
        raise FhirError(path, "must be a JSON object")
    return value


def _opt_obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = parent.get(key)
    return None if value is None else obj(value, f"{path}.{key}")


def _list(parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FhirError(f"{path}.{key}", "must be a JSON array")
    return value


def _str(parent: Mapping[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FhirError(f"{path}.{key}", "must be a string")
    return value


def _objs(parent: Mapping[str, Any], key: str, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    for i, item in enumerate(_list(parent, key, path)):
        yield obj(item, f"{path}.{key}[{i}]"), f"{path}.{key}[{i}]"


def fhir_date(value: Any, path: str) -> dt.date | None:
    """Read a FHIR date/dateTime as its calendar date; None when only year or month is given."""
    if value is None:
        return None
    match = _FHIR_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise FhirError(path, "must be a FHIR date or dateTime (YYYY, YYYY-MM or YYYY-MM-DD…)")
    if match.group(5) is None:
        return None  # a partial date: well formed, but not precise enough to compute an age
    try:
        return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(5)))
    except ValueError:
        raise FhirError(path, f"`{value}` is not a real date") from None


def resource_type(resource: Mapping[str, Any], path: str) -> str:
    """Return `resourceType`, raising FhirError when it is missing or not a string."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise FhirError(f"{path}.resourceType", "is required (a FHIR resource type)")
    return kind


@dataclass(frozen=True)
class CodingIn:
    """One coding as written: system, code and display, each possibly absent."""

    system: str
    code: str
    display: str


def codings(concept: Mapping[str, Any] | None, path: str) -> list[CodingIn]:
    """Return the codings of a CodeableConcept (empty strings for absent parts)."""
    if concept is None:
        return []
    out = []
    for coding, at in _objs(concept, "coding", path):
        out.append(
            CodingIn(
                _str(coding, "system", at) or "",
                _str(coding, "code", at) or "",
                _str(coding, "display", at) or "",
            )
        )
    return out


# --- resolving references ---


@dataclass
class Resolver:
    """Finds referenced resources: contained (`#id`), then the Bundle, then the prefetch."""

    by_reference: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, resource: Mapping[str, Any], full_url: str | None = None) -> None:
        """Index a resource under `Type/id` and its Bundle `fullUrl`."""
        kind, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(kind, str) and isinstance(rid, str):
            self.by_reference.setdefault(f"{kind}/{rid}", dict(resource))
        if full_url:
            self.by_reference.setdefault(full_url, dict(resource))

    def resolve(
        self, reference: Mapping[str, Any], container: Mapping[str, Any], path: str
    ) -> dict[str, Any] | None:
        """Return the resource a Reference points at, or None when it is not to hand."""
        ref = _str(reference, "reference", path)
        if not ref:
            return None
        if ref.startswith("#"):
            for item, _ in _objs(container, "contained", "contained"):
                if item.get("id") == ref[1:]:
                    return item
            return None
        found = self.by_reference.get(ref)
        if found is None and "/" in ref:
            # An absolute URL on the EHR's server still ends in Type/id.
            found = self.by_reference.get("/".join(ref.rstrip("/").split("/")[-2:]))
        return found


# --- the patient ---


@dataclass(frozen=True)
class PatientData:
    """What the request needs from the Patient resource."""

    birth_date: dt.date | None
    sex: str | None
    nhs_number: str | None
    notes: tuple[str, ...] = ()


def read_patient(patient: Mapping[str, Any], path: str) -> PatientData:
    """Read birth date, sex and NHS number from a Patient resource."""
    notes = []
    raw_birth = _str(patient, "birthDate", path)
    birth = fhir_date(raw_birth, f"{path}.birthDate")
    if raw_birth is None:
        notes.append("the Patient has no birth date")
    elif birth is None:
        notes.append(f"the Patient's birth date `{raw_birth}` is not a full date")
    gender = _str(patient, "gender", path)
    if gender is not None and gender not in _GENDER_TO_SEX:
        raise FhirError(f"{path}.gender", "must be one of: male, female, other, unknown")
    nhs_number = None
    for identifier, at in _objs(patient, "identifier", path):
        system = _str(identifier, "system", at) or ""
        value = (_str(identifier, "value", at) or "").replace(" ", "")
        if _key(system) == _NHS_NUMBER_KEY and value:
            if nhs_number_valid(value):
                nhs_number = value
            else:
                notes.append("the Patient's NHS number fails the modulus 11 check; left out")
    return PatientData(birth, _GENDER_TO_SEX.get(gender or "unknown"), nhs_number, tuple(notes))


def condition_codes(condition: Mapping[str, Any], path: str) -> list[str]:
    """ICD-10 codes of a Condition, none if it was entered in error or refuted."""
    status = _opt_obj(condition, "verificationStatus", path)
    if any(c.code in ("entered-in-error", "refuted") for c in codings(status, path)):
        return []
    return icd10_of(_opt_obj(condition, "code", path), f"{path}.code")


def conditions_in(bundle_or_resource: Mapping[str, Any], path: str) -> list[str]:
    """ICD-10 codes of every Condition in a search Bundle (or a single Condition)."""
    if resource_type(bundle_or_resource, path) == "Condition":
        return condition_codes(bundle_or_resource, path)
    codes: list[str] = []
    for entry, at in _objs(bundle_or_resource, "entry", path):
        resource = _opt_obj(entry, "resource", at)
        if resource is not None and resource.get("resourceType") == "Condition":
            codes.extend(condition_codes(resource, f"{at}.resource"))
    return codes


def icd10_of(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    """ICD-10 codes among a CodeableConcept's codings."""
    return [c.code for c in codings(concept, path) if c.code and _key(c.system) in _ICD10_KEYS]


def opcs4_of(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    """OPCS-4 codes among a CodeableConcept's codings."""
    return [c.code for c in codings(concept, path) if c.code and _key(c.system) in _OPCS4_KEYS]


def drug_name(label: str) -> str | None:
    """The medicine's name from a dm+d-style description: `Cetuximab 5mg/ml …` → `cetuximab`.

    Words are kept up to the first strength (a word with a digit) or dose-form word; brand
    names (dm+d AMPs) stay as they are, since mapping a brand to its VTM needs dm+d itself.
    """
    words = []
    for word in label.replace(",", " ").split():
        if any(ch.isdigit() for ch in word) or word.lower() in _DOSE_WORDS:
            break
        words.append(word.lower())
    return " ".join(words) or None


# --- orders ---


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
    for entry, at in _objs(bundle, "entry", path):
        resource = _opt_obj(entry, "resource", at)
        if resource is None:
            raise FhirError(f"{at}.resource", "is required")
        kind = resource_type(resource, f"{at}.resource")
        rid = _str(resource, "id", f"{at}.resource")
        if kind in ORDER_TYPES:
            ref = f"{kind}/{rid}" if rid else None
            orders.append(Order(f"{at}.resource", resource, kind, ref, kind))
        elif kind in SKIPPED_ORDER_TYPES:
            skipped.append(f"{kind}/{rid}" if rid else kind)
        elif kind in SUPPORTING_TYPES:
            supporting.append((resource, _str(entry, "fullUrl", at)))
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
    for concept, at in _objs(resource, "reasonCode", path):
        order.diagnoses.extend(icd10_of(concept, at))
    for reference, at in _objs(resource, "reasonReference", path):
        condition = resolver.resolve(reference, resource, at)
        if condition is not None and condition.get("resourceType") == "Condition":
            order.diagnoses.extend(condition_codes(condition, at))
        else:
            order.notes.append(f"reason `{reference.get('reference')}` was not to hand")
    order.date = _order_date(resource, path)
    order.provider = _provider(resource, path, resolver, order.notes)
    _read_extensions(order, resource, path)
    _read_supporting_info(order, resource, path, resolver)
    order.procedures = _unique(order.procedures)
    order.diagnoses = _unique(order.diagnoses)
    order.drugs = _unique(order.drugs)
    return order


def _read_service_request(order: Order, resource: dict[str, Any], path: str) -> None:
    code = _opt_obj(resource, "code", path)
    order.label = _label(code, path) or "service request"
    order.procedures.extend(opcs4_of(code, f"{path}.code"))
    for name in ("orderDetail", "bodySite"):
        for concept, at in _objs(resource, name, path):
            order.procedures.extend(opcs4_of(concept, at))
    order.other_codes.extend(_other_codes(code, f"{path}.code"))


def _read_medication_request(
    order: Order, resource: dict[str, Any], path: str, resolver: Resolver
) -> None:
    concept = _opt_obj(resource, "medicationCodeableConcept", path)
    at = f"{path}.medicationCodeableConcept"
    if concept is None:
        reference = _opt_obj(resource, "medicationReference", path)
        medication = (
            resolver.resolve(reference, resource, f"{path}.medicationReference")
            if reference is not None
            else None
        )
        if medication is not None and medication.get("resourceType") == "Medication":
            concept, at = _opt_obj(medication, "code", "Medication"), "Medication.code"
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
    candidates = [c.display for c in found if _key(c.system) == _DMD_KEY and c.display]
    candidates.append(_str(concept, "text", path) or "")
    candidates.extend(c.display for c in found if c.display)
    for label in candidates:
        name = drug_name(label)
        if name:
            return name
    return None


def _label(concept: Mapping[str, Any] | None, path: str) -> str:
    if concept is None:
        return ""
    text = _str(concept, "text", path)
    if text:
        return text
    return next((c.display for c in codings(concept, path) if c.display), "")


def _other_codes(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    out = []
    for c in codings(concept, path):
        if c.code and _key(c.system) not in _OPCS4_KEYS:
            system = "SNOMED CT" if _key(c.system) == _SNOMED_KEY else (c.system or "no system")
            out.append(f"{system} {c.code}" + (f" ({c.display})" if c.display else ""))
    return out


def _order_date(resource: Mapping[str, Any], path: str) -> dt.date | None:
    # When the activity happens selects the commissioner and policy version (financial years
    # start on 1 April), so a planned occurrence beats the date the order was written.
    period = _opt_obj(resource, "occurrencePeriod", path)
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
    logical = _opt_obj(reference, "identifier", path)
    if logical is not None:
        code = _ods_identifier([logical], f"{path}.identifier")
        if code:
            return code
    target = resolver.resolve(reference, container, path)
    if target is None or depth > 1:
        return None
    if target.get("resourceType") == "Organization":
        return _ods_identifier(_list(target, "identifier", "Organization"), "Organization")
    if target.get("resourceType") == "PractitionerRole":
        organisation = _opt_obj(target, "organization", "PractitionerRole")
        if organisation is not None:
            return _ods_of(organisation, "PractitionerRole.organization", target, resolver, 1)
    return None


def _ods_identifier(identifiers: Sequence[Any], path: str) -> str | None:
    for i, raw in enumerate(identifiers):
        identifier = obj(raw, f"{path}[{i}]")
        system = _str(identifier, "system", path) or ""
        if _key(system) in _ODS_KEYS:
            return _str(identifier, "value", path)
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
    for ext, at in _objs(resource, "extension", path):
        url = _str(ext, "url", at)
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
    for sub, at in _objs(ext, "extension", path):
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
    for reference, at in _objs(resource, "supportingInfo", path):
        item = resolver.resolve(reference, resource, at)
        if item is None or item.get("resourceType") != "Observation":
            continue  # supporting information we do not map (documents, other orders…)
        for coding in codings(_opt_obj(item, "code", at), f"{at}.code"):
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


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- the request ---

TOP_LEVEL_FACTS = ("treatment_function", "region", "icb")


def referral_request(
    order: Order,
    patient: PatientData,
    patient_diagnoses: Sequence[str],
    day: dt.date,
) -> dict[str, Any]:
    """Build the JSON `PolicySet.decide` takes (design section 4) for one order.

    The order's own diagnoses come first (the first is primary); the patient's recorded
    conditions follow as secondary diagnoses. `day` is the order's date or the hook call's.
    """
    if patient.birth_date is None:
        raise ValueError("a referral request needs the patient's birth date")
    facts = dict(order.facts)
    patient_json: dict[str, Any] = {"birth_date": patient.birth_date.isoformat()}
    for name in ("region", "icb"):
        if name in facts:
            patient_json[name] = facts.pop(name)
    if patient.sex:
        patient_json["sex"] = patient.sex
    if patient.nhs_number:
        patient_json["nhs_number"] = patient.nhs_number
    request: dict[str, Any] = {
        "date": day.isoformat(),
        "patient": patient_json,
        "procedures": order.procedures,
        "diagnoses": _unique([*order.diagnoses, *patient_diagnoses]),
        "drugs": order.drugs,
        "facts": facts,
        "attestations": _unique(order.attestations),
    }
    if "treatment_function" in facts:
        request["treatment_function"] = facts.pop("treatment_function")
    if order.provider:
        request["provider"] = {"ods_code": order.provider}
    if order.reference and len(order.reference) <= 128:
        request["referral_id"] = order.reference
    return request


__all__ = [
    "ATTESTATION_SYSTEM",
    "ATTESTATION_URL",
    "FACT_SYSTEM",
    "FACT_URL",
    "ICD10",
    "OPCS4",
    "DraftOrders",
    "FhirError",
    "Order",
    "PatientData",
    "Resolver",
    "conditions_in",
    "drug_name",
    "read_order",
    "read_patient",
    "referral_request",
    "split_draft_orders",
]
