"""CDS Hooks calls end to end through `handle`, with a real PolicySet behind a fake recorder."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.cds import codes as fhir
from chalicelib.cds.extensions import CRD_URL, commissioning_url
from chalicelib.cds.service import ORDER_SELECT, ORDER_SIGN, discovery
from tests.cds.conftest import (
    BASE,
    DMD_CETUXIMAB,
    FHIR_SERVER,
    HOOK_INSTANCE,
    TOKEN,
    FakeFetch,
    Recorder,
    cetuximab_order,
    condition,
    conditions_bundle,
    hook_request,
    patient,
    run,
    snomed_only_order,
    tavi_order,
)


def call(
    recorder: Recorder, body: Any, service: str = ORDER_SIGN, fetch: Any = None
) -> tuple[int, dict[str, Any]]:
    return run(service, body, recorder, fetch)


def sub(extension: dict[str, Any], url: str) -> list[Any]:
    """The values of the sub-extensions named `url`."""
    out = []
    for part in extension["extension"]:
        if part["url"] == url:
            out.append(next(v for k, v in part.items() if k.startswith("value")))
    return out


def test_discovery_lists_order_select_and_order_sign_with_prefetch() -> None:
    services = {s["id"]: s for s in discovery().model_dump(mode="json")["services"]}
    assert {s["hook"] for s in services.values()} == {"order-select", "order-sign"}
    for service in services.values():
        assert service["prefetch"] == {
            "patient": "Patient/{{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}",
            "coverage": "Coverage?patient={{context.patientId}}&status=active",
        }
        assert service["title"] and service["description"]


def test_order_sign_three_orders_gives_a_card_each_and_records_decisions(
    recorder: Recorder,
) -> None:
    status, body = call(recorder, hook_request())
    assert status == 200
    tavi, cetux, echo = body["cards"]

    # decide was called for the two coded orders, with the hookInstance, in our request shape
    assert [hook for _, hook in recorder.calls] == [HOOK_INSTANCE, HOOK_INSTANCE]
    tavi_req, cetux_req = (req for req, _ in recorder.calls)
    assert tavi_req == {
        "date": "2025-06-20",  # the planned occurrence, not authoredOn
        "patient": {"birth_date": "1944-03-12", "sex": "female", "nhs_number": "9434765919"},
        "procedures": ["K26.2", "Y53.1"],
        "diagnoses": ["I35.0", "I10"],  # the order's reason first, then the patient's record
        "drugs": [],
        "facts": {},
        "attestations": [],
        "provider": {"ods_code": "R1H"},
        "referral_id": "ServiceRequest/tavi-1",
    }
    assert cetux_req["drugs"] == ["cetuximab"]
    assert cetux_req["diagnoses"] == ["C18.7", "I10"]
    assert cetux_req["facts"] == {"ras_status": "wild_type", "line_of_therapy": 1}
    assert cetux_req["attestations"] == ["consultant"]
    assert cetux_req["provider"] == {"ods_code": "RPY"}  # requester PractitionerRole → ODS

    assert tavi["summary"] == (
        "Specialised — NHS England commissions: Adult specialist cardiac services. "
        "No eligibility policy applies"
    )
    assert tavi["indicator"] == "info"
    assert tavi["links"] == [{"label": "Decision record 01JDCDS0001",
                              "url": f"{BASE}/v1/decisions/01JDCDS0001", "type": "absolute"}]
    assert "NCBPS13A" in tavi["detail"] and "`dominant procedure in TAVI" in tavi["detail"]

    assert cetux["summary"] == (
        "Specialised — NHS England commissions: Cancer drugs. Prior approval via Blueteq CET5"
    )
    assert cetux["indicator"] == "warning"
    assert "- **Policy:** CET5 version 2, Cetuximab" in cetux["detail"]
    assert cetux["source"]["label"].startswith("NHS England specialised commissioning")
    # CRD resp-5: the topic comes from the card types CRD binds it to
    assert cetux["source"]["topic"] == {
        "system": "http://terminology.hl7.org/CodeSystem/cdshooks-card-type",
        "code": "coverage-info", "display": "Coverage Information"}
    # a clinician may go ahead without prior approval: they get reasons to choose from
    assert [r["code"] for r in cetux["overrideReasons"]] == [
        "action-completed", "expert-contradicts", "policy-contradicts"]
    assert all(r["display"] for r in cetux["overrideReasons"])
    assert "overrideReasons" not in tavi  # nothing to decline on an info card

    # a SNOMED-only order: no decision, no guess, an info card naming the codes needed
    assert echo["indicator"] == "info"
    assert "OPCS-4" in echo["summary"] and "SNOMED CT 40701008" in echo["detail"]

    for card in body["cards"]:
        assert len(card["summary"]) < 140 and card["uuid"]
    assert len({card["uuid"] for card in body["cards"]}) == 3


def crd(resource: dict[str, Any]) -> dict[str, Any]:
    """The one CRD coverage-information extension of an order."""
    (found,) = [e for e in resource["extension"] if e["url"] == CRD_URL]
    return found


def ours(resource: dict[str, Any]) -> dict[str, Any]:
    """The one commissioning extension of ours on an order."""
    (found,) = [e for e in resource["extension"] if e["url"] == commissioning_url(BASE)]
    return found


def test_system_actions_add_crd_coverage_information_and_our_extension(
    recorder: Recorder,
) -> None:
    _, body = call(recorder, hook_request())
    actions = body["systemActions"]
    assert [(a["type"], a["resource"]["id"]) for a in actions] == [
        ("update", "tavi-1"), ("update", "cetux-1")]
    # the action names who commissions, never a fixed "NHS England"
    assert actions[1]["description"] == (
        "Record commissioning decision 01JDCDS0002 (nhs_england) on the order")
    cetux = actions[1]["resource"]
    ext = crd(cetux)
    assert ext["url"] == "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
    assert sub(ext, "coverage-assertion-id") == ["01JDCDS0002"]
    assert sub(ext, "covered") == ["covered"] and sub(ext, "pa-needed") == ["auth-needed"]
    # no Coverage prefetched: a typed Reference saying so (documented in the README)
    assert sub(ext, "coverage") == [{"type": "Coverage", "display":
                                     "NHS-funded care: the EHR sent no Coverage resource"}]
    # the date of the assertion (when it was evaluated), not the order's date
    decided_on = recorder.policy_set.decide(recorder.calls[1][0]).evaluated_at.date()
    assert sub(ext, "date") == [decided_on.isoformat()]
    assert sub(ext, "reason") == [{"text": "Prior approval needed via Blueteq CET5"}]
    # our own details: one extension, on the public base URL
    mine = ours(cetux)
    assert sub(mine, "commissioner")[0]["code"] == "nhs_england"
    assert sub(mine, "service-line")[0] == {"system": f"{BASE}/fhir/CodeSystem/service-line",
                                            "code": "NCBPS02Z", "display": "Cancer drugs"}
    assert sub(mine, "policy")[0] == {
        "system": f"{BASE}/fhir/CodeSystem/policy",
        "code": "CET5", "version": "2", "display": "Cetuximab"}
    assert sub(mine, "eligibility")[0]["code"] == "prior_approval"
    assert sub(mine, "route") == ["Blueteq CET5"]
    assert sub(mine, "decision") == [f"{BASE}/v1/decisions/01JDCDS0002"]
    # the rest of the order is untouched, including our fact extensions
    assert cetux["medicationCodeableConcept"]["coding"][0]["display"] == DMD_CETUXIMAB
    assert sum(e["url"] == fhir.FACT_URL for e in cetux["extension"]) == 2


def test_a_prefetched_coverage_is_the_one_referenced(recorder: Recorder) -> None:
    body = hook_request(orders=[tavi_order()])
    body["prefetch"]["coverage"] = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Coverage", "id": "nhs-1", "status": "active",
                      "beneficiary": {"reference": "Patient/example"},
                      "payor": [{"display": "NHS England"}]}}]}
    _, answer = call(recorder, body)
    assert sub(crd(answer["systemActions"][0]["resource"]), "coverage") == [
        {"reference": "Coverage/nhs-1"}]


def test_links_are_absolute_on_the_configured_base_url(recorder: Recorder) -> None:
    _, body = run(ORDER_SIGN, hook_request(orders=[tavi_order()]), recorder,
                  base_url="http://127.0.0.1:8000")
    assert body["cards"][0]["links"] == [{"label": "Decision record 01JDCDS0001",
                                         "url": "http://127.0.0.1:8000/v1/decisions/01JDCDS0001",
                                         "type": "absolute"}]


def test_a_re_signed_order_gets_its_extensions_replaced_not_stacked(recorder: Recorder) -> None:
    _, first = call(recorder, hook_request(orders=[tavi_order()]))
    signed_again = first["systemActions"][0]["resource"]
    _, second = call(recorder, hook_request(orders=[signed_again]))
    resource = second["systemActions"][0]["resource"]
    assert sub(crd(resource), "coverage-assertion-id") == ["01JDCDS0002"]
    assert sub(ours(resource), "decision") == [f"{BASE}/v1/decisions/01JDCDS0002"]


def test_not_eligible_is_a_warning_and_not_covered(recorder: Recorder) -> None:
    order = cetuximab_order()
    order["extension"][0] = {"url": fhir.FACT_URL, "extension": [
        {"url": "name", "valueCode": "ras_status"}, {"url": "value", "valueCode": "mutant"}]}
    _, body = call(recorder, hook_request(orders=[order]))
    card = body["cards"][0]
    assert card["indicator"] == "warning"
    assert card["summary"].endswith("Not eligible under CET5")
    assert "`ras_status is wild_type`: not met" in card["detail"]
    ext = crd(body["systemActions"][0]["resource"])
    assert sub(ext, "covered") == ["not-covered"] and sub(ext, "pa-needed") == []  # crd-ci-q2
    assert sub(ext, "reason") == [{"text": "Not eligible under CET5"}]
    assert "overrideReasons" in card


def test_not_specialised_activity_is_an_info_card(recorder: Recorder) -> None:
    order = tavi_order()
    order["code"] = {"coding": [{"system": fhir.OPCS4, "code": "W37.1"}], "text": "Hip"}
    order["orderDetail"] = []
    order["reasonCode"] = [{"coding": [{"system": fhir.ICD10, "code": "M16.1"}]}]
    _, body = call(recorder, hook_request(orders=[order]))
    card = body["cards"][0]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Not specialised")
    assert "overrideReasons" not in card


def test_order_select_with_incomplete_order_answers_what_it_can(recorder: Recorder) -> None:
    body = hook_request("order-select", [cetuximab_order(facts=False), {
        "resourceType": "ServiceRequest", "id": "new-1", "status": "draft",
        "intent": "order", "subject": {"reference": "Patient/example"}}])
    status, answer = call(recorder, body, ORDER_SELECT)
    assert status == 200
    cetux, empty = answer["cards"]
    assert cetux["indicator"] == "info"
    assert cetux["summary"].endswith("More information needed for CET5")
    assert "**Still needed:**" in cetux["detail"] and "`ras_status`" in cetux["detail"]
    assert empty["indicator"] == "info" and "OPCS-4" in empty["summary"]
    resource = answer["systemActions"][0]["resource"]
    ext = crd(resource)
    # crd-ci-q3: conditional needs info-needed; crd-ci-q6: OTH needs a reason
    assert sub(ext, "covered") == ["conditional"] and sub(ext, "pa-needed") == ["conditional"]
    assert sub(ext, "info-needed") == ["OTH"]
    assert "ras_status" in sub(ext, "reason")[0]["text"]
    assert set(sub(ours(resource), "missing")) >= {"ras_status", "line_of_therapy"}


def test_order_select_assesses_only_the_selected_orders(recorder: Recorder) -> None:
    body = hook_request("order-select", [tavi_order(), cetuximab_order()],
                        selections=["MedicationRequest/cetux-1"])
    _, answer = call(recorder, body, ORDER_SELECT)
    assert len(answer["cards"]) == 1 and "Cancer drugs" in answer["cards"][0]["summary"]
    assert [req["referral_id"] for req, _ in recorder.calls] == ["MedicationRequest/cetux-1"]


def test_missing_prefetch_without_a_fhir_server_says_what_is_missing(recorder: Recorder) -> None:
    status, body = call(recorder, hook_request(prefetch={}))
    assert status == 200
    assert recorder.calls == []  # no birth date: nothing decided, nothing guessed
    card = body["cards"][0]
    assert card["indicator"] == "info" and "birth date" in card["summary"]
    assert "no Patient prefetched or fetchable" in card["detail"]
    assert "systemActions" not in body  # optional arrays are left out, never sent empty


def test_missing_conditions_are_noted_and_the_order_still_decided(recorder: Recorder) -> None:
    _, body = call(recorder, hook_request(prefetch={"patient": patient(), "conditions": None}))
    assert recorder.calls[0][0]["diagnoses"] == ["I35.0"]
    assert "recorded conditions were not available" in body["cards"][0]["detail"]


def test_missing_prefetch_is_fetched_with_the_bearer_token(recorder: Recorder) -> None:
    fetch = FakeFetch({
        "Patient/example": patient("1950-01-31", "male"),
        "Condition?patient=example": conditions_bundle(condition("C19", "Rectosigmoid")),
    })
    body = hook_request(orders=[cetuximab_order()], prefetch={"patient": None},
                        with_server=True)
    status, answer = call(recorder, body, fetch=fetch)
    assert status == 200
    assert fetch.calls == [(FHIR_SERVER, TOKEN, "Patient/example"),
                           (FHIR_SERVER, TOKEN, "Condition?patient=example")]
    request = recorder.calls[0][0]
    assert request["patient"]["birth_date"] == "1950-01-31"
    assert request["patient"]["sex"] == "male"
    assert request["diagnoses"] == ["C18.7", "C19"]
    assert answer["cards"][0]["indicator"] == "warning"


def test_a_failed_fetch_degrades_to_saying_what_is_missing(recorder: Recorder) -> None:
    fetch = FakeFetch({"Patient/example": {"resourceType": "Patient", "birthDate": 19}})
    body = hook_request(orders=[tavi_order()], prefetch={}, with_server=True)
    status, answer = call(recorder, body, fetch=fetch)
    assert status == 200 and recorder.calls == []
    assert "Patient fetched was unusable" in answer["cards"][0]["detail"]


def test_operation_outcome_in_prefetch_counts_as_missing(recorder: Recorder) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "forbidden"}]}
    fetch = FakeFetch({"Patient/example": patient()})
    body = hook_request(orders=[tavi_order()], prefetch={"patient": outcome,
                        "conditions": conditions_bundle()}, with_server=True)
    status, _ = call(recorder, body, fetch=fetch)
    assert status == 200 and fetch.calls == [(FHIR_SERVER, TOKEN, "Patient/example")]
    assert len(recorder.calls) == 1


def test_a_fact_the_pack_does_not_know_gives_a_warning_card_not_an_error(
    recorder: Recorder,
) -> None:
    order = cetuximab_order()
    order["extension"].append({"url": fhir.FACT_URL, "extension": [
        {"url": "name", "valueString": "ras_statsu"}, {"url": "value", "valueString": "x"}]})
    status, body = call(recorder, hook_request(orders=[order, tavi_order()]))
    assert status == 200
    rejected, tavi = body["cards"]
    assert rejected["indicator"] == "warning" and "rejected" in rejected["summary"]
    assert "facts.ras_statsu" in rejected["detail"]
    assert [a["resource"]["id"] for a in body["systemActions"]] == ["tavi-1"]
    assert tavi["summary"].startswith("Specialised")


def test_an_order_before_any_policy_set_gets_an_info_card(recorder: Recorder) -> None:
    order = tavi_order()
    order["occurrenceDateTime"] = "2010-05-01"
    _, body = call(recorder, hook_request(orders=[order]))
    assert body["cards"][0]["summary"].startswith("No NHS England policy set covers 2010-05-01")
    assert "systemActions" not in body  # optional arrays are left out, never sent empty


def test_supporting_info_observations_carry_facts_and_attestations(recorder: Recorder) -> None:
    order = cetuximab_order(facts=False)
    order["contained"] += [
        {"resourceType": "Observation", "id": "ras", "status": "final",
         "code": {"coding": [{"system": fhir.FACT_SYSTEM, "code": "ras_status"}]},
         "valueCodeableConcept": {"coding": [{"system": fhir.FACT_SYSTEM,
                                              "code": "wild_type"}]}},
        {"resourceType": "Observation", "id": "line", "status": "final",
         "code": {"coding": [{"system": fhir.FACT_SYSTEM, "code": "line_of_therapy"}]},
         "valueQuantity": {"value": 1}},
        {"resourceType": "Observation", "id": "cons", "status": "final",
         "code": {"coding": [{"system": fhir.ATTESTATION_SYSTEM, "code": "consultant"}]},
         "valueBoolean": True},
    ]
    order["supportingInformation"] = [{"reference": "#ras"}, {"reference": "#line"},
                                      {"reference": "#cons"}]
    _, body = call(recorder, hook_request(orders=[order]))
    request = recorder.calls[0][0]
    assert request["facts"] == {"ras_status": "wild_type", "line_of_therapy": 1}
    assert request["attestations"] == ["consultant"]
    assert body["cards"][0]["summary"].endswith("Prior approval via Blueteq CET5")


def test_medication_reference_to_a_bundled_medication(recorder: Recorder) -> None:
    order = cetuximab_order()
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/m1"}
    body = hook_request(orders=[order])
    body["context"]["draftOrders"]["entry"].append({"resource": {
        "resourceType": "Medication", "id": "m1",
        "code": {"text": "Cetuximab 100mg/20ml solution for infusion vials"}}})
    status, _ = call(recorder, body)
    assert status == 200 and recorder.calls[0][0]["drugs"] == ["cetuximab"]


def test_a_skipped_order_type_gets_no_card(recorder: Recorder) -> None:
    nutrition = {"resourceType": "NutritionOrder", "id": "n1", "status": "draft",
                 "intent": "order", "patient": {"reference": "Patient/example"},
                 "dateTime": "2025-06-01"}
    status, body = call(recorder, hook_request(orders=[nutrition, tavi_order()]))
    assert status == 200 and len(body["cards"]) == 1


# --- bad input: always a 400/404 with the error body, never an exception ---

def _without_context(body: dict[str, Any]) -> None:
    del body["context"]


def _draft_orders_not_bundle(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"] = patient()


def _draft_orders_a_list(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"] = [tavi_order()]


def _unsupported_type(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"].append(
        {"resource": {"resourceType": "Claim", "id": "x"}})


def _coding_not_a_list(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"][0]["resource"]["code"]["coding"] = {"code": "K26.2"}


def _authored_on_a_number(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"][1]["resource"]["authoredOn"] = 20250601


def _impossible_birth_date(body: dict[str, Any]) -> None:
    body["prefetch"]["patient"]["birthDate"] = "1944-13-45"


def _entry_without_resource(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"].append({"fullUrl": "urn:uuid:1"})


def _no_resource_type(body: dict[str, Any]) -> None:
    del body["context"]["draftOrders"]["entry"][0]["resource"]["resourceType"]


def _someone_else(body: dict[str, Any]) -> None:
    body["prefetch"]["patient"]["id"] = "another-patient"


def _no_hook_instance(body: dict[str, Any]) -> None:
    del body["hookInstance"]


def _no_patient_id(body: dict[str, Any]) -> None:
    del body["context"]["patientId"]


def _prefetch_a_list(body: dict[str, Any]) -> None:
    body["prefetch"]["conditions"] = []


def _fact_without_name(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"]["entry"][1]["resource"]["extension"][0] = {
        "url": fhir.FACT_URL, "valueInteger": 3}


def _fhir_authorization_without_token(body: dict[str, Any]) -> None:
    body["fhirAuthorization"] = {"token_type": "Bearer"}


BREAKAGES = [
    (_without_context, "context"),
    (_draft_orders_not_bundle, "context.draftOrders.resourceType"),
    (_draft_orders_a_list, "context.draftOrders"),
    (_unsupported_type, "context.draftOrders.entry[3].resource.resourceType"),
    (_coding_not_a_list, "context.draftOrders.entry[0].resource.code.coding"),
    (_authored_on_a_number, "context.draftOrders.entry[1].resource.authoredOn"),
    (_impossible_birth_date, "prefetch.patient.birthDate"),
    (_entry_without_resource, "context.draftOrders.entry[3].resource"),
    (_no_resource_type, "context.draftOrders.entry[0].resource.resourceType"),
    (_someone_else, "prefetch.patient.id"),
    (_no_hook_instance, "hookInstance"),
    (_no_patient_id, "context.patientId"),
    (_prefetch_a_list, "prefetch.conditions"),
    (_fact_without_name, "context.draftOrders.entry[1].resource.extension[0]"),
    (_fhir_authorization_without_token, "fhirAuthorization.access_token"),
]


@pytest.mark.parametrize(("breakage", "field"), BREAKAGES, ids=[b.__name__ for b, _ in BREAKAGES])
def test_malformed_requests_are_400_naming_the_field(
    recorder: Recorder, breakage: Any, field: str
) -> None:
    body = hook_request()
    breakage(body)
    status, answer = call(recorder, body)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request"
    assert field in [d["field"] for d in answer["error"]["details"]], answer


@pytest.mark.parametrize("raw", [b"{not json", "", b"\xff\xfe", "[1, 2]", "null", 42, [], None])
def test_a_body_that_is_not_a_json_object_is_400(recorder: Recorder, raw: Any) -> None:
    status, answer = call(recorder, raw)
    assert status == 400 and answer["error"]["code"] == "invalid_request"


def test_the_wrong_hook_for_the_service_is_400(recorder: Recorder) -> None:
    status, answer = call(recorder, hook_request("order-select"), ORDER_SIGN)
    assert status == 400
    assert answer["error"]["details"] == [
        {"field": "hook", "problem": "must be `order-sign`, not `order-select`"}]


def test_an_unknown_service_is_404(recorder: Recorder) -> None:
    status, answer = call(recorder, hook_request(), "patient-greeter")
    assert status == 404 and answer["error"]["code"] == "not_found"


def test_nothing_is_fetched_when_no_order_can_be_decided(recorder: Recorder) -> None:
    fetch = FakeFetch({"Patient/example": patient()})
    body = hook_request(orders=[snomed_only_order()], prefetch={}, with_server=True)
    status, answer = call(recorder, body, fetch=fetch)
    assert status == 200 and fetch.calls == [] and recorder.calls == []
    assert answer["cards"][0]["indicator"] == "info"


def test_no_orders_to_assess_is_an_empty_cards_array(recorder: Recorder) -> None:
    nutrition = {"resourceType": "NutritionOrder", "id": "n1", "status": "draft",
                 "intent": "order", "patient": {"reference": "Patient/example"},
                 "dateTime": "2025-06-01"}
    status, body = call(recorder, hook_request(orders=[nutrition]))
    # "HTTP Response": no guidance is `{"cards": []}`; the required array stays, empty
    assert status == 200 and body == {"cards": []}
