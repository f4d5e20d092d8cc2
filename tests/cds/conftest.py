"""CDS Hooks fixtures: a small real pack, a recording `decide`, and real-shaped hook requests.

The requests follow the CDS Hooks specification's order-sign / order-select examples (a
`draftOrders` Bundle of draft R4 ServiceRequest / MedicationRequest resources, prefetch keyed
as our discovery document declares) with NHS code systems.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.api.schemas import DecisionOut
from chalicelib.cds import codes as fhir
from chalicelib.cds.recorded import Fetch
from chalicelib.cds.service import Answer, HookRequestError, handle
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import UnknownNameError
from tests.conftest import build
from tests.support.cds_conformance import response_errors

PACK = """
fact ras_status: enum(wild_type, mutant, unknown) "RAS status"
fact line_of_therapy: int "line of therapy"
attestation consultant "prescribed by a consultant"
codeset TAVI: opcs4 = K26.2
codeset TAVI_APPROACH: opcs4 = Y49.4, Y53.1-Y53.9, Y79.1-Y79.4, Y79.8, Y79.9
codeset CHD: icd10 = Q20-Q28
codeset COLORECTAL: icd10 = C18-C20
codeset CETUXIMAB: drug = cetuximab
line NCBPS13A "Adult specialist cardiac services"
line NCBPS02Z "Cancer drugs"
service "7" "Adult specialist cardiac services" {
  lines NCBPS13A
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
  commissioner icb_delegated from 2024-04-01 in region "East of England", "Midlands", "North West"
}
service "105" "Cancer drugs" {
  lines NCBPS02Z
  programme cancer_and_blood
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
}
rule tavi "TAVI" { line NCBPS13A rank 2 when dominant procedure in TAVI and any procedure in TAVI_APPROACH }
rule chd "ACHD" { line NCBPS13A rank 3 when primary diagnosis in CHD and age >= 16 }
rule cetuximab "Cetuximab" { line NCBPS02Z rank 4 when any drug in CETUXIMAB }
policy "CET5" version 2 "Cetuximab" {
  effective from 2020-04-01
  governs NCBPS02Z
  rank 10
  applies when any diagnosis in COLORECTAL
  criteria all of {
    attested consultant
    ras_status is wild_type
    line_of_therapy == 1
  }
  when met: prior_approval via "Blueteq CET5"
  when not met: not_eligible
}
"""

TODAY = dt.date(2025, 6, 1)
HOOK_INSTANCE = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
FHIR_SERVER = "https://epr.example.nhs.uk/fhir"
TOKEN = "some-opaque-fhir-access-token"
DMD_CETUXIMAB = "Cetuximab 5mg/ml solution for infusion 100ml vials"


@pytest.fixture(scope="session")
def policy_set() -> PolicySet:
    return build(PACK)


@dataclass
class Recorder:
    """A fake decision store around a real PolicySet: assigns ids, keeps every call."""

    policy_set: PolicySet
    calls: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def decide(self, request: dict[str, Any], hook_instance: str) -> DecisionOut:
        self.calls.append((copy.deepcopy(request), hook_instance))
        body = self.policy_set.decide(request).to_dict()
        return DecisionOut.model_validate({"decision_id": f"01JDCDS{len(self.calls):04d}",
                                           "version": 1, "recorded": True, **body})


@pytest.fixture
def recorder(policy_set: PolicySet) -> Recorder:
    return Recorder(policy_set)


@dataclass
class FakeFetch:
    """A `fetch` answering from a dict of relative URL → resource, recording calls."""

    answers: dict[str, dict[str, Any]]
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, server: str, token: str, relative: str) -> dict[str, Any] | None:
        self.calls.append((server, token, relative))
        return copy.deepcopy(self.answers.get(relative))


BASE = "https://pss.example.nhs.uk"


def answer_of(service: str, body: Any, recorder: Recorder, fetch: Fetch | None = None,
              base_url: str = BASE) -> Answer:
    """`handle`, with the decision recorder and the test date."""
    return handle(service, body, decide=recorder.decide, fetch=fetch, today=TODAY,
                  base_url=base_url)


def run(service: str, body: Any, recorder: Recorder, fetch: Fetch | None = None,
        base_url: str = BASE, *, valid_orders: bool = True) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) as the route would answer; every 200 body is checked by the
    CDS Hooks schema, fhir.resources and the CRD invariants (`tests.support.cds_conformance`).

    `valid_orders=False` skips fhir.resources for the orders we echo back (CRD resp-37: we
    change nothing but our extensions, so an order the EHR sent broken comes back broken)."""
    try:
        answer = answer_of(service, body, recorder, fetch, base_url)
    except UnknownNameError as exc:
        return 404, {"error": {"code": "not_found", "message": str(exc), "details": []}}
    except HookRequestError as exc:
        return 400, {"error": {"code": "invalid_request", "message": exc.message,
                               "details": [d.to_dict() for d in exc.details]}}
    out = answer.response.model_dump(mode="json")
    assert response_errors(out, fhir=valid_orders) == []
    return 200, out


# --- FHIR resources ---


