"""Validators other people wrote, run over everything the CDS service sends.

* Every CDS Hooks response against `cds-hooks-2.0-response.schema.json` (written from the
  CDS Hooks 2.0 text, sections cited inside), checked by `jsonschema`.
* Every FHIR resource in a system action or suggestion by `fhir.resources` (its R4B models:
  the package has no pydantic-2 R4 build, and R4B changed none of the resources we emit:
  ServiceRequest, MedicationRequest, Extension, Reference).
* Every Da Vinci CRD coverage-information extension against the profile's required elements
  and its invariants crd-ci-q1..q9, evaluated by the `fhirpathpy` FHIRPath engine. The
  expressions are copied verbatim from HL7/davinci-crd `input/fsh/extensions/
  CoverageInformation.fsh` (commit 2bfabc15e9552fcbf30fe2b83a679ac839d7b6ed).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from fhir.resources.R4B import get_fhir_model_class
from fhirpathpy import evaluate
from fhirpathpy.models import models

SCHEMA = Path(__file__).with_name("cds-hooks-2.0-response.schema.json")
CRD_URL = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
# CoverageInformation.fsh: `extension contains ... coverage 1..1, covered 1..1, date 1..1,
# coverage-assertion-id 1..1`; pa-needed and satisfied-pa-id 0..1.
CRD_REQUIRED_ONCE = ("coverage", "covered", "date", "coverage-assertion-id")
CRD_AT_MOST_ONCE = ("pa-needed", "satisfied-pa-id", "expiry-date")
CRD_SLICES = frozenset({
    "coverage", "covered", "pa-needed", "doc-needed", "doc-purpose", "info-needed",
    "billingCode", "reason", "detail", "dependency", "questionnaire", "date",
    "coverage-assertion-id", "satisfied-pa-id", "contact", "expiry-date"})
CRD_INVARIANTS = {
    "crd-ci-q1": "extension.where(url='questionnaire').exists() implies extension.where(url = 'doc-needed').exists()",
    "crd-ci-q2": "extension.where(url = 'covered' and value = 'not-covered').exists() implies extension.where(url = 'pa-needed').exists().not()",
    "crd-ci-q3": "extension.where((url = 'covered' or url = 'pa-needed' or url = 'doc-needed') and value = 'conditional').count() >= 1 implies extension.where(url = 'info-needed').exists()",
    "crd-ci-q4": "extension.where(url = 'pa-needed' and (value = 'satisfied' or value = 'noauth' or value = 'not-covered')) and extension.where(url = 'doc-purpose').exists() implies extension.where(url = 'doc-purpose').all(value != 'withpa')",
    "crd-ci-q5": "extension.where(url = 'pa-needed' and value = 'satisfied').exists() = extension.where(url = 'satisfied-pa-id').exists()",
    "crd-ci-q6": "extension.where(url = 'info-needed' and value = 'OTH').exists() implies extension.where(url = 'reason').exists()",
    # q7's memberOf() needs a terminology server; its other branch (reason text) is checked.
    "crd-ci-q7": "extension.where(url = 'reason').empty() or extension.where(url = 'reason').value.text.exists()",
    "crd-ci-q8": "extension.where(url = 'doc-purpose' and value != 'conditional').exists() implies extension.where(url = 'reason').exists()",
    "crd-ci-q9": "extension.where((url = 'covered' or url = 'pa-needed' or url = 'doc-needed') and value = 'indeterminate').count() >= 1 implies extension.where(url = 'reason').exists()",
}
# CRDCoveredInfo / CRDCoveragePaDetail / CRDInformationNeeded (required bindings).
CRD_CODES = {
    "covered": {"covered", "not-covered", "conditional", "indeterminate"},
    "pa-needed": {"no-auth", "auth-needed", "satisfied", "performpa", "conditional",
                  "indeterminate"},
    "info-needed": {"performer", "location", "timeframe", "contract-window", "detail-code",
                    "OTH"},
}


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(body: Any) -> list[str]:
    """Every way `body` breaks the CDS Hooks 2.0 response schema (empty when it conforms)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in _validator().iter_errors(body)]


def fhir_errors(resource: dict[str, Any]) -> list[str]:
    """What `fhir.resources` finds wrong with one resource (empty when valid)."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:  # pydantic's ValidationError, or an unknown resourceType
        return [str(exc)]
    return []


def crd_errors(extension: dict[str, Any]) -> list[str]:
    """What breaks the CRD coverage-information profile in one extension."""
    errors = []
    urls = [part.get("url") for part in extension.get("extension", [])]
    for name in CRD_REQUIRED_ONCE:
        if urls.count(name) != 1:
            errors.append(f"`{name}` must appear once, not {urls.count(name)} times")
    for name in CRD_AT_MOST_ONCE:
        if urls.count(name) > 1:
            errors.append(f"`{name}` may appear at most once")
    errors += [f"`{url}` is not an element of the profile" for url in urls
               if url not in CRD_SLICES]
    for part in extension.get("extension", []):
        allowed = CRD_CODES.get(part.get("url"))
        if allowed is not None and part.get("valueCode") not in allowed:
            errors.append(f"`{part['url']}` = {part.get('valueCode')!r} is not in its value set")
    types = {"coverage": "valueReference", "date": "valueDate",
             "coverage-assertion-id": "valueString", "reason": "valueCodeableConcept"}
    for part in extension.get("extension", []):
        wanted = types.get(part.get("url"))
        if wanted is not None and wanted not in part:
            errors.append(f"`{part['url']}` must have {wanted}")
    for name, expression in CRD_INVARIANTS.items():
        if evaluate(extension, expression, {}, models["r4"]) != [True]:
            errors.append(f"invariant {name} fails")
    return errors


def response_errors(body: dict[str, Any], *, fhir: bool = True) -> list[str]:
    """Everything the three validators find in one CDS Hooks response (`fhir=False`: all
    but fhir.resources)."""
    errors = schema_errors(body)
    resources = [a["resource"] for a in body.get("systemActions", []) if "resource" in a]
    for card in body.get("cards", []):
        for suggestion in card.get("suggestions", []):
            resources += [a["resource"] for a in suggestion.get("actions", [])
                          if "resource" in a]
    for resource in resources:
        errors += fhir_errors(resource) if fhir else []
        for extension in resource.get("extension", []):
            if extension.get("url") == CRD_URL:
                errors += crd_errors(extension)
    return errors
