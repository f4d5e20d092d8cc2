"""Reading FHIR: code systems, drug names, dates, summaries, and robustness to any JSON."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.cds import fhir
from chalicelib.cds.models import SUMMARY_MAX
from chalicelib.cds.service import ORDER_SELECT, ORDER_SIGN, _summary, handle
from tests.cds.conftest import TODAY, FakeFetch, Recorder, hook_request, patient


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("Cetuximab 5mg/ml solution for infusion 100ml vials", "cetuximab"),
        ("Cetuximab", "cetuximab"),
        ("Trastuzumab deruxtecan 100mg powder for concentrate", "trastuzumab deruxtecan"),
        ("Insulin glargine 100units/ml solution for injection", "insulin glargine"),
        ("Cetuximab solution for infusion", "cetuximab"),
        ("500mg", None),
        ("", None),
    ],
)
def test_drug_names_from_dmd_descriptions(label: str, name: str | None) -> None:
    assert fhir.drug_name(label) == name


@pytest.mark.parametrize(
    "system",
    [
        "http://fhir.hl7.org.uk/CodeSystem/OPCS-4",
        "https://fhir.hl7.org.uk/CodeSystem/OPCS-4",
        "http://fhir.hl7.org.uk/R4/CodeSystem/OPCS-4/",
        "HTTPS://FHIR.HL7.ORG.UK/CodeSystem/opcs-4",
    ],
)
def test_accepted_opcs4_systems(system: str) -> None:
    concept = {"coding": [{"system": system, "code": "K26.2"}]}
    assert fhir.opcs4_of(concept, "code") == ["K26.2"]


def test_icd10_uk_and_snomed_are_told_apart() -> None:
    concept = {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10-uk", "code": "I35.0"},
        {"system": "http://snomed.info/sct", "code": "60573004"},
    ]}
    assert fhir.icd10_of(concept, "code") == ["I35.0"]
    assert fhir.opcs4_of(concept, "code") == []


@pytest.mark.parametrize(
    ("value", "day"),
    [("2025-06-01", "2025-06-01"), ("2025-06-01T23:30:00+01:00", "2025-06-01"),
     ("2025-06", None), ("2025", None), (None, None)],
)
def test_fhir_dates(value: Any, day: str | None) -> None:
    got = fhir.fhir_date(value, "x")
    assert (got.isoformat() if got else None) == day


@pytest.mark.parametrize("value", ["2025-02-30", "01/06/2025", 20250601, ""])
def test_bad_fhir_dates_raise(value: Any) -> None:
    with pytest.raises(fhir.FhirError):
        fhir.fhir_date(value, "x")


def test_patient_with_partial_birth_date_and_bad_nhs_number() -> None:
    resource = patient("1944")
    resource["identifier"][0]["value"] = "9434765918"
    read = fhir.read_patient(resource, "p")
    assert read.birth_date is None and read.nhs_number is None
    assert any("not a full date" in n for n in read.notes)
    assert any("modulus 11" in n for n in read.notes)


def test_summaries_fit_140_characters_even_with_long_names() -> None:
    decision = {
        "commissioner": "icb_delegated",
        "service": {"id": "1", "name": "Very long service name " * 10, "line": "X"},
        "policy": {"id": "P" * 30, "version": 1, "title": "t"},
        "eligibility": "not_eligible",
        "route": None,
    }
    text = _summary(decision)
    assert len(text) <= SUMMARY_MAX
    assert text.startswith("Specialised — ICB (delegated by NHS England) commissions: Very long")
    assert text.endswith(f"Not eligible under {'P' * 30}")


def test_a_patient_in_the_draft_orders_bundle_is_used_when_not_prefetched(
    recorder: Recorder,
) -> None:
    body = hook_request(prefetch={})
    body["context"]["draftOrders"]["entry"].append({"resource": patient("1970-01-01")})
    status, _ = handle(ORDER_SIGN, body, decide=recorder.decide, fetch=None, today=TODAY)
    assert status == 200
    assert recorder.calls[0][0]["patient"]["birth_date"] == "1970-01-01"


def test_an_undated_order_uses_the_hook_call_date(recorder: Recorder) -> None:
    body = hook_request()
    tavi = body["context"]["draftOrders"]["entry"][0]["resource"]
    del tavi["occurrenceDateTime"], tavi["authoredOn"]
    handle(ORDER_SIGN, body, decide=recorder.decide, fetch=None, today=TODAY)
    assert recorder.calls[0][0]["date"] == TODAY.isoformat()


# --- never an exception: replace any part of a real request with arbitrary JSON ---

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["Bundle", "ServiceRequest", "2025-06-01", "#x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["resourceType", "coding", "code", "system", "reference", "entry",
                         "resource", "extension", "url", "id", "value"]) | st.text(max_size=5),
        inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(_paths(item, (*prefix, i)))
    return out


BASE_BODY = hook_request("order-select", with_server=True)
PATHS = [p for p in _paths(BASE_BODY) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), replacement=JSON)
def test_any_corruption_is_a_200_or_400_never_an_exception(
    recorder: Recorder, path: tuple[Any, ...], replacement: Any
) -> None:
    body = copy.deepcopy(BASE_BODY)
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = replacement
    fetch = FakeFetch({"Patient/example": {"resourceType": "Patient", "birthDate": replacement}})
    status, answer = handle(ORDER_SELECT, body, decide=recorder.decide, fetch=fetch, today=TODAY)
    assert status in (200, 400)
    assert ("cards" in answer) if status == 200 else ("error" in answer)
