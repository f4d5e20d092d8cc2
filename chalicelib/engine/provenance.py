"""The provenance of one decision: the pack items it rests on, built from their clauses.

In: the matched identification rule, the service, its line, the commissioner entry in force
and the policy version applied (any may be absent). Out: `ProvenanceItem`s in that order.
Items are built once per pack item (cached), so a decision only gathers them.
"""

from __future__ import annotations

from functools import cache

from chalicelib.dsl import ast
from chalicelib.dsl.provenance import commissioner_id, policy_id
from chalicelib.engine.decision import ProvenanceItem


@cache
def _item(kind: str, item_id: str, provenance: ast.Provenance) -> ProvenanceItem:
    return ProvenanceItem(kind, item_id, provenance.sources, provenance.verified)


def rests_on(
    rule: ast.RuleDecl | None,
    service: ast.ServiceDecl | None,
    line: ast.LineDecl | None,
    entry: ast.CommissionerEntry | None,
    policy: ast.PolicyDecl | None,
) -> tuple[ProvenanceItem, ...]:
    """The provenance list of a decision that used these items (absent ones left out)."""
    found: list[ProvenanceItem] = []
    if rule is not None:
        found.append(_item("rule", rule.name, rule.provenance))
    if service is not None:
        found.append(_item("service", service.id, service.provenance))
    if line is not None:
        found.append(_item("line", line.code, line.provenance))
    if service is not None and entry is not None:
        found.append(_item("commissioner", commissioner_id(service, entry), entry.provenance))
    if policy is not None:
        found.append(_item("policy", policy_id(policy), policy.provenance))
    return tuple(found)
