"""The decision store port: immutable decision versions, a latest pointer, idempotency claims.

In: `DecisionVersion`s and `IdempotencyClaim`s built by the API service. Out: the same records
read back, or one of the errors below. Three adapters implement `DecisionStore`: `memory`
(unit tests), `dynamodb` (production, design section 5) and `sqlite` (`pss serve`, on disk).

Store errors:

* StoreError                -- anything the store raises on purpose
  + StoreUnavailable        -- the backend failed or throttled; nothing may be claimed recorded
  + VersionConflict         -- another writer moved the latest pointer first; re-read and retry
  + IdempotencyKeyTaken     -- the client already used this idempotency key (live claim)

INVARIANT: a version is written only together with the pointer move that makes it latest, and
a first version only together with its idempotency claim, so a failed write leaves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.errors import PssError


class StoreError(PssError):
    """Base class of the errors a decision store raises on purpose."""


class StoreUnavailable(StoreError):
    """The backend failed (throttled, unreachable, misconfigured); retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class VersionConflict(StoreError):
    """The latest pointer was not at the expected version: someone else wrote first."""


class IdempotencyKeyTaken(StoreError):
    """A live idempotency claim for this client and key already exists."""


@dataclass(frozen=True)
class DecisionVersion:
    """One immutable version of a recorded decision.

    `inputs` is the request as JSON data with the NHS number removed; `nhs_number_hash` holds its
    keyed hash. `result` is `Decision.to_dict()`: policy set, outcome and reasons, unchanged.
    """

    decision_id: str
    version: int
    client_id: str
    created_at: str
    request_digest: str
    inputs: Mapping[str, Any]
    result: Mapping[str, Any]
    referral_id: str | None = None
    nhs_number_hash: str | None = None
    hook_instance: str | None = None  # the CDS Hooks call that asked, for claims and audit

    def body(self) -> dict[str, Any]:
        """The response JSON of design section 4 for this version."""
        return {"decision_id": self.decision_id, "version": self.version, "recorded": True,
                **self.result}


@dataclass(frozen=True)
class IdempotencyClaim:
    """An idempotency key claimed by a client for the first version of one decision."""

    client_id: str
    key: str
    request_digest: str
    decision_id: str
    expires_at: int  # epoch seconds; DynamoDB's TTL attribute
    version: int = 1  # the version the key recorded (a re-decision's key records n ≥ 2)

    def live(self, now_epoch: int) -> bool:
        """True while the claim has not expired (TTL deletion itself may lag by hours)."""
        return self.expires_at > now_epoch


class DecisionStore(Protocol):
    """Where decisions are recorded; every method may raise `StoreUnavailable`."""

    def create(self, first: DecisionVersion, claim: IdempotencyClaim | None,
               now_epoch: int) -> None:
        """Record version 1 and its latest pointer, with the idempotency claim if given.

        Raises `IdempotencyKeyTaken` when a live claim for the client and key exists.
        """

    def append(self, version: DecisionVersion, claim: IdempotencyClaim | None = None,
               now_epoch: int = 0) -> None:
        """Record `version` (n ≥ 2), moving the pointer from n - 1; else `VersionConflict`.

        With `claim`, the claim is written in the same transaction (`IdempotencyKeyTaken`
        when a live one exists), so a re-decision is never recorded without its key.
        """

    def latest(self, decision_id: str) -> DecisionVersion | None:
        """The latest version of a decision, or None when the id is unknown."""

    def get(self, decision_id: str, version: int) -> DecisionVersion | None:
        """One version of a decision, or None."""

    def versions(self, decision_id: str) -> list[DecisionVersion]:
        """Every version of a decision, oldest first (empty when the id is unknown)."""

    def claim(self, client_id: str, key: str, now_epoch: int) -> IdempotencyClaim | None:
        """The live idempotency claim of a client for a key, or None."""

    def by_referral(self, client_id: str, referral_id: str) -> list[DecisionVersion]:
        """Every decision version a client recorded for a referral, oldest first."""

    def claim_once(self, key: str, expires_at: int, now_epoch: int) -> bool:
        """Claim single-use `key` until `expires_at` (epoch s); False when a live claim exists.

        Item `ONCE#<key>` / `-` with TTL `expires_at`; an expired claim may be taken again.
        Used to spend a JWT's `jti` once across every instance (`jti#<iss>#<jti>`).
        """
