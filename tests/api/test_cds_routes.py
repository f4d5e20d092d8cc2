"""CDS Hooks over HTTP: public discovery, authenticated calls, decisions recorded with the
hook instance, feedback recorded against decisions, and the API's error body for bad calls."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import load_policy_set
from chalicelib.decisions.store import DecisionStore
from chalicelib.engine.policy_set import PolicySet
from chalicelib.settings import Settings
from tests.cds.conftest import HOOK_INSTANCE, hook_request, tavi_order
from tests.support.api import KEYS
from tests.support.cds_conformance import CRD_URL, response_errors

HEADERS = {"x-api-key": KEYS[0][1], "content-type": "application/json"}
OTHER = {"x-api-key": KEYS[1][1], "content-type": "application/json"}
SIGN = "/cds-services/pss-order-sign"
PUBLIC = "https://pss.example.nhs.uk/api"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cds" / "order-sign.json"


def example() -> dict[str, Any]:
    """The README's example call: a TAVI referral, cetuximab and an uncoded echo."""
    body: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return body


def post(client: Client, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, headers=HEADERS if headers is None else headers, body=data)


@cache
def national_pack() -> PolicySet:
    """The national pack, compiled once per test process."""
    return load_policy_set(Path(__file__).resolve().parents[2] / "policies")


@pytest.fixture
def national() -> PolicySet:
    return national_pack()


@pytest.fixture
def cds(make_client: Callable[..., Client], store: DecisionStore, settings: Settings,
        national: PolicySet) -> Client:
    """A client over the national pack, served at a configured public base URL."""
    return make_client(store, policy_set=national,
                       settings=dataclasses.replace(settings, public_base_url=PUBLIC))


def decision_ids(answer: dict[str, Any]) -> list[str]:
    """The coverage-assertion-id (our decision id) of each order's CRD extension."""
    out = []
    for action in answer["systemActions"]:
        (crd,) = [e for e in action["resource"]["extension"] if e["url"] == CRD_URL]
        out += [p["valueString"] for p in crd["extension"] if p["url"] == "coverage-assertion-id"]
    return out


