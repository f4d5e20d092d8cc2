"""Shared test helpers for the API and the decision store: clock, entropy, pack, requests."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from chalicelib import load_policy_set
from chalicelib.decisions.store import DecisionStore, StoreUnavailable
from chalicelib.engine.policy_set import PolicySet

PACK_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "pack"
START = dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)
NHS_NUMBER = "9434765919"
KEYS = (("epr", "key-epr-0123456789"), ("other", "key-other-0123456789"))
TABLE = "pss-decisions-test"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Entropy:
    """Deterministic, distinct 'random' bytes."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self, n: int) -> bytes:
        return next(self._counter).to_bytes(n, "big")


def load_pack(clock: Clock) -> PolicySet:
    return load_policy_set(PACK_DIR, clock=clock)


def referral(**changes: Any) -> dict[str, Any]:
    """A TAVI referral that the fixture pack decides `incomplete` (mdt and who missing)."""
    body: dict[str, Any] = {
        "referral_id": "REF-1",
        "date": "2025-06-01",
        "patient": {"age": 81, "sex": "female", "nhs_number": NHS_NUMBER, "icb": "QWE",
                    "region": "London"},
        "provider": {"ods_code": "RBA"},
        "procedures": ["K26.2", "Y53.1"],
        "diagnoses": ["I35.0"],
    }
    body.update(changes)
    return body


class FaultyStore:
    """A store whose every call fails as DynamoDB does when throttled or down."""

    def __init__(self, inner: DecisionStore | None = None, fail_writes_only: bool = False):
        self.inner = inner
        self.fail_writes_only = fail_writes_only
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            writing = name in ("create", "append")
            if self.inner is not None and self.fail_writes_only and not writing:
                return getattr(self.inner, name)(*args, **kwargs)
            raise StoreUnavailable("throttled", retry_after=2)

        return call
