"""Static analysis: conditions that can never hold, and identification rules that overlap.

`find_contradiction` looks inside every `and`/`all of` for thresholds on one name that no
value meets (`age >= 18 and age < 16`) and for an enum required to hold two values.
`rule_relations` compares identification rules as conjunctions of constraints over the
activity's dimensions (dominant procedure, primary diagnosis, age, ...): two rules *overlap*
unless some single-valued dimension is constrained to disjoint sets or ranges; an earlier rule
*shadows* a later one when each of its constraints is implied by the later one's. Rules that
are not plain conjunctions are left out of the comparison (never reported falsely).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.printer import leaf_text, value_text
from chalicelib.dsl.source import Span
from chalicelib.dsl.typecheck import list_keys
from chalicelib.dsl.types import UNITS


@dataclass(frozen=True)
class Interval:
    """A numeric range with open or closed ends."""

    low: float = -math.inf
    low_closed: bool = False
    high: float = math.inf
    high_closed: bool = False

    def meet(self, other: Interval) -> Interval:
        """Return the intersection of two intervals."""
        low, low_closed = max((self.low, not self.low_closed), (other.low, not other.low_closed))
        high, high_closed = min((self.high, self.high_closed), (other.high, other.high_closed))
        return Interval(low, not low_closed, high, high_closed)

    def empty(self) -> bool:
        """True when no number lies in the interval."""
        if self.low > self.high:
            return True
        return self.low == self.high and not (self.low_closed and self.high_closed)

    def within(self, other: Interval) -> bool:
        """True when every number of this interval lies in `other`."""
        return self.meet(other) == self


def _bound(op: str, number: float) -> Interval | None:
    return {
        ">=": Interval(number, True),
        ">": Interval(number, False),
        "<=": Interval(high=number, high_closed=True),
        "<": Interval(high=number, high_closed=False),
        "==": Interval(number, True, number, True),
    }.get(op)


_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}


def _literal(value: ast.Value) -> tuple[float, str | None] | None:
    if isinstance(value, ast.Num):
        scale = UNITS[value.unit][1] if value.unit else 1
        return float(value.value) * scale, value.unit and UNITS[value.unit][0]
    return None


def leaf_interval(leaf: ast.Condition) -> tuple[str, Interval] | None:
    """Return (key, interval) when `leaf` bounds one name by literals, else None.

    The key joins the name with the literal's dimension, so `4 weeks` and `28 days` meet.
    """
    if isinstance(leaf, ast.Compare):
        left, op, right = leaf.left, leaf.op, leaf.right
        if isinstance(left, ast.Num):
            left, op, right = right, _FLIP[op], left
        literal = _literal(right)
        if isinstance(left, ast.Num) or literal is None:
            return None
        interval = _bound(op, literal[0])
        return (f"{value_text(left)}/{literal[1]}", interval) if interval else None
    if isinstance(leaf, ast.Between) and not isinstance(leaf.value, ast.Num):
        low, high = _literal(leaf.low), _literal(leaf.high)
        if low is None or high is None or low[1] != high[1]:
            return None
        return f"{value_text(leaf.value)}/{low[1]}", Interval(low[0], True, high[0], True)
    return None


def find_contradiction(cond: ast.Condition) -> tuple[Span, str] | None:
    """Return (span, message) for the first conjunction that can never hold, else None."""
    for group in _conjunctions(cond):
        found = _contradiction_in(group)
        if found is not None:
            return found
    return None


def _conjunctions(cond: ast.Condition) -> Iterator[ast.Condition]:
    if isinstance(cond, ast.Group):
        if cond.kind == "all":
            yield cond
        for item in cond.items:
            yield from _conjunctions(item)
    elif isinstance(cond, ast.Not):
        yield from _conjunctions(cond.operand)
    elif isinstance(cond, ast.Between):
        yield cond


def _truth(value: str) -> str:
    """`yes`/`true` and `no`/`false` are one value each; enum values are themselves."""
    return {"yes": "true", "no": "false"}.get(value, value)


def _contradiction_in(cond: ast.Condition) -> tuple[Span, str] | None:
    leaves = cond.items if isinstance(cond, ast.Group) else (cond,)
    ranges: dict[str, tuple[Interval, list[ast.Condition]]] = {}
    enums: dict[str, ast.IsValue] = {}
    for leaf in leaves:
        if isinstance(leaf, ast.IsValue) and not leaf.negated:
            other = enums.setdefault(leaf.name, leaf)
            if _truth(other.value) != _truth(leaf.value):
                return cond.span, f"`{leaf_text(other)}` and `{leaf_text(leaf)}` cannot both hold"
        bounded = leaf_interval(leaf)
        if bounded is None:
            continue
        key, interval = bounded
        previous, sources = ranges.get(key, (Interval(), []))
        merged = previous.meet(interval)
        sources = [*sources, leaf]
        if merged.empty():
            texts = " and ".join(f"`{leaf_text(s)}`" for s in sources)
            verb = "cannot both hold" if len(sources) == 2 else "cannot all hold"
            if len(sources) == 1:
                return cond.span, f"`{leaf_text(leaf)}` holds for no value"
            return cond.span, f"{texts} {verb}"
        ranges[key] = (merged, sources)
    return None


# --- identification rules ----------------------------------------------------------------

# Dimensions an activity has at most one value in: single-valued selectors, and `sex`.
_SINGLE_VALUED = frozenset({*(s for s in ast.Selector if s.single_valued), "sex"})
_IMPLIES: dict[str, str] = {s: s.implies for s in ast.Selector if s.implies is not None}


@dataclass(frozen=True)
class Profile:
    """A rule as constraints: per dimension, the code sets it must meet; and an age range."""

    sets: tuple[tuple[str, CodeSet], ...]
    age: Interval


def profile(rule: ast.RuleDecl, codesets: dict[str, CodeSet]) -> Profile | None:
    """Return the rule's constraints, or None when it is not a plain conjunction."""
    cond = rule.when
    leaves = cond.items if isinstance(cond, ast.Group) and cond.kind == "all" else (cond,)
    sets: list[tuple[str, CodeSet]] = []
    age = Interval()
    for leaf in leaves:
        constraint = _constraint(leaf, codesets)
        if constraint is None:
            bounded = leaf_interval(leaf)
            if bounded is None or not bounded[0].startswith("age/"):
                return None
            age = age.meet(_age_in_months(*bounded))
        else:
            sets.append(constraint)
    return Profile(tuple(sets), age)


