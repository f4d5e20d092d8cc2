"""API fixtures: a chalice test client over an injected wiring (memory store, fixed clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.api import wiring
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.decisions.store import DecisionStore
from chalicelib.engine.policy_set import PolicySet
from chalicelib.settings import Settings
from tests.support.api import KEYS, PACK_DIR, Clock, Entropy, load_pack


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def session_pack() -> PolicySet:
    return load_pack(Clock())


@pytest.fixture
def pack(clock: Clock) -> PolicySet:
    return load_pack(clock)


@pytest.fixture
def store() -> DecisionStore:
    return InMemoryDecisionStore()


@pytest.fixture
def log_lines() -> list[str]:
    return []


@pytest.fixture
def settings() -> Settings:
    return Settings(api_keys=KEYS, policy_dir=PACK_DIR, pseudonym_key=b"test-pseudonym-key")


@pytest.fixture
def make_client(settings: Settings, pack: PolicySet, clock: Clock, log_lines: list[str]
                ) -> Iterator[Callable[..., Client]]:
    """Build a client over a wiring with the given store (and other overrides)."""

    def build(store: DecisionStore | None, **overrides: Any) -> Client:
        options: dict[str, Any] = {"settings": settings, "policy_set": pack, "store": store,
                                   "clock": clock, "entropy": Entropy(),
                                   "emit": log_lines.append}
        options.update(overrides)
        wiring.install(wiring.Wiring({}, **options))
        return Client(app_module.app)

    yield build
    wiring.install(None)


@pytest.fixture
def client(make_client: Callable[..., Client], store: DecisionStore) -> Client:
    return make_client(store)
