"""Policies indexed by their codes decide exactly as scanning every policy of the line does.

Every golden referral, example and author-test request of the national pack is decided by the
pack as compiled (policies looked up by code) and by the same pack with its policy index
emptied (every policy of the line tried in rank order); the decisions must be identical.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import NotCoveredError, PolicySet, RequestError, load_policy_set
from chalicelib.engine.policy_set import CodeIndex, RuleIndex
from tests.conftest import fixed_clock
from tests.pack.make_golden import GOLDEN, POLICIES
from tests.pack.test_examples import EXAMPLES


def _requests(pack: PolicySet) -> list[Any]:
    golden = [case["request"] for case in json.loads(GOLDEN.read_text(encoding="utf-8"))]
    examples = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES.glob("*.json")]
    authored = [t.input for t in pack.checked.tests if t.assessment is None]
    return golden + examples + authored


def _answer(pack: PolicySet, request: Any) -> Any:
    try:
        return pack.decide(request).to_dict()
    except (RequestError, NotCoveredError) as exc:
        return type(exc).__name__


def test_indexed_policies_decide_as_a_scan_does() -> None:
    indexed = load_policy_set(POLICIES, clock=fixed_clock)  # one clock: same evaluated_at
    scanning = load_policy_set(POLICIES, clock=fixed_clock)
    scanning.policy_index = {
        line: CodeIndex([None] * len(ranked), scanning.checked.codesets, ())
        for line, ranked in scanning.by_line.items() if line is not None and ranked
    }
    requests = _requests(indexed)
    assert len(requests) > 500
    for request in requests:
        assert _answer(indexed, request) == _answer(scanning, request), request
    # The index files policies under codes (else this test would prove nothing about it).
    filed = sum(len(indexed.by_line[line]) - len(index.unindexed)
                for line, index in indexed.policy_index.items())
    assert filed > 0


def test_indexed_rules_decide_as_a_scan_does() -> None:
    indexed = load_policy_set(POLICIES, clock=fixed_clock)
    scanning = load_policy_set(POLICIES, clock=fixed_clock)
    rules = scanning.rule_index.rules
    scan = RuleIndex(rules, scanning.checked.codesets)
    CodeIndex.__init__(scan, [None] * len(rules), scanning.checked.codesets, ())
    scanning.rule_index = scan  # every rule a candidate, in rank order
    for request in _requests(indexed):
        assert _answer(indexed, request) == _answer(scanning, request), request
    # Conjunctions with several code tests, and settled ones (code tests only), are in the
    # pack: else this would prove nothing about either.
    indexes = [indexed.rule_index, *indexed.policy_index.values()]
    assert any(len(tests) > 1 for i in indexes for tests in i.code_tests.values())
    assert indexed.rule_index.settled
    assert any(index.settled for index in indexed.policy_index.values())


def test_partly_settled_conditions_are_in_the_pack() -> None:
    # Code tests with other items: only the other items are evaluated for a candidate
    # (`CodeIndex.assumed`); the two scan tests above then prove that answers as a scan does.
    pack = load_policy_set(POLICIES, clock=fixed_clock)
    assert pack.rule_index.assumed
    assert any(index.assumed for index in pack.policy_index.values())
