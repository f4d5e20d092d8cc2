"""The `DecisionStore` contract, run against the in-memory store and DynamoDB (moto)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.decisions.store import (
    DecisionStore,
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    VersionConflict,
)

ID = "01JD0000000000000000000001"
NOW = 1_750_000_000


def version(n: int = 1, decision_id: str = ID, referral: str | None = "REF-1",
            client: str = "epr") -> DecisionVersion:
    return DecisionVersion(
        decision_id=decision_id, version=n, client_id=client,
        created_at=f"2025-06-01T10:00:0{n}.000000Z", request_digest=f"hmac-sha256:{n}",
        inputs={"date": "2025-06-01", "patient": {"age": 81}, "facts": {"ratio": 0.5}},
        result={"eligibility": "eligible", "policy": {"id": "P", "version": 2, "title": "t"},
                "policy_set": {"version": "2025.1", "digest": "sha256:x"}, "reasons": [],
                "route": None},
        referral_id=referral, nhs_number_hash="hmac-sha256:abc" if n == 1 else None)


def claim(key: str = "k", expires: int = NOW + 10, client: str = "epr") -> IdempotencyClaim:
    return IdempotencyClaim(client, key, "hmac-sha256:1", ID, expires)


def test_round_trip(any_store: DecisionStore) -> None:
    first = version()
    any_store.create(first, None, NOW)
    assert any_store.latest(ID) == first
    assert any_store.get(ID, 1) == first
    assert any_store.versions(ID) == [first]
    assert any_store.latest("01JD0000000000000000000009") is None
    assert any_store.get(ID, 2) is None
    assert any_store.versions("01JD0000000000000000000009") == []


def test_append_moves_the_latest_pointer(any_store: DecisionStore) -> None:
    any_store.create(version(1), None, NOW)
    any_store.append(version(2))
    any_store.append(version(3))
    latest = any_store.latest(ID)
    assert latest is not None and latest.version == 3
    assert [v.version for v in any_store.versions(ID)] == [1, 2, 3]


def test_append_needs_the_previous_version_to_be_latest(any_store: DecisionStore) -> None:
    any_store.create(version(1), None, NOW)
    any_store.append(version(2))
    for stale in (version(2), version(4), version(1)):
        with pytest.raises(VersionConflict):
            any_store.append(stale)
    assert [v.version for v in any_store.versions(ID)] == [1, 2]


def test_append_to_an_unknown_decision_conflicts(any_store: DecisionStore) -> None:
    with pytest.raises(VersionConflict):
        any_store.append(version(2))
    assert any_store.versions(ID) == []


def test_create_twice_conflicts(any_store: DecisionStore) -> None:
    any_store.create(version(1), None, NOW)
    with pytest.raises(VersionConflict):
        any_store.create(replace(version(1), client_id="other"), None, NOW)
    assert any_store.get(ID, 1) == version(1)


def test_live_claim_blocks_a_second_create_which_then_leaves_nothing(
        any_store: DecisionStore) -> None:
    any_store.create(version(1), claim(), NOW)
    other = "01JD0000000000000000000002"
    with pytest.raises(IdempotencyKeyTaken):
        any_store.create(version(1, decision_id=other), replace(claim(), decision_id=other), NOW)
    assert any_store.latest(other) is None
    assert any_store.claim("epr", "k", NOW) == claim()


def test_claims_are_scoped_by_client(any_store: DecisionStore) -> None:
    any_store.create(version(1), claim(), NOW)
    assert any_store.claim("other", "k", NOW) is None
    other = "01JD0000000000000000000002"
    any_store.create(version(1, decision_id=other, client="other"),
                     replace(claim(client="other"), decision_id=other), NOW)
    held = any_store.claim("other", "k", NOW)
    assert held is not None and held.decision_id == other


def test_an_expired_claim_is_gone_and_can_be_taken_over(any_store: DecisionStore) -> None:
    any_store.create(version(1), claim(expires=NOW + 10), NOW)
    assert any_store.claim("epr", "k", NOW + 10) is None
    other = "01JD0000000000000000000002"
    any_store.create(version(1, decision_id=other),
                     replace(claim(expires=NOW + 100), decision_id=other), NOW + 11)
    held = any_store.claim("epr", "k", NOW + 11)
    assert held is not None and held.decision_id == other


def test_by_referral_is_scoped_by_client(any_store: DecisionStore) -> None:
    any_store.create(version(1), None, NOW)
    any_store.append(version(2))
    any_store.create(version(1, decision_id="01JD0000000000000000000003", client="other"),
                     None, NOW)
    found = any_store.by_referral("epr", "REF-1")
    assert [(v.decision_id, v.version) for v in found] == [(ID, 1), (ID, 2)]
    assert any_store.by_referral("epr", "REF-2") == []


def test_claim_once_refuses_a_live_claim_and_frees_an_expired_one(
        any_store: DecisionStore) -> None:
    key = "jti#https://ehr.example#abc"
    assert any_store.claim_once(key, NOW + 300, NOW) is True
    assert any_store.claim_once(key, NOW + 300, NOW + 1) is False  # a replay
    assert any_store.claim_once(key, NOW + 300, NOW + 299) is False
    assert any_store.claim_once("jti#https://ehr.example#other", NOW + 300, NOW) is True
    # Once expired (TTL deletion may lag), the key may be claimed again.
    assert any_store.claim_once(key, NOW + 900, NOW + 301) is True
    assert any_store.claim_once(key, NOW + 900, NOW + 302) is False


def test_append_with_a_claim_records_both_or_neither(any_store: DecisionStore) -> None:
    any_store.create(version(1), None, NOW)
    held = IdempotencyClaim("epr", "redecide-k", "hmac-sha256:2", ID, NOW + 10, version=2)
    any_store.append(version(2), held, NOW)
    assert any_store.claim("epr", "redecide-k", NOW) == held
    with pytest.raises(IdempotencyKeyTaken):
        any_store.append(version(3), held, NOW)
    assert [v.version for v in any_store.versions(ID)] == [1, 2]
    with pytest.raises(VersionConflict):  # stale version: the claim is not written either
        any_store.append(version(2), replace(held, key="other"), NOW)
    assert any_store.claim("epr", "other", NOW) is None
