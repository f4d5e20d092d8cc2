"""Golden-file test of the national pack: every committed referral still gets its decision.

`tests/pack/golden.json` holds at least 200 generated referrals (see `make_golden.py`) with the
commissioner, service, line, policy and version, eligibility, route and missing items the pack
gave them when the file was written. Any change in outcome fails here and shows in review.

To refresh after an intended change to `policies/` (then review the diff of golden.json):

    python -m tests.pack.make_golden
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import NotCoveredError, PolicySet, load_policy_set
from tests.pack.make_golden import GOLDEN, POLICIES, expected, referrals

CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def policy_set() -> PolicySet:
    return load_policy_set(POLICIES)


def test_golden_file_has_enough_cases() -> None:
    assert len(CASES) >= 200


def test_golden_file_matches_the_generator() -> None:
    """The committed referrals are exactly what the generator makes (it is deterministic)."""
    assert [case["request"] for case in CASES] == referrals()


@pytest.mark.parametrize("case", CASES, ids=[c["request"]["referral_id"] for c in CASES])
def test_golden_decision(policy_set: PolicySet, case: dict[str, Any]) -> None:
    assert expected(policy_set.decide(case["request"])) == case["expected"]


def test_golden_covers_every_outcome() -> None:
    outcomes = {case["expected"]["eligibility"] for case in CASES}
    assert outcomes >= {
        "eligible",
        "not_eligible",
        "prior_approval",
        "ifr_required",
        "incomplete",
        "not_applicable",
    }
    commissioners = {case["expected"]["commissioner"] for case in CASES}
    assert commissioners == {"nhs_england", "icb_delegated", "icb_core"}


def test_date_before_the_pack_is_not_covered(policy_set: PolicySet) -> None:
    with pytest.raises(NotCoveredError):
        policy_set.decide({"date": "2013-03-31", "patient": {"age": 81}, "procedures": ["K26.2"]})
