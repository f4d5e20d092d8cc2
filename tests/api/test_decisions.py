"""POST/GET decisions through chalice.test.Client: recording, dry runs, idempotency, versions."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from chalice.test import Client

from chalicelib.api.schemas import DecisionOut, DecisionVersionsOut
from chalicelib.decisions.memory import InMemoryDecisionStore
from tests.support.api import NHS_NUMBER, Clock, FaultyStore, referral
from tests.support.http import get, post


def _decide(client: Client, body: Any = None, **extra: str) -> Any:
    return post(client, "/v1/decisions", referral() if body is None else body, **extra)


def test_recorded_decision_has_id_version_and_the_engine_answer(client: Client) -> None:
    response = _decide(client)
    assert response.status_code == 201
    body = response.json_body
    DecisionOut.model_validate(body)
    assert body["recorded"] is True and body["version"] == 1
    assert len(body["decision_id"]) == 26
    assert response.headers["Location"] == f"/v1/decisions/{body['decision_id']}"
    assert body["commissioner"] == "nhs_england"
    assert body["service"]["line"] == "NCBPS13A"
    assert body["policy"] == {"id": "NHSCB/A01/P/b", "version": 2,
                              "title": "Transcatheter aortic valve implantation"}
    assert body["eligibility"] == "incomplete"
    assert body["missing"] == ["mdt", "who"]
    assert body["evaluated_at"] == "2025-06-01T10:00:00Z"
    assert body["reasons"][0] == {"rule": "tavi", "clause": "dominant procedure in TAVI",
                                  "result": True, "at": "pack/t1.pss:21"}


def test_the_response_is_exactly_the_engine_dict_plus_three_fields(client: Client,
                                                                   pack: Any) -> None:
    body = _decide(client).json_body
    engine = pack.decide(referral()).to_dict()
    assert {k: v for k, v in body.items()
            if k not in ("decision_id", "version", "recorded")} == engine


def test_get_returns_the_recorded_decision(client: Client) -> None:
    created = _decide(client).json_body
    response = get(client, f"/v1/decisions/{created['decision_id']}")
    assert response.status_code == 200
    # the decision as recorded, plus the CDS Hooks feedback on its cards (none here)
    assert response.json_body == {**created, "feedback": []}


def test_dry_run_is_not_recorded_and_never_touches_the_store(make_client: Any) -> None:
    store = FaultyStore()
    client = make_client(store)
    response = post(client, "/v1/decisions?dry_run=true", referral())
    assert response.status_code == 200
    body = response.json_body
    assert (body["decision_id"], body["version"], body["recorded"]) == (None, None, False)
    assert body["eligibility"] == "incomplete"
    assert store.calls == []


def test_dry_run_needs_no_table(make_client: Any, settings: Any) -> None:
    # The default DynamoDB store, pointed at a closed port: a dry run must not build it.
    from dataclasses import replace

    unreachable = replace(settings, dynamodb_endpoint="http://127.0.0.1:9")
    client = make_client(None, settings=unreachable)
    assert post(client, "/v1/decisions?dry_run=true", referral()).status_code == 200
    recorded = _decide(client)
    assert recorded.status_code == 503
    assert "recorded" not in recorded.json_body


def test_dry_run_flag_must_be_true_or_false(client: Client) -> None:
    response = post(client, "/v1/decisions?dry_run=yes", referral())
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == [
        {"field": "dry_run", "problem": "must be `true` or `false`"}]


def test_nhs_number_is_stored_only_as_a_keyed_hash(client: Client,
                                                    store: InMemoryDecisionStore) -> None:
    decision_id = _decide(client).json_body["decision_id"]
    version = store.get(decision_id, 1)
    assert version is not None
    assert NHS_NUMBER not in json.dumps(version.inputs) + json.dumps(version.result)
    assert "nhs_number" not in version.inputs["patient"]
    expected = hmac.new(b"test-pseudonym-key", b"nhs_number\0" + NHS_NUMBER.encode(),
                        hashlib.sha256).hexdigest()
    assert version.nhs_number_hash == "hmac-sha256:" + expected
    assert NHS_NUMBER not in version.request_digest


def test_client_id_and_referral_are_recorded(client: Client,
                                             store: InMemoryDecisionStore) -> None:
    decision_id = _decide(client, client_id="other").json_body["decision_id"]
    assert [v.decision_id for v in store.by_referral("other", "REF-1")] == [decision_id]
    assert store.by_referral("epr", "REF-1") == []


# --- idempotency -------------------------------------------------------------------------

def test_same_key_same_body_replays_the_original(client: Client) -> None:
    first = _decide(client, **{"Idempotency-Key": "abc-1"})
    again = _decide(client, **{"Idempotency-Key": "abc-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json_body == first.json_body
    assert again.headers["Idempotent-Replayed"] == "true"


def test_replay_ignores_key_order_and_whitespace(client: Client) -> None:
    body = referral()
    first = _decide(client, body, **{"Idempotency-Key": "k"})
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    again = _decide(client, reordered, **{"Idempotency-Key": "k"})
    assert again.status_code == 200
    assert again.json_body["decision_id"] == first.json_body["decision_id"]


def test_same_key_other_body_is_409(client: Client) -> None:
    _decide(client, **{"Idempotency-Key": "abc-2"})
    response = _decide(client, referral(date="2025-06-02"), **{"Idempotency-Key": "abc-2"})
    assert response.status_code == 409
    assert response.json_body["error"]["code"] == "idempotency_key_reused"


def test_keys_are_scoped_by_client(client: Client) -> None:
    mine = _decide(client, **{"Idempotency-Key": "shared"})
    theirs = _decide(client, referral(date="2025-06-02"), client_id="other",
                     **{"Idempotency-Key": "shared"})
    assert theirs.status_code == 201
    assert theirs.json_body["decision_id"] != mine.json_body["decision_id"]


def test_keys_expire_after_48_hours(client: Client, clock: Clock) -> None:
    first = _decide(client, **{"Idempotency-Key": "k48"})
    clock.advance(hours=47, minutes=59)
    assert _decide(client, **{"Idempotency-Key": "k48"}).status_code == 200
    clock.advance(minutes=2)
    later = _decide(client, **{"Idempotency-Key": "k48"})
    assert later.status_code == 201
    assert later.json_body["decision_id"] != first.json_body["decision_id"]


def test_retry_after_a_failed_write_creates_exactly_one_decision(
        make_client: Any, store: InMemoryDecisionStore) -> None:
    failing = make_client(FaultyStore(store, fail_writes_only=True))
    assert _decide(failing, **{"Idempotency-Key": "retry-me"}).status_code == 503
    healthy = make_client(store)
    first = _decide(healthy, **{"Idempotency-Key": "retry-me"})
    second = _decide(healthy, **{"Idempotency-Key": "retry-me"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert len(store.by_referral("epr", "REF-1")) == 1


def test_malformed_idempotency_key_is_400(client: Client) -> None:
    response = _decide(client, **{"Idempotency-Key": "x" * 129})
    assert response.status_code == 400
    assert response.json_body["error"]["details"][0]["field"] == "Idempotency-Key"


# --- versions ----------------------------------------------------------------------------

def test_redecide_with_added_facts_makes_version_2(client: Client) -> None:
    decision_id = _decide(client).json_body["decision_id"]
    response = post(client, f"/v1/decisions/{decision_id}/versions",
                    {"facts": {"who": 1}, "attestations": ["mdt"]})
    assert response.status_code == 201
    assert (response.json_body["version"], response.json_body["eligibility"]) == (2, "eligible")
    history = get(client, f"/v1/decisions/{decision_id}/versions")
    DecisionVersionsOut.model_validate(history.json_body)
    assert [(v["version"], v["eligibility"]) for v in history.json_body["versions"]] == [
        (1, "incomplete"), (2, "eligible")]
    assert get(client, f"/v1/decisions/{decision_id}").json_body["version"] == 2
    one = get(client, f"/v1/decisions/{decision_id}/versions/1")
    assert (one.status_code, one.json_body["eligibility"]) == (200, "incomplete")


def test_redecide_keeps_earlier_facts_and_null_removes_one(client: Client) -> None:
    decision_id = _decide(client, referral(facts={"who": 3},
                                           attestations=["mdt"])).json_body["decision_id"]
    path = f"/v1/decisions/{decision_id}/versions"
    assert post(client, path, {}).json_body["eligibility"] == "not_eligible"
    assert post(client, path, {"facts": {"who": 2}}).json_body["eligibility"] == "eligible"
    removed = post(client, path, {"facts": {"who": None}}).json_body
    assert (removed["version"], removed["eligibility"], removed["missing"]) == (
        4, "incomplete", ["who"])


def test_redecide_keeps_the_nhs_number_hash(client: Client,
                                            store: InMemoryDecisionStore) -> None:
    decision_id = _decide(client).json_body["decision_id"]
    post(client, f"/v1/decisions/{decision_id}/versions", {"attestations": ["mdt"]})
    first, second = store.versions(decision_id)
    assert second.nhs_number_hash == first.nhs_number_hash is not None


def test_redecide_validates_its_body(client: Client) -> None:
    decision_id = _decide(client).json_body["decision_id"]
    path = f"/v1/decisions/{decision_id}/versions"
    cases = [
        ({"facts": {"whoo": 1}}, "facts.whoo"),
        ({"facts": {"who": "one"}}, "facts.who"),
        ({"attestations": ["mdtt"]}, "attestations[0]"),
        ({"colour": "red"}, "colour"),
        ([], "body"),
    ]
    for body, field in cases:
        response = post(client, path, body)
        assert response.status_code == 400, body
        assert field in [d["field"] for d in response.json_body["error"]["details"]], body


def test_redecide_unknown_decision_is_404(client: Client) -> None:
    response = post(client, "/v1/decisions/01JD0000000000000000000000/versions", {})
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "not_found"
