"""The provenance of one decision: the pack items it rests on, built from their clauses.

In: a checked pack, once (`ProvenanceIndex`); then, per decision, the matched identification
rule, the service, its line, the commissioner entry in force and the policy version applied
(any may be absent). Out: `ProvenanceItem`s in that order. Every item is built when the policy
set compiles, so a decision only looks them up (by object identity: the checked pack keeps
its declarations alive for as long as the index).
"""

from __future__ import annotations

from chalicelib.dsl import ast
from chalicelib.dsl.checker import CheckedPack
from chalicelib.dsl.provenance import commissioner_id, policy_id
from chalicelib.engine.decision import ProvenanceItem


def _item(kind: str, item_id: str, provenance: ast.Provenance) -> ProvenanceItem:
    return ProvenanceItem(kind, item_id, provenance.sources, provenance.verified,
                          provenance.unverified)


class ProvenanceIndex:
    """Every rule, service, line, commissioner entry and policy of a pack as provenance items."""

    def __init__(self, checked: CheckedPack) -> None:
        self._items: dict[int, ProvenanceItem] = {}
        # Each combination a decision used, built once (a pack has few): by identities too.
        self._lists: dict[tuple[int, ...], tuple[ProvenanceItem, ...]] = {}
        for rule in checked.rules:
            self._items[id(rule)] = _item("rule", rule.name, rule.provenance)
        for service in checked.services.values():
            self._items[id(service)] = _item("service", service.id, service.provenance)
            for entry in service.commissioners:
                self._items[id(entry)] = _item(
                    "commissioner", commissioner_id(service, entry), entry.provenance
                )
        for line in checked.lines.values():
            self._items[id(line)] = _item("line", line.code, line.provenance)
        for policy in checked.policies:
            self._items[id(policy)] = _item("policy", policy_id(policy), policy.provenance)

    def rests_on(
        self,
        rule: ast.RuleDecl | None,
        service: ast.ServiceDecl | None,
        line: ast.LineDecl | None,
        entry: ast.CommissionerEntry | None,
        policy: ast.PolicyDecl | None,
    ) -> tuple[ProvenanceItem, ...]:
        """The provenance list of a decision that used these items (absent ones left out)."""
        key = (id(rule), id(service), id(line), id(entry), id(policy))
        found = self._lists.get(key)
        if found is None:
            items = self._items
            found = self._lists[key] = tuple(
                items[id(decl)] for decl in (rule, service, line, entry, policy)
                if decl is not None
            )
        return found
