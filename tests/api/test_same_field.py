"""One request edge: the same bad attestation is reported at the same field on every endpoint
that takes attestations — `POST /v1/decisions` (recorded and dry run), `POST
/v1/decisions/{id}/versions`, a CDS Hooks order (in its rejected card) and the Python API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.cds import codes as fhir
from chalicelib.decisions.store import DecisionStore
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import RequestError
from tests.cds.conftest import cetuximab_order, hook_request
from tests.support.api import KEYS, referral

HEADERS = {"x-api-key": KEYS[0][1], "content-type": "application/json"}
FIELD = "attestations[0]"
# (mistake, attestations as sent): a name the pack does not declare, and a value not a string
MISTAKES = [("unknown name", ["mdtt"]), ("not a string", [42])]


def _fields(response: Any) -> list[str]:
    assert response.status_code == 400, response.body
    return [d["field"] for d in json.loads(response.body)["error"]["details"]]


def _post(client: Client, path: str, body: Any) -> Any:
    return client.http.post(path, headers=HEADERS, body=json.dumps(body))


@pytest.mark.parametrize(("mistake", "attestations"), MISTAKES)
def test_every_json_endpoint_names_the_same_field(
    make_client: Callable[..., Client], store: DecisionStore, pack: PolicySet,
    mistake: str, attestations: list[Any],
) -> None:
    client = make_client(store)
    created = _post(client, "/v1/decisions", referral())
    assert created.status_code == 201, created.body
    decision_id = json.loads(created.body)["decision_id"]
    answers = {
        "POST /v1/decisions": _fields(
            _post(client, "/v1/decisions", referral(attestations=attestations))),
        "POST /v1/decisions?dry_run=true": _fields(
            _post(client, "/v1/decisions?dry_run=true", referral(attestations=attestations))),
        "POST /v1/decisions/{id}/versions": _fields(
            _post(client, f"/v1/decisions/{decision_id}/versions",
                  {"attestations": attestations})),
    }
    with pytest.raises(RequestError) as raised:
        pack.decide(referral(attestations=attestations))
    answers["PolicySet.decide"] = [d.field for d in raised.value.details]
    assert answers == {endpoint: [FIELD] for endpoint in answers}, mistake


def test_a_cds_order_with_the_bad_attestation_names_the_same_field(
    make_client: Callable[..., Client], store: DecisionStore
) -> None:
    from pathlib import Path

    from chalicelib import load_policy_set

    national = load_policy_set(Path(__file__).resolve().parents[2] / "policies")
    client = make_client(store, policy_set=national)
    order = cetuximab_order()
    order["extension"] = [{"url": fhir.ATTESTATION_URL, "valueCode": "mdtt"}]
    response = _post(client, "/cds-services/pss-order-sign", hook_request(orders=[order]))
    assert response.status_code == 200, response.body
    cards = json.loads(response.body)["cards"]
    rejected = [c for c in cards if "rejected" in c["summary"]]
    assert len(rejected) == 1, cards
    assert f"`{FIELD}`" in rejected[0]["detail"]


def test_a_re_decision_keeps_the_exact_age_in_months(
    make_client: Callable[..., Client], store: DecisionStore
) -> None:
    from tests.dsl.test_age import PACK  # `age < 18 months` decides eligibility

    client = make_client(store, policy_set=PACK)
    twenty_months = {"date": "2025-06-01", "patient": {"birth_date": "2023-10-01"},
                     "procedures": ["K26.1"]}
    created = _post(client, "/v1/decisions", twenty_months)
    assert created.status_code == 201, created.body
    first = json.loads(created.body)
    assert first["eligibility"] == "not_eligible"
    again = _post(client, f"/v1/decisions/{first['decision_id']}/versions", {})
    assert again.status_code == 201, again.body
    # The stored inputs say `age: 1` (no birth date): 12 months would make it eligible.
    assert json.loads(again.body)["eligibility"] == "not_eligible"
    stored = store.versions(first["decision_id"])[-1].inputs["patient"]
    assert "birth_date" not in stored and stored["age_months"] == 20


@pytest.mark.parametrize("field", ["patient", "provider", "facts"])
def test_an_object_member_that_is_not_an_object_says_so_in_json_terms(
    pack: PolicySet, field: str
) -> None:
    body: dict[str, Any] = {"date": "2025-06-01", "patient": {"age": 64}, field: ["x"]}
    with pytest.raises(RequestError) as refused:
        pack.parse(body)
    assert [(p.field, p.problem) for p in refused.value.details] == [
        (field, "must be a JSON object")]  # not "... or instance of PatientIn"
