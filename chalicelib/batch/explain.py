"""Why a case changed between two packs: the first clause whose result differs.

In: the decisions (or reject reasons) of one case under the base and the head pack. Out: one
line naming the rule, the clause, its result before and after, and where it lives
(`policies/cardiac.pss:14`), for the top changed cases of a what-if.
"""

from __future__ import annotations

from typing import Any

from chalicelib.activity import Activity
from chalicelib.batch.rows import reject_reason
from chalicelib.engine.decision import Decision
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import NotCoveredError, RequestError


def _matched_rule(decision: Decision) -> str | None:
    return decision.reasons[0][0].rule if decision.service and decision.reasons else None


def _rule_change(rule: str, other: PolicySet, mine: PolicySet, activity: Activity) -> str | None:
    """How `rule` (matched under `mine`) fares under `other`: its first clause not true."""
    theirs = {r.decl.name: r for r in other.rule_index.rules}.get(rule)
    ours = {r.decl.name: r for r in mine.rule_index.rules}.get(rule)
    if theirs is None or ours is None:
        return None
    _, results = theirs.condition.evaluate(activity)
    _, before = ours.condition.evaluate(activity)
    for n, (src, result) in enumerate(zip(theirs.sources, results, strict=True)):
        if result is not True:
            was = ""
            if n < len(ours.sources):
                was = f" (was `{ours.sources[n].clause}`: {_tri(before[n])})"
            return f"{rule}: `{src.clause}` is {_tri(result)}{was} at {src.at}"
    return None


def changed_clause(
    old: Decision | str,
    new: Decision | str,
    sides: tuple[PolicySet, PolicySet, Activity] | None = None,
) -> str:
    """The clause that changed an outcome (or a reject reason).

    When the identifying rule differs, the rule that stopped (or started) matching is
    evaluated under the other pack to name its first failing clause; otherwise the first
    reason whose result differs between the two decisions.
    """
    if isinstance(old, str) or isinstance(new, str):
        side, reason = ("base", old) if isinstance(old, str) else ("head", new)
        return f"rejected under {side}: {reason}"
    was, now = _matched_rule(old), _matched_rule(new)
    if sides is not None and was != now:
        base, head, activity = sides
        found = (_rule_change(was, head, base, activity) if was else None) or (
            _rule_change(now, base, head, activity) if now else None
        )
        if found:
            return found
    before = {(src.rule, src.clause): r for src, r in old.reasons}
    after = {(src.rule, src.clause): r for src, r in new.reasons}
    for src, result in new.reasons:
        if before.get((src.rule, src.clause), "absent") != result:
            previous = before.get((src.rule, src.clause), "absent")
            return (
                f"{src.rule}: `{src.clause}` is {_tri(result)} (was {_tri(previous)}) at {src.at}"
            )
    for src, result in old.reasons:
        if (src.rule, src.clause) not in after:
            return f"{src.rule}: `{src.clause}` ({_tri(result)}) no longer applies, at {src.at}"
    return "same clauses; the outcome of a clause set changed"


def explain(base: PolicySet, head: PolicySet, request: Any) -> str:
    """Decide `request` under both packs and name the clause that changed the outcome."""
    old, new = decide_or_reason(base, request), decide_or_reason(head, request)
    sides = None
    if not isinstance(old, str) and not isinstance(new, str):
        sides = (base, head, head.parse(request))
    return changed_clause(old, new, sides)


def _tri(value: object) -> str:
    if value is None:
        return "unknown"
    return str(value).lower()


def decide_or_reason(policy_set: PolicySet, request: Any) -> Decision | str:
    try:
        return policy_set.decide(request)
    except (RequestError, NotCoveredError) as exc:
        return reject_reason(exc)
