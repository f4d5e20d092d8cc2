"""Code systems and identifier systems we read and write, and reading codes out of FHIR.

Accepted on input (compared without scheme, case or trailing slash, so `http://` and
`https://` forms of one URI are the same system; FHIR itself would call them different):

* OPCS-4: `http://fhir.hl7.org.uk/CodeSystem/OPCS-4` (HL7 UK; the one URI we write) and
  `http://fhir.hl7.org.uk/R4/CodeSystem/OPCS-4` (the form NHS terminology tooling publishes).
* ICD-10: `http://hl7.org/fhir/sid/icd-10` and `http://hl7.org/fhir/sid/icd-10-uk` (the NHS
  5th Edition).
* dm+d: `https://dmd.nhs.uk`; SNOMED CT: `http://snomed.info/sct` (read, never mapped).
* ODS organisation codes: `https://fhir.nhs.uk/Id/ods-organization-code` (and the `-organisation-`
  spelling); NHS numbers: `https://fhir.nhs.uk/Id/nhs-number`.

Facts and attestations come in on our own extension URLs and code systems (`FACT_URL`,
`ATTESTATION_URL`, `FACT_SYSTEM`, `ATTESTATION_SYSTEM`); `chalicelib.cds.orders` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.cds.access import objects, string

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


def system_key(system: str) -> str:
    """Compare code-system URIs without scheme, case or trailing slash (EPRs vary on all)."""
    return re.sub(r"^https?://", "", system.strip().lower()).rstrip("/")


OPCS4_KEYS = frozenset(system_key(s) for s in (OPCS4, "http://fhir.hl7.org.uk/R4/CodeSystem/OPCS-4"))
ICD10_KEYS = frozenset(system_key(s) for s in (ICD10, "http://hl7.org/fhir/sid/icd-10-uk"))
DMD_KEY = system_key(DMD)
SNOMED_KEY = system_key(SNOMED)
ODS_KEYS = frozenset(
    system_key(s) for s in (ODS_ORGANISATION, "https://fhir.nhs.uk/Id/ods-organisation-code")
)
NHS_NUMBER_KEY = system_key(NHS_NUMBER)
_DOSE_WORDS = frozenset(
    {
        *("tablet", "tablets", "capsule", "capsules", "solution", "injection", "infusion"),
        *("powder", "concentrate", "oral", "suspension", "cream", "ointment", "gel", "patch"),
        *("patches", "pre-filled", "prefilled", "syringe", "syringes", "vial", "vials", "for"),
        *("ampoules", "modified-release", "gastro-resistant", "dispersible"),
    }
)


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
    for coding, at in objects(concept, "coding", path):
        out.append(
            CodingIn(
                string(coding, "system", at) or "",
                string(coding, "code", at) or "",
                string(coding, "display", at) or "",
            )
        )
    return out


def icd10_of(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    """ICD-10 codes among a CodeableConcept's codings."""
    return [c.code for c in codings(concept, path) if c.code and system_key(c.system) in ICD10_KEYS]


def opcs4_of(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    """OPCS-4 codes among a CodeableConcept's codings."""
    return [c.code for c in codings(concept, path) if c.code and system_key(c.system) in OPCS4_KEYS]


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



def other_codes(concept: Mapping[str, Any] | None, path: str) -> list[str]:
    """Codes other than OPCS-4, for cards to name (`SNOMED CT 40701008 (Echocardiography)`)."""
    out = []
    for c in codings(concept, path):
        if c.code and system_key(c.system) not in OPCS4_KEYS:
            known = system_key(c.system) == SNOMED_KEY
            system = "SNOMED CT" if known else (c.system or "no system")
            out.append(f"{system} {c.code}" + (f" ({c.display})" if c.display else ""))
    return out

