"""Provenance reaches the HTTP answer, its schema and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.test import Client

from chalicelib.api.openapi import document
from chalicelib.api.schemas import DecisionOut
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.settings import DEV_PUBLIC_BASE_URL
from tests.conftest import build
from tests.provenance_pack import PACK, TAVI, VALVE
from tests.support.api import KEYS


def _post(client: Client, body: dict[str, Any]) -> Any:
    headers = {"x-api-key": KEYS[0][1], "content-type": "application/json"}
    return client.http.post("/v1/decisions", headers=headers, body=json.dumps(body))


def test_recorded_and_read_back_decisions_carry_provenance(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(InMemoryDecisionStore(), policy_set=build(PACK))
    made = _post(client, VALVE)
    assert made.status_code == 201, made.json_body
    body = made.json_body
    assert body["unverified"] is True
    assert [p["kind"] for p in body["provenance"]] == ["rule", "service", "line", "commissioner"]
    got = client.http.get(f"/v1/decisions/{body['decision_id']}",
                          headers={"x-api-key": KEYS[0][1]}).json_body
    assert got["provenance"] == body["provenance"] and got["unverified"] is True
    verified = _post(client, TAVI).json_body
    assert verified["unverified"] is False and len(verified["provenance"]) == 5


def test_the_schema_requires_provenance_and_types_each_item() -> None:
    body = build(PACK).decide(TAVI).to_dict()
    full = {"decision_id": None, "version": None, "recorded": False, **body}
    assert DecisionOut.model_validate(full).unverified is False
    wrong_kind = {**full, "provenance": [{**body["provenance"][0], "kind": "guess"}]}
    for bad in ({k: v for k, v in full.items() if k != "provenance"}, wrong_kind):
        try:
            DecisionOut.model_validate(bad)
        except ValueError:
            continue
        raise AssertionError("accepted a decision with missing or ill-typed provenance")


def test_openapi_documents_provenance() -> None:
    schemas = document(DEV_PUBLIC_BASE_URL)["components"]["schemas"]
    decision = schemas["DecisionOut"]
    assert {"provenance", "unverified"} <= set(decision["required"])
    assert decision["properties"]["provenance"]["items"] == {"$ref": "#/components/schemas/ProvenanceOut"}
    item = schemas["ProvenanceOut"]
    assert set(item["required"]) == {"kind", "id", "source", "verified"}
    assert item["properties"]["unverified_reasons"]["type"] == "array"
    assert item["properties"]["kind"]["enum"] == ["rule", "service", "line", "commissioner", "policy"]


def test_policy_set_lists_every_service_with_its_source(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(InMemoryDecisionStore(), policy_set=build(PACK))
    body = client.http.get("/v1/policy-set", headers={"x-api-key": KEYS[0][1]}).json_body
    assert body["services"] == [{
        "id": "7", "name": "Adult specialist cardiac services", "lines": ["NCBPS13A", "NCBPS13B"],
        "programme": "internal_medicine", "portfolio": "acute", "highly_specialised": False,
        "source": ["https://www.legislation.gov.uk/uksi/2012/2996/schedule/4"], "verified": True,
    }]


def test_openapi_documents_the_service_registry() -> None:
    schemas = document(DEV_PUBLIC_BASE_URL)["components"]["schemas"]
    services = schemas["PolicySetOut"]["properties"]["services"]
    assert services["items"] == {"$ref": "#/components/schemas/ServiceEntryOut"}
    assert {"id", "name", "lines", "source", "verified"} <= set(schemas["ServiceEntryOut"]["required"])


def test_each_unverified_item_says_why_in_the_packs_words(
    make_client: Callable[..., Client],
) -> None:
    client = make_client(InMemoryDecisionStore(), policy_set=build(PACK))
    body = _post(client, VALVE).json_body
    reasons = {p["kind"]: p["unverified_reasons"] for p in body["provenance"]}
    assert reasons["rule"] == ["guessed from the code"]
    assert reasons["line"] == ["no source names this code"]
    assert all(not p["unverified_reasons"] for p in body["provenance"] if p["verified"])


def test_a_decision_recorded_before_reasons_existed_reads_back_with_none() -> None:
    made = DecisionOut.model_validate({
        "decision_id": None, "version": None, "recorded": False,
        "policy_set": {"version": "1", "digest": "sha256:x"}, "commissioner": "icb_core",
        "service": None, "policy": None, "eligibility": "not_applicable", "route": None,
        "missing": [], "reasons": [], "evaluated_at": "2025-06-01T00:00:00Z",
        "provenance": [{"kind": "rule", "id": "r", "source": [], "verified": False}],
        "unverified": True})
    assert made.model_dump()["provenance"][0]["unverified_reasons"] == []
