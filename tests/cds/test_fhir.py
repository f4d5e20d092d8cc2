"""Reading FHIR: code systems, drug names, dates, summaries, and robustness to any JSON."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.cds.access import FhirError, fhir_date
from chalicelib.cds.cards import shorten, summary
from chalicelib.cds.codes import drug_name, icd10_of, opcs4_of
from chalicelib.cds.models import SUMMARY_MAX
from chalicelib.cds.patient import read_patient
from chalicelib.cds.service import ORDER_SELECT, ORDER_SIGN
from tests.cds.conftest import TODAY, FakeFetch, Recorder, hook_request, patient, run


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
    assert drug_name(label) == name


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
    assert opcs4_of(concept, "code") == ["K26.2"]


def test_icd10_uk_and_snomed_are_told_apart() -> None:
    concept = {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10-uk", "code": "I35.0"},
        {"system": "http://snomed.info/sct", "code": "60573004"},
    ]}
    assert icd10_of(concept, "code") == ["I35.0"]
    assert opcs4_of(concept, "code") == []


@pytest.mark.parametrize(
    ("value", "day"),
    [("2025-06-01", "2025-06-01"), ("2025-06-01T23:30:00+01:00", "2025-06-01"),
     ("2025-06", None), ("2025", None), (None, None)],
)
def test_fhir_dates(value: Any, day: str | None) -> None:
    got = fhir_date(value, "x")
    assert (got.isoformat() if got else None) == day


@pytest.mark.parametrize("value", ["2025-02-30", "01/06/2025", 20250601, ""])
def test_bad_fhir_dates_raise(value: Any) -> None:
    with pytest.raises(FhirError):
        fhir_date(value, "x")


def test_patient_with_partial_birth_date_and_bad_nhs_number() -> None:
    resource = patient("1944")
    resource["identifier"][0]["value"] = "9434765918"
    read = read_patient(resource, "p")
    assert read.birth_date is None and read.nhs_number is None
    assert any("not a full date" in n for n in read.notes)
    assert any("modulus 11" in n for n in read.notes)


def _decided(name: str, policy: str | None, eligibility: str, route: str | None = None) -> Any:
    return SimpleNamespace(
        commissioner="icb_delegated", eligibility=eligibility, route=route,
        service=SimpleNamespace(id="1", name=name, line="X"),
        policy=SimpleNamespace(id=policy, version=1, title="t") if policy else None)


def test_summaries_stay_under_140_characters_even_with_long_names() -> None:
    original = "Very long service name " * 10
    text = summary(_decided(original, "P" * 30, "not_eligible"))
    assert len(text) < 140 and len(text) <= SUMMARY_MAX
    assert text.startswith("Specialised — ICB (delegated by NHS England) commissions: Very long")
    assert text.endswith(f"Not eligible under {'P' * 30}")
    # shortened at a word boundary: the name is cut after a whole word, then an ellipsis
    name = text.split("commissions: ", 1)[1].split("…", 1)[0]
    assert original.startswith(name) and original[len(name)] == " " and "…" in text


def test_a_summary_that_would_be_exactly_140_is_shortened_at_a_word() -> None:
    head = "Specialised — NHS England commissions: "
    tail = ". No eligibility policy applies"
    words = "Specialised mental health services for people with severe and complex needs"
    name = words[: 140 - len(head) - len(tail)]
    decided = _decided(name, None, "not_applicable")
    decided.commissioner = "nhs_england"
    assert len(head + name + tail) == 140
    text = summary(decided)
    assert len(text) < 140 and text.startswith(head) and text.endswith("…" + tail)
    kept = text[len(head): -len("…" + tail)]
    assert name.startswith(kept) and name[len(kept)] == " "  # whole words only


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("Adult specialist cardiac services", 20, "Adult specialist…"),
    ("Adult specialist cardiac services", 40, "Adult specialist cardiac services"),
    ("Supercalifragilistic", 10, "Supercali…"),  # one long word: no boundary to cut at
    ("Heart, lung and", 12, "Heart, lung…"),
])
def test_shorten_cuts_at_word_boundaries(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def test_a_patient_in_the_draft_orders_bundle_is_used_when_not_prefetched(
    recorder: Recorder,
) -> None:
    body = hook_request(prefetch={})
    body["context"]["draftOrders"]["entry"].append({"resource": patient("1970-01-01")})
    status, _ = run(ORDER_SIGN, body, recorder)
    assert status == 200
    assert recorder.calls[0][0]["patient"]["birth_date"] == "1970-01-01"


def test_an_undated_order_uses_the_hook_call_date(recorder: Recorder) -> None:
    body = hook_request()
    tavi = body["context"]["draftOrders"]["entry"][0]["resource"]
    del tavi["occurrenceDateTime"], tavi["authoredOn"]
    run(ORDER_SIGN, body, recorder)
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
    status, answer = run(ORDER_SELECT, body, recorder, fetch, valid_orders=False)
    assert status in (200, 400)
    assert ("cards" in answer) if status == 200 else ("error" in answer)


def test_every_national_service_and_outcome_gives_a_summary_under_140() -> None:
    from pathlib import Path

    from chalicelib import load_policy_set
    from chalicelib.cds.cards import COMMISSIONER_LABEL

    checked = load_policy_set(Path(__file__).resolve().parents[2] / "policies").checked
    policies = [None, *{p.id for p in checked.policies.values()}] if isinstance(
        checked.policies, dict) else [None, *{p.id for p in checked.policies}]
    seen = 0
    for service in checked.services.values():
        for commissioner in COMMISSIONER_LABEL:
            for eligibility in ("eligible", "not_eligible", "prior_approval", "ifr_required",
                                "incomplete", "not_applicable"):
                for policy in policies:
                    decided = _decided(service.name, policy, eligibility, "Blueteq CET5")
                    decided.commissioner = commissioner
                    text = summary(decided)
                    assert len(text) < 140, text
                    assert not text.split("commissions: ", 1)[1].startswith("…"), text
                    seen += 1
    assert seen > 1000
