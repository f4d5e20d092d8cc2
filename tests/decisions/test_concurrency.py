"""Concurrent writers against DynamoDB (moto): no lost version, no duplicate, one replay winner.

Moto applies a transaction as check-then-write without a lock (and restores a whole-table copy
when one fails), while DynamoDB runs transactions serialisably. `atomic_moto` adds that one lock
so the races below exercise *our* conditions and retries, not moto's missing isolation. Reads
and the service's read-decide-write cycle still interleave freely between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from moto.dynamodb.models import DynamoDBBackend

from chalicelib.api.ids import UlidFactory
from chalicelib.api.privacy import Pseudonymiser
from chalicelib.api.replies import Reply
from chalicelib.api.service import DecisionService
from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from tests.support.api import TABLE, Clock, load_pack, referral

WRITERS = 8
T = TypeVar("T")


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def serialised(self: DynamoDBBackend, transact_items: Any) -> None:
        with lock:
            original(self, transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", serialised)


@pytest.fixture
def service(dynamodb: Any, atomic_moto: None) -> Iterator[DecisionService]:
    clock = Clock()
    store = DynamoDBDecisionStore(dynamodb, TABLE)
    yield DecisionService(policy_set=load_pack(clock), store=lambda: store, clock=clock,
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
