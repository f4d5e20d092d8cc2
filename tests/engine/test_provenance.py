"""Every decision lists the pack items it rests on, their sources and whether each is verified."""

from __future__ import annotations

import pytest

from chalicelib.engine.policy_set import PolicySet
from tests.conftest import build
from tests.provenance_pack import CAM, NEITHER, PACK, SI, TAVI, TAVI_PS, VALVE


@pytest.fixture(scope="module")
def pack() -> PolicySet:
    return build(PACK)


def test_a_verified_answer_lists_rule_service_line_commissioner_and_policy(pack: PolicySet) -> None:
    body = pack.decide(TAVI).to_dict()
    assert body["provenance"] == [
        {"kind": "rule", "id": "tavi", "source": [CAM], "verified": True,
         "unverified_reasons": []},
        {"kind": "service", "id": "7", "source": [SI], "verified": True,
         "unverified_reasons": []},
        {"kind": "line", "id": "NCBPS13A", "source": [CAM], "verified": True,
         "unverified_reasons": []},
        {"kind": "commissioner", "id": "7: nhs_england from 2013-04-01", "source": [SI],
         "verified": True, "unverified_reasons": []},
        {"kind": "policy", "id": "TAVI-PA v1", "source": [TAVI_PS], "verified": True,
         "unverified_reasons": []},
    ]
    assert body["unverified"] is False


def test_an_answer_resting_on_unverified_items_says_so(pack: PolicySet) -> None:
    decision = pack.decide(VALVE)
    body = decision.to_dict()
    by_kind = {p["kind"]: p for p in body["provenance"]}
    # Each unverified item carries the pack's own reason, word for word.
    assert by_kind["rule"] == {"kind": "rule", "id": "valve", "source": [], "verified": False,
                               "unverified_reasons": ["guessed from the code"]}
    assert by_kind["line"]["verified"] is False
    assert by_kind["line"]["unverified_reasons"] == ["no source names this code"]
    assert by_kind["service"]["verified"] is True
    assert "policy" not in by_kind  # no policy governs NCBPS13B
    assert decision.unverified and body["unverified"] is True


def test_an_answer_no_rule_reaches_rests_on_no_item(pack: PolicySet) -> None:
    body = pack.decide(NEITHER).to_dict()
    assert body["commissioner"] == "icb_core"
    assert body["provenance"] == [] and body["unverified"] is False
