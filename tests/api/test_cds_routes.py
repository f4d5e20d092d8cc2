"""CDS Hooks over HTTP: public discovery, authenticated calls, decisions recorded with the
hook instance, and the API's error body for bad calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.test import Client

from chalicelib.decisions.store import DecisionStore
from chalicelib.engine.policy_set import PolicySet
from tests.cds.conftest import HOOK_INSTANCE, cetuximab_order, hook_request, tavi_order
from tests.support.api import KEYS

HEADERS = {"x-api-key": KEYS[0][1], "content-type": "application/json"}


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, headers=HEADERS if headers is None else headers, body=data)


def test_discovery_is_public(client: Client) -> None:
    response = client.http.get("/cds-services")
    assert response.status_code == 200
    hooks = {s["hook"] for s in json.loads(response.body)["services"]}
    assert hooks == {"order-select", "order-sign"}


def test_call_needs_a_key(client: Client) -> None:
    response = post(client, "/cds-services/pss-order-sign", hook_request(),
                    headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_order_sign_records_each_decision_with_the_hook_instance(
    make_client: Callable[..., Client], store: DecisionStore, pack: PolicySet
) -> None:
    client = make_client(store, policy_set=national_pack())
    response = post(client, "/cds-services/pss-order-sign",
                    hook_request(orders=[tavi_order(), cetuximab_order()]))
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert len(answer["cards"]) == 2
    assert all(len(card["summary"]) <= 140 for card in answer["cards"])
    ids = [a["resource"]["extension"][-1]["extension"][0]["valueString"]
           for a in answer["systemActions"]]
    for decision_id in ids:
        recorded = store.get(decision_id, 1)
        assert recorded is not None and recorded.hook_instance == HOOK_INSTANCE
        got = client.http.get(f"/v1/decisions/{decision_id}", headers=HEADERS)
        assert json.loads(got.body)["decision_id"] == decision_id


def test_bad_calls_get_the_error_body(client: Client) -> None:
    assert post(client, "/cds-services/nope", hook_request()).status_code == 404
    broken = post(client, "/cds-services/pss-order-sign", "{not json")
    assert broken.status_code == 400
    assert json.loads(broken.body)["error"]["code"] == "invalid_request"
    wrong_hook = post(client, "/cds-services/pss-order-sign", hook_request(hook="patient-view"))
    assert wrong_hook.status_code == 400


def national_pack() -> PolicySet:
    from pathlib import Path

    from chalicelib import load_policy_set

    return load_policy_set(Path(__file__).resolve().parents[2] / "policies")


def test_a_repeated_call_replays_the_recorded_decisions(
    make_client: Callable[..., Client], store: DecisionStore
) -> None:
    client = make_client(store, policy_set=national_pack())
    body = hook_request(orders=[tavi_order(), cetuximab_order()])
    first = json.loads(post(client, "/cds-services/pss-order-sign", body).body)
    again = json.loads(post(client, "/cds-services/pss-order-sign", body).body)

    def ids(answer: Any) -> list[str]:
        return [a["resource"]["extension"][-1]["extension"][0]["valueString"]
                for a in answer["systemActions"]]

    assert ids(first) and ids(first) == ids(again)