def patient(birth_date: str = "1944-03-12", gender: str = "female") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "example",
        "identifier": [{"system": fhir.NHS_NUMBER, "value": "9434765919"}],
        "name": [{"family": "Smith", "given": ["Ann"]}],
        "gender": gender,
        "birthDate": birth_date,
    }


def condition(code: str, display: str, cid: str = "c1") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": fhir.ICD10, "code": code, "display": display}]},
        "subject": {"reference": "Patient/example"},
    }


def conditions_bundle(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"fullUrl": f"{FHIR_SERVER}/Condition/{c['id']}", "resource": c}
                  for c in conditions],
    }


def tavi_order() -> dict[str, Any]:
    """A draft TAVI referral: OPCS-4 K26.2 with approach Y53.1, for aortic stenosis."""
    return {
        "resourceType": "ServiceRequest",
        "id": "tavi-1",
        "status": "draft",
        "intent": "order",
        "contained": [{
            "resourceType": "Organization",
            "id": "bart",
            "identifier": [{"system": fhir.ODS_ORGANISATION, "value": "R1H"}],
            "name": "Barts Health NHS Trust",
        }],
        "code": {
            "coding": [
                {"system": "http://snomed.info/sct", "code": "725351001",
                 "display": "Transcatheter aortic valve implantation"},
                {"system": "http://fhir.hl7.org.uk/CodeSystem/OPCS-4", "code": "K26.2",
                 "display": "Xenograft replacement of aortic valve"},
            ],
            "text": "Transcatheter aortic valve implantation",
        },
        "orderDetail": [{"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/OPCS-4",
                                     "code": "Y53.1", "display": "Approach to organ under "
                                     "radiological control"}]}],
        "subject": {"reference": "Patient/example"},
        "occurrenceDateTime": "2025-06-20",
        "authoredOn": "2025-06-01T09:30:00+01:00",
        "requester": {"reference": "Practitioner/example"},
        "performer": [{"reference": "#bart"}],
        "reasonCode": [{"coding": [{"system": fhir.ICD10, "code": "I35.0",
                                    "display": "Aortic (valve) stenosis"}]}],
    }


def fact_extension(name: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"url": fhir.FACT_URL, "extension": [
        {"url": "name", "valueString": name}, {"url": "value", value_key: value}]}


def cetuximab_order(*, facts: bool = True) -> dict[str, Any]:
    """A draft cetuximab prescription coded in dm+d, with CET5 facts as extensions."""
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "cetux-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{
            "system": "https://dmd.nhs.uk", "code": "36039611000001101",
            "display": DMD_CETUXIMAB}]},
        "subject": {"reference": "Patient/example"},
        "authoredOn": "2025-06-01",
        # What the order rests on travels with it: the prescriber's role and the reason.
        "contained": [practitioner_role(),
                      condition("C18.7", "Malignant neoplasm of sigmoid colon", "crc")],
        "requester": {"reference": "#onc", "display": "Consultant medical oncologist"},
        "reasonReference": [{"reference": "#crc"}],
        "dosageInstruction": [{"text": "400 mg/m2 IV loading dose then 250 mg/m2 weekly"}],
    }
    if facts:
        order["extension"] = [
            fact_extension("ras_status", "valueCode", "wild_type"),
            fact_extension("line_of_therapy", "valueInteger", 1),
            {"url": fhir.ATTESTATION_URL, "valueCode": "consultant"},
        ]
    return order


def snomed_only_order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "echo-1",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "40701008",
                             "display": "Echocardiography"}]},
        "subject": {"reference": "Patient/example"},
        "authoredOn": "2025-06-01",
    }


def practitioner_role() -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": "onc",
        "organization": {"identifier": {"system": fhir.ODS_ORGANISATION, "value": "RPY"},
                         "display": "The Royal Marsden NHS Foundation Trust"},
    }


def draft_orders(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


def hook_request(
    hook: str = "order-sign",
    orders: list[dict[str, Any]] | None = None,
    *,
    prefetch: dict[str, Any] | None = None,
    with_server: bool = False,
    selections: list[str] | None = None,
) -> dict[str, Any]:
    """A CDS Hooks call in the shape of the specification's order-sign example."""
    if orders is None:
        orders = [tavi_order(), cetuximab_order(), snomed_only_order()]
    body: dict[str, Any] = {
        "hookInstance": HOOK_INSTANCE,
        "hook": hook,
        "context": {
            "userId": "PractitionerRole/onc",
            "patientId": "example",
            "encounterId": "enc-89284",
            # Orders only: the specification allows nothing else in draftOrders.
            "draftOrders": draft_orders(*orders),
        },
        "prefetch": prefetch if prefetch is not None else {
            "patient": patient(),
            "conditions": conditions_bundle(condition("I10", "Essential hypertension")),
        },
    }
    if with_server:
        body["fhirServer"] = FHIR_SERVER
        body["fhirAuthorization"] = {
            "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
            "scope": "user/Patient.read user/Condition.read", "subject": "cds-service4"}
    if selections is not None:
        body["context"]["selections"] = selections
    return body
