"""The `DecisionStore` contract, run against every store: in memory, DynamoDB (moto), SQLite.

The last tests race 8 writers through the service's read-decide-write cycle. Moto applies a
transaction as check-then-write without a lock (and restores a whole-table copy when one
fails), while DynamoDB runs transactions serialisably: `atomic_moto` adds that one lock so the
races exercise *our* conditions and retries, not moto's missing isolation (the same for its
conditional `put_item`, which DynamoDB applies atomically per item). Reads and the
service's cycle still interleave freely between threads on every store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from moto.dynamodb.models import DynamoDBBackend

from chalicelib.api.ids import UlidFactory
from chalicelib.api.privacy import Pseudonymiser
from chalicelib.api.replies import Reply
from chalicelib.api.service import DecisionService
from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from chalicelib.decisions.store import (
    DecisionStore,
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    VersionConflict,
)
from tests.support.api import Clock, load_pack, referral

ID = "01JD0000000000000000000001"
NOW = 1_750_000_000
WRITERS = 8
T = TypeVar("T")


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


def test_a_claim_expires_at_its_expiry_second_on_read_and_write(any_store: DecisionStore) -> None:
    any_store.create(version(1), claim(expires=NOW + 10), NOW)
    assert any_store.claim("epr", "k", NOW + 9) == claim(expires=NOW + 10)
    other = "01JD0000000000000000000002"
    with pytest.raises(IdempotencyKeyTaken):
        any_store.create(version(1, decision_id=other),
                         replace(claim(expires=NOW + 100), decision_id=other), NOW + 9)
    any_store.create(version(1, decision_id=other),
                     replace(claim(expires=NOW + 100), decision_id=other), NOW + 10)
    held = any_store.claim("epr", "k", NOW + 10)
    assert held is not None and held.decision_id == other
    assert any_store.claim_once("jti#a", NOW + 10, NOW) is True
    assert any_store.claim_once("jti#a", NOW + 20, NOW + 9) is False
    assert any_store.claim_once("jti#a", NOW + 20, NOW + 10) is True


def test_claim_once_and_idempotency_claims_do_not_collide(any_store: DecisionStore) -> None:
    any_store.create(version(1), claim(key="k"), NOW)
    assert any_store.claim_once("k", NOW + 10, NOW) is True
    assert any_store.claim("epr", "k", NOW) == claim(key="k")


# --- concurrency: the service's read-decide-write cycle on 8 threads -----------------------


@pytest.fixture
def raced_store(any_store: DecisionStore, monkeypatch: pytest.MonkeyPatch) -> DecisionStore:
    """`any_store`, with moto's writes made as atomic as DynamoDB's (see the module doc)."""
    if isinstance(any_store, DynamoDBDecisionStore):
        lock = threading.RLock()  # moto's transaction calls its own put_item
        for name in ("transact_write_items", "put_item"):
            original = getattr(DynamoDBBackend, name)

            def serialised(self: DynamoDBBackend, *args: Any, _original: Any = original,
                           **kwargs: Any) -> Any:
                with lock:
                    return _original(self, *args, **kwargs)

            monkeypatch.setattr(DynamoDBBackend, name, serialised)
    return any_store


@pytest.fixture
def service(raced_store: DecisionStore) -> DecisionService:
    clock = Clock()
    return DecisionService(policy_set=load_pack(clock), store=lambda: raced_store, clock=clock,
                           new_id=UlidFactory(clock), pseudonymiser=Pseudonymiser(b"k"))


def _together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` on `count` threads released at the same moment by a barrier."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_redecisions_never_lose_or_duplicate_a_version(
        service: DecisionService) -> None:
    decision_id = service.decide(referral(), "epr", None, False).decision_id
    assert decision_id is not None
    # Only the owner may re-decide: every writer is the owner, told apart by its fact.
    replies: list[Reply] = _together(WRITERS, lambda i: service.redecide(
        decision_id, {"facts": {"expected_cycle_length_days": 100 + i}}, "epr"))
    numbers = sorted(r.body.version for r in replies)
    assert numbers == list(range(2, WRITERS + 2))
    history = service.store().versions(decision_id)
    assert [v.version for v in history] == list(range(1, WRITERS + 2))
    # Each version holds exactly its own writer's fact: no writer's answer was stored under
    # another writer's version.
    for writer, reply in enumerate(replies):
        stored = history[reply.body.version - 1]
        assert stored.inputs["facts"]["expected_cycle_length_days"] == 100 + writer
    latest = service.store().latest(decision_id)
    assert latest is not None and latest.version == WRITERS + 1


def test_concurrent_requests_with_one_idempotency_key_record_one_decision(
        service: DecisionService) -> None:
    replies = _together(WRITERS, lambda i: service.decide(referral(), "epr", "same-key", False))
    assert sorted(r.status for r in replies) == [200] * (WRITERS - 1) + [201]
    assert len({r.decision_id for r in replies}) == 1
    assert len(service.store().by_referral("epr", "REF-1")) == 1


def test_concurrent_single_use_claims_have_one_winner(raced_store: DecisionStore) -> None:
    won = _together(WRITERS, lambda i: raced_store.claim_once("jti#iss#same", NOW + 60, NOW))
    assert sorted(won) == [False] * (WRITERS - 1) + [True]