def _constraint(leaf: ast.Condition, codesets: dict[str, CodeSet]) -> tuple[str, CodeSet] | None:
    if isinstance(leaf, ast.InSet) and leaf.set_name in codesets:
        return leaf.selector, codesets[leaf.set_name]
    if isinstance(leaf, ast.InList):
        dimension = leaf.selector or (leaf.fact if leaf.fact == "sex" else None)
        if dimension is None:
            return None
        system, keys = list_keys(dimension, leaf.items)
        return dimension, CodeSet.build("(list)", system or "text", keys)
    if isinstance(leaf, ast.IsValue) and leaf.name == "sex" and not leaf.negated:
        return "sex", CodeSet.build("(list)", "text", [leaf.value])
    return None


def _age_in_months(key: str, interval: Interval) -> Interval:
    """Age bounds in months: a bare number is years (`age >= 18`), a unit says itself."""
    if key != "age/None":
        return interval  # literals with a unit are already in months (years x 12)
    return Interval(interval.low * 12, interval.low_closed, interval.high * 12,
                    interval.high_closed)


def can_overlap(a: Profile, b: Profile) -> bool:
    """False only when some single-valued dimension or the age range cannot meet."""
    if a.age.meet(b.age).empty():
        return False
    for dim_a, set_a in a.sets:
        for dim_b, set_b in b.sets:
            if dim_a == dim_b and dim_a in _SINGLE_VALUED and not set_a.intersects(set_b):
                return False
    return True


def covers(first: Profile, second: Profile) -> bool:
    """True when every activity meeting `second` also meets `first`."""
    if not second.age.within(first.age):
        return False
    for dim_a, set_a in first.sets:
        implied = any(
            (dim_b == dim_a or _IMPLIES.get(dim_b) == dim_a) and set_a.covers(set_b)
            for dim_b, set_b in second.sets
        )
        if not implied:
            return False
    return True


def rule_relations(
    rules: list[ast.RuleDecl], codesets: dict[str, CodeSet]
) -> list[tuple[str, ast.RuleDecl, ast.RuleDecl]]:
    """Return ("ambiguous" | "shadowed", earlier, later) for every related pair of rules."""
    profiled = [(r, profile(r, codesets)) for r in sorted(rules, key=lambda r: (r.rank, r.name))]
    usable = [(r, p) for r, p in profiled if p is not None]
    found: list[tuple[str, ast.RuleDecl, ast.RuleDecl]] = []
    for i, (first, p1) in enumerate(usable):
        for second, p2 in usable[i + 1 :]:
            if first.rank == second.rank:
                if can_overlap(p1, p2):
                    found.append(("ambiguous", first, second))
            elif covers(p1, p2):
                found.append(("shadowed", first, second))
    return found
