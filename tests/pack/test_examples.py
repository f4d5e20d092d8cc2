"""The ready-to-send referrals in `examples/` are valid and get the decision they illustrate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib import PolicySet, load_policy_set
from tests.pack.make_golden import POLICIES, ROOT

EXAMPLES = ROOT / "examples"
# file -> (commissioner, line, policy id, eligibility, route)
WANTED = {
    "tavi.json": ("nhs_england", "NCBPS13A", None, "not_applicable", None),
    "tavi_prior_approval.json": (
        "icb_delegated",
        "NCBPS13A",
        "NHSE-TAVI-SAVR-PS",
        "prior_approval",
        "Blueteq TAVI prior approval form",
    ),
    "pemb22_cervical.json": ("icb_delegated", "NCBPS02B", "PEMB22", "prior_approval", "Blueteq PEMB22"),
    "heart_transplant.json": ("nhs_england", "NCBPS01H", None, "not_applicable", None),
    "hip_replacement.json": ("icb_core", None, None, "not_applicable", None),
    "cet5_cetuximab.json": ("icb_delegated", "NCBPS02B", "CET5", "prior_approval", "Blueteq CET5"),
    "cet5_cetuximab_2014.json": (
        "nhs_england",
        "NCBPS02B",
        "CET5",
        "prior_approval",
        "Blueteq cetuximab form (2014)",
    ),
    "ssc1726_break_in_treatment.json": (
        "icb_delegated",
        "NCBPS02B",
        "SSC1726",
        "prior_approval",
        "SSC1726",
    ),
    "sabr_oligometastases.json": (
        "icb_delegated",
        "NCBPS27C",
        "SABR-OLIGOMETS-CTE",
        "eligible",
        None,
    ),
    "renal_denervation.json": ("icb_delegated", "NCBPS13E", "16004/P", "ifr_required", "IFR"),
    "abaloparatide.json": (
        "icb_delegated",
        "NCBPS04A",
        "NHSE-DL-ABALOPARATIDE",
        "ifr_required",
        "IFR",
    ),
}


@pytest.fixture(scope="module")
def policy_set() -> PolicySet:
    return load_policy_set(POLICIES)


def test_every_example_is_listed() -> None:
    assert {p.name for p in EXAMPLES.glob("*.json")} == set(WANTED)


@pytest.mark.parametrize("name", sorted(WANTED))
def test_example_decision(policy_set: PolicySet, name: str) -> None:
    body = json.loads(Path(EXAMPLES, name).read_text(encoding="utf-8"))
    decision = policy_set.decide(body).to_dict()
    service, policy = decision["service"], decision["policy"]
    got = (
        decision["commissioner"],
        service["line"] if service else None,
        policy["id"] if policy else None,
        decision["eligibility"],
        decision["route"],
    )
    assert got == WANTED[name]