def signed(client: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = post(client, SIGN, example() if body is None else body)
    assert response.status_code == 200, response.body
    answer: dict[str, Any] = json.loads(response.body)
    return answer


def test_discovery_is_public(client: Client) -> None:
    response = client.http.get("/cds-services")
    assert response.status_code == 200
    hooks = {s["hook"] for s in json.loads(response.body)["services"]}
    assert hooks == {"order-select", "order-sign"}


def test_call_needs_a_key(client: Client) -> None:
    response = post(client, SIGN, hook_request(), headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_order_sign_records_each_decision_with_the_hook_instance(
    cds: Client, store: DecisionStore
) -> None:
    answer = signed(cds)
    assert response_errors(answer) == []
    assert len(answer["cards"]) == 3  # two decided orders and an uncoded one
    # Pack names keep their underscores: intra-word `_` is not emphasis in (GFM) Markdown.
    cetux = answer["cards"][1]["detail"]
    assert "(cetuximab_colorectal, policies/cancer.pss:" in cetux and "\\_" not in cetux
    ids = decision_ids(answer)
    assert len(ids) == 2
    for decision_id in ids:
        recorded = store.get(decision_id, 1)
        assert recorded is not None and recorded.hook_instance == HOOK_INSTANCE
        got = cds.http.get(f"/v1/decisions/{decision_id}", headers=HEADERS)
        assert json.loads(got.body)["decision_id"] == decision_id


def test_links_come_from_the_public_base_url_never_the_host_header(cds: Client) -> None:
    body = json.dumps(hook_request(orders=[tavi_order()]))
    response = cds.http.post(SIGN, body=body, headers={**HEADERS, "host": "evil.example:8000",
                                                       "x-forwarded-proto": "https"})
    answer = json.loads(response.body)
    (link,) = answer["cards"][0]["links"]
    assert link["type"] == "absolute"
    assert link["url"] == f"{PUBLIC}/v1/decisions/{decision_ids(answer)[0]}"


def test_bad_calls_get_the_error_body(client: Client) -> None:
    assert post(client, "/cds-services/nope", hook_request()).status_code == 404
    broken = post(client, SIGN, "{not json")
    assert broken.status_code == 400
    assert json.loads(broken.body)["error"]["code"] == "invalid_request"
    wrong_hook = post(client, SIGN, hook_request(hook="patient-view"))
    assert wrong_hook.status_code == 400


def test_a_repeated_call_replays_the_recorded_decisions(cds: Client) -> None:
    first, again = signed(cds), signed(cds)
    assert decision_ids(first) and decision_ids(first) == decision_ids(again)
    assert [c["uuid"] for c in first["cards"]] == [c["uuid"] for c in again["cards"]]


def test_a_changed_order_under_the_same_hook_instance_is_a_new_decision(cds: Client) -> None:
    first = signed(cds)
    changed = example()
    changed["context"]["draftOrders"]["entry"][1]["resource"]["authoredOn"] = "2025-06-02"
    again = signed(cds, changed)
    assert decision_ids(first)[0] == decision_ids(again)[0]
    assert decision_ids(first)[1] != decision_ids(again)[1]


# --- feedback (CDS Hooks 2.0 "Feedback") ---


def feedback(client: Client, entries: list[dict[str, Any]], headers: dict[str, str] | None = None,
             service: str = "pss-order-sign") -> Any:
    return post(client, f"/cds-services/{service}/feedback", {"feedback": entries}, headers)


def test_feedback_is_recorded_against_the_decision_and_shown_with_it(cds: Client) -> None:
    answer = signed(cds)
    tavi_card, cetux_card, _ = answer["cards"]
    tavi_id, cetux_id = decision_ids(answer)
    reason = cetux_card["overrideReasons"][0]
    response = feedback(cds, [
        {"card": cetux_card["uuid"], "outcome": "overridden",
         "overrideReason": {"reason": reason, "userComment": "Blueteq form already approved"},
         "outcomeTimestamp": "2025-06-01T10:05:31Z"},
        {"card": tavi_card["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2025-06-01T10:06:00.52Z"},
    ])
    assert response.status_code == 200, response.body
    assert json.loads(response.body) == {"results": [
        {"card": cetux_card["uuid"], "status": 200, "decision_id": cetux_id},
        {"card": tavi_card["uuid"], "status": 200, "decision_id": tavi_id}]}
    shown = json.loads(cds.http.get(f"/v1/decisions/{cetux_id}", headers=HEADERS).body)
    assert shown["feedback"] == [{
        "card": cetux_card["uuid"], "service": "pss-order-sign", "outcome": "overridden",
        "override_reason": {"reason": reason, "userComment": "Blueteq form already approved"},
        "accepted_suggestions": [], "outcome_timestamp": "2025-06-01T10:05:31Z",
        "received_at": "2025-06-01T10:00:00.000000Z"}]
    other = json.loads(cds.http.get(f"/v1/decisions/{tavi_id}", headers=HEADERS).body)
    assert [f["override_reason"] for f in other["feedback"]] == [None]


def test_feedback_on_an_unknown_card_is_404_for_that_entry(cds: Client) -> None:
    answer = signed(cds)
    known = answer["cards"][1]["uuid"]
    unknown = "00000000-0000-4000-8000-000000000000"
    response = feedback(cds, [
        {"card": unknown, "outcome": "overridden", "outcomeTimestamp": "2025-06-01T10:05:00Z"},
        {"card": known, "outcome": "overridden", "outcomeTimestamp": "2025-06-01T10:05:00Z"}])
    results = json.loads(response.body)["results"]
    assert response.status_code == 200
    assert [(r["card"], r["status"]) for r in results] == [(unknown, 404), (known, 200)]
    alone = feedback(cds, [{"card": unknown, "outcome": "overridden",
                            "outcomeTimestamp": "2025-06-01T10:05:00Z"}])
    assert alone.status_code == 404
    assert json.loads(alone.body)["error"]["details"][0]["field"] == "feedback[0].card"


def test_another_client_cannot_send_feedback_on_our_cards(cds: Client) -> None:
    card = signed(cds)["cards"][1]["uuid"]
    response = feedback(cds, [{"card": card, "outcome": "overridden",
                               "outcomeTimestamp": "2025-06-01T10:05:00Z"}], headers=OTHER)
    assert response.status_code == 404
    decision = decision_ids(signed(cds))[1]
    shown = json.loads(cds.http.get(f"/v1/decisions/{decision}", headers=HEADERS).body)
    assert shown["feedback"] == []  # nothing recorded


def test_feedback_to_another_service_is_404(cds: Client) -> None:
    card = signed(cds)["cards"][1]["uuid"]
    response = feedback(cds, [{"card": card, "outcome": "overridden",
                               "outcomeTimestamp": "2025-06-01T10:05:00Z"}],
                        service="pss-order-select")
    assert response.status_code == 404
    assert feedback(cds, [], service="nope").status_code == 404


def test_feedback_needs_a_key(cds: Client) -> None:
    response = feedback(cds, [], headers={"content-type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize(("entry", "field"), [
    ({"outcome": "overridden", "outcomeTimestamp": "2025-06-01T10:05:00Z"}, "feedback[0].card"),
    ({"card": "x", "outcome": "ignored", "outcomeTimestamp": "2025-06-01T10:05:00Z"},
     "feedback[0].outcome"),  # cds-fb-1
    ({"card": "x", "outcome": "accepted", "outcomeTimestamp": "2025-06-01T10:05:00Z"},
     "feedback[0]"),  # cds-fb-2: accepted needs acceptedSuggestions
    ({"card": "x", "outcome": "overridden", "overrideReason": {},
      "outcomeTimestamp": "2025-06-01T10:05:00Z"}, "feedback[0].overrideReason"),  # cds-fb-3
    ({"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
     "feedback[0].outcomeTimestamp"),
    ({"card": "x", "outcome": "overridden", "outcomeTimestamp": "2025-02-30T10:00:00Z"},
     "feedback[0].outcomeTimestamp"),
])
def test_malformed_feedback_is_400_naming_the_field(cds: Client, entry: dict[str, Any],
                                                    field: str) -> None:
    response = feedback(cds, [entry])
    assert response.status_code == 400, response.body
    assert field in [d["field"] for d in json.loads(response.body)["error"]["details"]]


@pytest.mark.parametrize("body", ["{not json", "[]", json.dumps({"feedback": []}), ""])
def test_a_feedback_body_that_is_not_a_feedback_object_is_400(cds: Client, body: str) -> None:
    assert post(cds, "/cds-services/pss-order-sign/feedback", body).status_code == 400


def test_feedback_takes_the_same_signed_jwt_as_the_service(
    make_client: Callable[..., Client], store: DecisionStore
) -> None:
    from tests.api.test_trust import trust_settings
    from tests.support.tokens import bearer, cds_token

    client = make_client(store, settings=trust_settings("prod"), policy_set=national_pack())
    headers = {**bearer(cds_token()), "content-type": "application/json"}
    answer = json.loads(post(client, SIGN, example(), headers).body)
    card = answer["cards"][1]["uuid"]
    entry = [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2025-06-01T10:05:00Z"}]
    # CDS Hooks: the JWT's `aud` is the endpoint called, here the feedback URL
    signed = {**bearer(cds_token(path="/cds-services/pss-order-sign/feedback")),
              "content-type": "application/json"}
    assert feedback(client, entry, signed).status_code == 200
    # a token for the service itself is not one for its feedback endpoint, and keys are dev-only
    assert feedback(client, entry, {**bearer(cds_token()),
                                    "content-type": "application/json"}).status_code == 401
    assert feedback(client, entry, HEADERS).status_code == 401
    shown = store.feedback(decision_ids(answer)[1])
    assert [(f.client_id, f.outcome) for f in shown] == [("epr-a", "overridden")]
