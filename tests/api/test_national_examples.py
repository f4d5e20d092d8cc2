"""Issue 4's must-show, through the API: each example referral decided and recorded over HTTP
with the national pack (TAVI in 2020, heart transplant in 2025, a primary hip replacement,
CET5, SSC1726, SABR and the IFR policies), then read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import PolicySet, load_policy_set
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.settings import Settings
from tests.pack.make_golden import POLICIES
from tests.pack.test_examples import EXAMPLES, WANTED
from tests.support.api import KEYS

HEADERS = {"x-api-key": KEYS[0][1], "content-type": "application/json"}


@pytest.fixture(scope="module")
def national_pack() -> PolicySet:
    return load_policy_set(POLICIES)


@pytest.mark.parametrize("name", sorted(WANTED))
def test_example_through_the_api(make_client: Callable[..., Client], national_pack: PolicySet,
                                 name: str) -> None:
    settings = Settings(api_keys=KEYS, policy_dir=POLICIES, pseudonym_key=b"k")
    client = make_client(InMemoryDecisionStore(), settings=settings, policy_set=national_pack)
    body = Path(EXAMPLES, name).read_text(encoding="utf-8")
    created = client.http.post("/v1/decisions", headers=HEADERS, body=body)
    assert created.status_code == 201, created.body
    decision = json.loads(created.body)
    service, policy = decision["service"], decision["policy"]
    got = (decision["commissioner"], service["line"] if service else None,
           policy["id"] if policy else None, decision["eligibility"], decision["route"])
    assert got == WANTED[name]
    assert decision["recorded"] is True and decision["reasons"]
    if name == "heart_transplant.json":
        assert json.loads(body)["date"].startswith("2025") and service["highly_specialised"]
    if name == "tavi.json":
        assert json.loads(body)["date"].startswith("2020")
    read = client.http.get(f"/v1/decisions/{decision['decision_id']}", headers=HEADERS)
    assert json.loads(read.body) == {**decision, "feedback": []}
