"""The patient: birth date, sex and NHS number from a Patient, ICD-10 codes from Conditions.

Birth date from `birthDate` (a partial date is noted, never guessed); `gender` `other` →
`indeterminate`; the NHS number from `identifier`, dropped with a note if it fails the
modulus 11 check. Conditions entered in error or refuted are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.cds.access import FhirError, fhir_date, objects, opt_obj, resource_type, string
from chalicelib.cds.codes import NHS_NUMBER_KEY, codings, icd10_of, system_key
from chalicelib.engine.request import nhs_number_valid

_GENDER_TO_SEX = {"female": "female", "male": "male", "other": "indeterminate", "unknown": None}


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
    raw_birth = string(patient, "birthDate", path)
    birth = fhir_date(raw_birth, f"{path}.birthDate")
    if raw_birth is None:
        notes.append("the Patient has no birth date")
    elif birth is None:
        notes.append(f"the Patient's birth date `{raw_birth}` is not a full date")
    gender = string(patient, "gender", path)
    if gender is not None and gender not in _GENDER_TO_SEX:
        raise FhirError(f"{path}.gender", "must be one of: male, female, other, unknown")
    nhs_number = None
    for identifier, at in objects(patient, "identifier", path):
        system = string(identifier, "system", at) or ""
        value = (string(identifier, "value", at) or "").replace(" ", "")
        if system_key(system) == NHS_NUMBER_KEY and value:
            if nhs_number_valid(value):
                nhs_number = value
            else:
                notes.append("the Patient's NHS number fails the modulus 11 check; left out")
    return PatientData(birth, _GENDER_TO_SEX.get(gender or "unknown"), nhs_number, tuple(notes))


def condition_codes(condition: Mapping[str, Any], path: str) -> list[str]:
    """ICD-10 codes of a Condition, none if it was entered in error or refuted."""
    status = opt_obj(condition, "verificationStatus", path)
    if any(c.code in ("entered-in-error", "refuted") for c in codings(status, path)):
        return []
    return icd10_of(opt_obj(condition, "code", path), f"{path}.code")


def conditions_in(bundle_or_resource: Mapping[str, Any], path: str) -> list[str]:
    """ICD-10 codes of every Condition in a search Bundle (or a single Condition)."""
    if resource_type(bundle_or_resource, path) == "Condition":
        return condition_codes(bundle_or_resource, path)
    codes: list[str] = []
    for entry, at in objects(bundle_or_resource, "entry", path):
        resource = opt_obj(entry, "resource", at)
        if resource is not None and resource.get("resourceType") == "Condition":
            codes.extend(condition_codes(resource, f"{at}.resource"))
    return codes
