"""An in-memory `DecisionStore`: the fake for unit tests, with the same guarantees.

In/out: as `store.DecisionStore`. One lock makes each operation atomic, the way a DynamoDB
transaction is, so concurrency tests written against it mean the same thing.
"""

from __future__ import annotations

import threading

from chalicelib.decisions.store import (
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    VersionConflict,
)


class InMemoryDecisionStore:
    """Decisions in dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, DecisionVersion]] = {}
        self._claims: dict[tuple[str, str], IdempotencyClaim] = {}
        self._once: dict[str, int] = {}

    def create(self, first: DecisionVersion, claim: IdempotencyClaim | None,
               now_epoch: int) -> None:
        """Record version 1 (and its claim) atomically."""
        with self._lock:
            self._check_claim(claim, now_epoch)
            if first.decision_id in self._versions:
                raise VersionConflict(f"decision `{first.decision_id}` already exists")
            self._versions[first.decision_id] = {first.version: first}
            if claim is not None:
                self._claims[(claim.client_id, claim.key)] = claim

    def append(self, version: DecisionVersion, claim: IdempotencyClaim | None = None,
               now_epoch: int = 0) -> None:
        """Record version n (and its claim) if n - 1 is the latest."""
        with self._lock:
            self._check_claim(claim, now_epoch)
            history = self._versions.get(version.decision_id)
            if history is None or max(history) != version.version - 1:
                raise VersionConflict(f"decision `{version.decision_id}` moved on")
            history[version.version] = version
            if claim is not None:
                self._claims[(claim.client_id, claim.key)] = claim

    def _check_claim(self, claim: IdempotencyClaim | None, now_epoch: int) -> None:
        if claim is not None:
            held = self._claims.get((claim.client_id, claim.key))
            if held is not None and held.live(now_epoch):
                raise IdempotencyKeyTaken(f"idempotency key `{claim.key}` is already used")

    def claim_once(self, key: str, expires_at: int, now_epoch: int) -> bool:
        """Claim `key` unless a live claim exists."""
        with self._lock:
            held = self._once.get(key)
            if held is not None and held > now_epoch:
                return False
            self._once[key] = expires_at
            return True

    def latest(self, decision_id: str) -> DecisionVersion | None:
        """The latest version, or None."""
        with self._lock:
            history = self._versions.get(decision_id)
            return history[max(history)] if history else None

    def get(self, decision_id: str, version: int) -> DecisionVersion | None:
        """One version, or None."""
        with self._lock:
            return self._versions.get(decision_id, {}).get(version)

    def versions(self, decision_id: str) -> list[DecisionVersion]:
        """Every version, oldest first."""
        with self._lock:
            history = self._versions.get(decision_id, {})
            return [history[n] for n in sorted(history)]

    def claim(self, client_id: str, key: str, now_epoch: int) -> IdempotencyClaim | None:
        """The live claim for the key, or None."""
        with self._lock:
            held = self._claims.get((client_id, key))
            return held if held is not None and held.live(now_epoch) else None

    def by_referral(self, client_id: str, referral_id: str) -> list[DecisionVersion]:
        """Every version recorded by the client for the referral, oldest first."""
        with self._lock:
            found = [v for history in self._versions.values() for v in history.values()
                     if v.client_id == client_id and v.referral_id == referral_id]
        return sorted(found, key=lambda v: (v.created_at, v.decision_id, v.version))
