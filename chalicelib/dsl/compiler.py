"""Checked AST to evaluators: Python closures, never `eval` of policy text.

In: a condition of a checked pack, the value types of the names it uses and the compiled code
sets. Out: a `CompiledCondition`, the one evaluator of a condition. It answers three things
from one definition of the semantics (leaf closures combined by `kleene`):

* its value — `predicate(activity)`: True, False or None (unknown), short-circuiting;
* its explanation — `evaluate(activity)`: the value and every leaf's result, so a decision
  can list each clause with its outcome (leaves are cheap and the reasons need them all);
* its missing inputs — `missing(activity, results)`: what an unknown answer waits for.

The compiled form keeps its structure as data — `shape` (a tree of `Node`s over leaf
indexes) and each `Leaf`'s checked AST clause — so another backend (a columnar evaluator
over Arrow arrays, say) can compile the same node tree to vectorised expressions, combining
leaves with the same Kleene tables. Thresholds are converted to the fact's own unit at
compile time; `age` is read in exact months (`Activity.age_months`).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.ast import LEAF_TYPES, Selector
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.kleene import Tri, combine, decided, first_decides, negate
from chalicelib.dsl.printer import leaf_text
from chalicelib.dsl.typecheck import list_keys
from chalicelib.dsl.types import BUILTINS, UNITS, VType

LeafFn = Callable[[Activity], Tri]
ValueFn = Callable[[Activity], Any]

OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Leaf:
    """One clause: its text, where it is written, the inputs it reads, and its evaluator.

    `clause` is the checked AST the leaf was compiled from (a leaf condition, or `not` of
    one), for backends that compile leaves their own way.
    """

    text: str
    at: str
    needs: tuple[str, ...]  # facts and attestations whose absence makes it unknown
    fn: LeafFn
    clause: ast.Condition


@dataclass(frozen=True)
class Node:
    """The shape of a condition over its leaves: `leaf` (index), `not`, or a group kind."""

    kind: str
    index: int = -1
    n: int = 0
    children: tuple[Node, ...] = ()


class Evaluator(Protocol):
    """What the engine asks of a compiled condition, whatever compiled it."""

    @property
    def leaves(self) -> tuple[Leaf, ...]:
        """The clauses, in the order `evaluate` reports them."""

    def predicate(self, activity: Activity, /) -> Tri:
        """The condition's value (True, False, None for unknown), short-circuiting."""

    def evaluate(self, activity: Activity) -> tuple[Tri, list[Tri]]:
        """The value and each leaf's value: the explanation a decision's reasons list."""

    def missing(self, activity: Activity, results: list[Tri]) -> list[str]:
        """The inputs whose absence leaves an unknown value unknown, in clause order."""


@dataclass(frozen=True)
class CompiledCondition:
    """A condition ready to evaluate: its leaves, its shape, and closures built from them."""

    leaves: tuple[Leaf, ...]
    shape: Node
    combiner: Callable[[list[Tri]], Tri]
    predicate: LeafFn  # the same answer, short-circuiting, without per-leaf results
    probe: Probe  # finds the missing inputs of an unknown answer
    fns: tuple[LeafFn, ...]  # each leaf's closure, in leaf order

    def evaluate(self, activity: Activity) -> tuple[Tri, list[Tri]]:
        """Return the condition's value and each leaf's value."""
        results = [fn(activity) for fn in self.fns]
        return self.combiner(results), results

    def assuming(self, true_items: frozenset[int]) -> Assuming | AssumingOne:
        """This condition, an `all` group, evaluated knowing its items `true_items` are true.

        The items are leaves (a code index settles them, `engine.policy_set.CodeIndex`); the
        others are evaluated and combined as the group would combine them, true items being
        its identity. Results are reported for every leaf, as `evaluate` reports them.
        """
        shape = self.shape
        if shape.kind != "all" or any(shape.children[i].kind != "leaf" for i in true_items):
            raise ValueError("only leaf items of an `all` group can be assumed true")
        known = {shape.children[i].index for i in true_items}
        rest = [child for i, child in enumerate(shape.children) if i not in true_items]
        combiner = _combiner(rest[0] if len(rest) == 1 else Node("all", children=tuple(rest)))
        template = tuple(True if i in known else None for i in range(len(self.fns)))
        fns = tuple((i, fn) for i, fn in enumerate(self.fns) if i not in known)
        if len(rest) == 1 and rest[0].kind == "leaf":
            # One other leaf: its value is the group's (a rule such as `codes and age >= 18`).
            index = rest[0].index
            return AssumingOne(template[:index], self.fns[index], template[index + 1:])
        return Assuming(template, fns, combiner)

    def missing(self, activity: Activity, results: list[Tri]) -> list[str]:
        """Names whose absence leaves the condition unknown, in clause order.

        Call it only when the condition's value is unknown (`evaluate` said None). Only leaves
        under unknown nodes count: a known part never asks for more input. The walk descends
        only into subtrees that hold an unknown leaf and are unknown themselves.
        """
        found: list[str] = []
        self._walk(self.probe, activity, results, found)
        return list(dict.fromkeys(found)) if len(found) > 1 else found

    def _walk(self, probe: Probe, activity: Activity, results: list[Tri],
              found: list[str]) -> None:
        if probe.leaf >= 0:
            found += probe.absent(activity)
            return
        for child in probe.children:
            if child.leaf >= 0:  # leaves inline: most children are leaves
                if results[child.leaf] is None:
                    found += child.absent(activity)
            elif None in results[child.lo : child.hi] and child.value(results) is None:
                self._walk(child, activity, results, found)


@dataclass(frozen=True)
class Assuming:
    """A condition's `evaluate` when some of its leaves are known true (`assuming`)."""

    template: tuple[Tri, ...]  # True at the known leaves
    fns: tuple[tuple[int, LeafFn], ...]  # the other leaves, by index
    combiner: Callable[[list[Tri]], Tri]  # the group's value over the other items

    def evaluate(self, activity: Activity) -> tuple[Tri, list[Tri]]:
        """Return the condition's value and each leaf's value."""
        results = list(self.template)
        for index, fn in self.fns:
            results[index] = fn(activity)
        return self.combiner(results), results


@dataclass(frozen=True)
class AssumingOne:
    """`Assuming` when one leaf is left: the group's value is that leaf's."""

    before: tuple[Tri, ...]  # the known results before the leaf, and after it
    fn: LeafFn
    after: tuple[Tri, ...]

    def evaluate(self, activity: Activity) -> tuple[Tri, list[Tri]]:
        """Return the condition's value and each leaf's value."""
        value = self.fn(activity)
        return value, [*self.before, value, *self.after]


@dataclass(frozen=True)
class Probe:
    """A node of a condition for the missing-input walk: its leaves are `lo..hi-1`."""

    lo: int
    hi: int
    value: Callable[[list[Tri]], Tri]
    children: tuple[Probe, ...] = ()
    leaf: int = -1
    absent: Callable[[Activity], list[str]] = lambda a: []  # a leaf's inputs not given


def _probe(shape: Node, leaves: Sequence[Leaf]) -> Probe:
    """Build the probe tree (leaves are numbered depth-first, so subtrees are ranges)."""
    value = _combiner(shape)
    if shape.kind == "leaf":
        absent = _absent_fn(leaves[shape.index].needs)
        return Probe(shape.index, shape.index + 1, value, (), shape.index, absent)
    children = tuple(_probe(child, leaves) for child in shape.children)
    return Probe(children[0].lo, children[-1].hi, value, children)


def _absent_fn(needs: tuple[str, ...]) -> Callable[[Activity], list[str]]:
    """A closure listing which of a leaf's inputs the activity lacks (names without `@`)."""
    if len(needs) == 1 and not needs[0].startswith("@") and needs[0] not in _ACTIVITY_NEEDS:
        fact = needs[0]
        return lambda a: [] if fact in a.facts else [fact]
    if len(needs) == 1 and needs[0].startswith("@"):
        attestation = needs[0][1:]
        return lambda a: [] if attestation in a.attestations else [attestation]
    return lambda a: [n.lstrip("@") for n in needs if _absent(n, a)]


def _absent(name: str, activity: Activity) -> bool:
    if name.startswith("@"):
        return name[1:] not in activity.attestations
    if name in _ACTIVITY_NEEDS:
        return getattr(activity, _ACTIVITY_NEEDS[name]) is None
    return name not in activity.facts


# The names every condition may read besides facts (`types.BUILTINS`), as `Activity` fields.
_BUILTIN_READERS: dict[str, ValueFn] = {
    "age": lambda a: a.age_months,
    "decision_date": lambda a: a.date,
    "sex": lambda a: a.sex,
}
# Inputs that are `Activity` fields rather than facts: single-valued selectors, and `sex`.
_ACTIVITY_NEEDS = {**{s.value: s.field for s in Selector if not s.many}, "sex": "sex"}


class Compiler:
    """Compiles conditions against one set of names (a pack, or an assessment's inputs)."""

    def __init__(self, types: dict[str, VType], codesets: dict[str, CodeSet]) -> None:
        self.types = types
        self.codesets = codesets

    def compile(self, cond: ast.Condition) -> CompiledCondition:
        """Compile a checked condition."""
        leaves: list[Leaf] = []
        shape = self._shape(cond, leaves)
        fns = [leaf.fn for leaf in leaves]
        return CompiledCondition(tuple(leaves), shape, _combiner(shape), _predicate(shape, fns),
                                 _probe(shape, leaves), tuple(fns))

    def _shape(self, cond: ast.Condition, leaves: list[Leaf]) -> Node:
        if isinstance(cond, ast.Group):
            children = tuple(self._shape(item, leaves) for item in cond.items)
            return Node(cond.kind, n=cond.n, children=children)
        if isinstance(cond, ast.Not) and isinstance(cond.operand, LEAF_TYPES):
            # `not X` over one clause is one clause: its reason reads `not X: true` when the
            # criterion is met, never `X: false`, which a clinician would read as a failure.
            negated = self._negated(cond.operand)
            text = "not " + leaf_text(cond.operand)
            needs = _needs(cond.operand, self.types)
            leaves.append(Leaf(text, cond.span.at(), needs, negated, cond))
            return Node("leaf", index=len(leaves) - 1)
        if isinstance(cond, ast.Not):
            return Node("not", children=(self._shape(cond.operand, leaves),))
        leaves.append(
            Leaf(leaf_text(cond), cond.span.at(), _needs(cond, self.types), self.leaf(cond), cond)
        )
        return Node("leaf", index=len(leaves) - 1)

    def _negated(self, operand: ast.Condition) -> LeafFn:
        """The closure of `not` one clause. `not` a yes/no fact is `fact is no`, and `not`
        `fact is value` is `fact is not value` (one call, not two); facts hold exact bools,
        so either answers as `negate` of the clause would."""
        vtype = self.types.get(operand.name) if isinstance(operand, ast.BoolRef) else None
        if isinstance(operand, ast.BoolRef) and vtype is not None and vtype.kind == "bool":
            return self._is_value(ast.IsValue(operand.name, "no"))
        if isinstance(operand, ast.IsValue):
            return self._is_value(ast.IsValue(operand.name, operand.value, not operand.negated))
        inner = self.leaf(operand)
        return lambda a: negate(inner(a))

    def leaf(self, cond: ast.Condition) -> LeafFn:
        """Compile one leaf condition to a closure returning True, False or None."""
        if isinstance(cond, ast.Compare):
            return self._compare(cond.op, cond.left, cond.right)
        if isinstance(cond, ast.Between):
            low = self._compare(">=", cond.value, cond.low)
            high = self._compare("<=", cond.value, cond.high)
            return lambda a: decided(False, (low(a), high(a)))
        if isinstance(cond, ast.IsValue):
            return self._is_value(cond)
        if isinstance(cond, ast.InSet):
            return _selector_test(Selector(cond.selector), self.codesets[cond.set_name])
        if isinstance(cond, ast.InList):
            return self._in_list(cond)
        if isinstance(cond, ast.BoolRef):
            name = cond.name
            return lambda a: a.facts.get(name)
        if isinstance(cond, ast.Attested):
            attestation = cond.name
            return lambda a: True if attestation in a.attestations else None
        if isinstance(cond, ast.Known):
            known = cond.name
            return lambda a: known in a.facts
        raise TypeError(f"not a leaf: {cond!r}")

    def _is_value(self, cond: ast.IsValue) -> LeafFn:
        wanted: Any = cond.value
        if self.types[cond.name].kind == "bool":
            wanted = cond.value in ("yes", "true")
        name = cond.name
        if name not in _BUILTIN_READERS:  # a fact, read in place: one call less per leaf
            if cond.negated:
                return lambda a: None if (v := a.facts.get(name)) is None else v != wanted
            return lambda a: None if (v := a.facts.get(name)) is None else v == wanted
        getter = self._getter(name)
        if cond.negated:
            return lambda a: None if (v := getter(a)) is None else v != wanted
        return lambda a: None if (v := getter(a)) is None else v == wanted

    def _in_list(self, cond: ast.InList) -> LeafFn:
        if cond.fact is not None:
            values = frozenset(cond.items)
            name = cond.fact
            if name not in _BUILTIN_READERS:
                return lambda a: None if (v := a.facts.get(name)) is None else v in values
            getter = self._getter(name)
            return lambda a: None if (v := getter(a)) is None else v in values
        selector = Selector(cond.selector or "")
        system, keys = list_keys(selector, cond.items)
        if system is not None:
            return _selector_test(selector, CodeSet.build("(list)", system, keys))
        return _selector_test(selector, CodeSet("(list)", "", frozenset(keys)))

    def _reader(self, name: str) -> tuple[ValueFn, float]:
        """A closure reading a number name, and the scale of what it reads to base units.

        Facts are read in their own unit (scale: the unit's factor); `age` is read in exact
        months, its dimension's base, whatever unit `age` is written in (bare: years).
        """
        if name == "age":
            return _BUILTIN_READERS["age"], 1
        return self._getter(name), self.type_of(ast.Ref(name)).scale

    def _getter(self, name: str) -> ValueFn:
        builtin = _BUILTIN_READERS.get(name)
        if builtin is not None:
            return builtin
        return lambda a: a.facts.get(name)

    def type_of(self, value: ast.Value) -> VType:
        """The value type of a checked value (numbers carry their dimension and scale)."""
        if isinstance(value, ast.Num):
            if value.unit is None:
                return VType("number")
            dim, scale = UNITS[value.unit]
            return VType("number", dim, scale)
        if isinstance(value, ast.DateLit):
            return VType("date")
        if isinstance(value, ast.Ref):
            return self.types.get(value.name) or BUILTINS[value.name]
        if isinstance(value, ast.BinOp):
            left, right = self.type_of(value.left), self.type_of(value.right)
            if left.kind == right.kind == "date":
                return VType("number", "days", 1)
            return left if left.kind == "date" or left.dim else right
        return VType("string")

    def _compare(self, op: str, left: ast.Value, right: ast.Value) -> LeafFn:
        test = OPS[op]
        lt, rt = self.type_of(left), self.type_of(right)
        # Fast path: a name against a literal; the threshold is converted to the name's unit.
        if isinstance(left, ast.Ref) and isinstance(right, ast.Num) and lt.kind == "number":
            getter, read_scale = self._reader(left.name)
            threshold = in_units(right, lt.scale, read_scale)
            name = left.name
            if name not in _BUILTIN_READERS:
                return lambda a: None if (v := a.facts.get(name)) is None else test(v, threshold)
            return lambda a: None if (v := getter(a)) is None else test(v, threshold)
        lf = self.value(left, rt.scale if lt.dim is None else 1)
        rf = self.value(right, lt.scale if rt.dim is None else 1)

        def compare(a: Activity) -> Tri:
            x = lf(a)
            if x is None:
                return None
            y = rf(a)
            return None if y is None else test(x, y)

        return compare

    def value(self, value: ast.Value, adopt: float = 1) -> ValueFn:
        """Compile a value to a closure giving it in base units (None when unknown).

        `adopt` is the scale a bare number takes from what it is compared or combined with.
        """
        if isinstance(value, ast.Num):
            constant = float(value.value) * (UNITS[value.unit][1] if value.unit else adopt)
            return lambda a: constant
        if isinstance(value, ast.DateLit):
            day = value.value
            return lambda a: day
        if isinstance(value, ast.Ref):
            getter, scale = self._reader(value.name)
            if scale == 1:
                return getter
            return lambda a: None if (v := getter(a)) is None else v * scale
        if isinstance(value, ast.BinOp):
            return self._binop(value, adopt)
        text = value.value
        return lambda a: text

    def _binop(self, value: ast.BinOp, adopt: float) -> ValueFn:
        lt, rt = self.type_of(value.left), self.type_of(value.right)
        lf = self.value(value.left, rt.scale if lt.dim is None else adopt)
        rf = self.value(value.right, lt.scale if rt.dim is None else adopt)
        if lt.kind == "date" and rt.kind == "date":
            return lambda a: None if (x := lf(a)) is None or (y := rf(a)) is None else (x - y).days
        if lt.kind == "date":
            sign = 1 if value.op == "+" else -1

            def shift(a: Activity) -> dt.date | None:
                x, y = lf(a), rf(a)
                if x is None or y is None:
                    return None
                try:
                    result: dt.date = x + dt.timedelta(days=sign * round(y))
                except OverflowError:
                    # Beyond the calendar (a cycle of millions of days): the far past/future
                    # still compares correctly with any real date.
                    return dt.date.max if sign * y > 0 else dt.date.min
                return result

            return shift
        combine_op = operator.add if value.op == "+" else operator.sub
        return lambda a: None if (x := lf(a)) is None or (y := rf(a)) is None else combine_op(x, y)


def in_units(num: ast.Num, scale: float, read_scale: float) -> float:
    """A literal in the unit a name is read in: a bare number is in the name's own unit
    (`scale` to base), a quantity in its own; `read_scale` is what the reader gives."""
    if num.unit is None and scale == read_scale:
        return num.value
    base = float(num.value) * (UNITS[num.unit][1] if num.unit else scale)
    value = base / read_scale
    return int(value) if value.is_integer() else value


def _selector_test(selector: Selector, codes: CodeSet) -> LeafFn:
    """The leaf closure of `selector in codes`: a list without codes is False, an absent
    single value unknown. The field is read by its position in `Activity` (a tuple)."""
    position = Activity._fields.index(selector.field)
    match = codes.matcher()
    if selector.many and selector.first_only:
        def first(a: Any) -> Tri:
            return bool(found := a[position]) and match(found[0])
        return first
    if selector.many and not codes.hierarchical:
        disjoint = codes.keys.isdisjoint  # exact codes: one set operation at C speed

        def exact(a: Any) -> Tri:
            return not disjoint(a[position])
        return exact
    if selector.many:
        def listed(a: Any) -> Tri:
            return any(map(match, a[position]))
        return listed

    def single(a: Any) -> Tri:
        return None if (v := a[position]) is None else match(v)
    return single


def _needs(cond: ast.Condition, types: dict[str, VType]) -> tuple[str, ...]:
    if isinstance(cond, ast.Attested):
        return (f"@{cond.name}",)
    if isinstance(cond, ast.InSet | ast.InList) and cond.selector in _ACTIVITY_NEEDS:
        return (cond.selector,)
    names: list[str] = []
    if isinstance(cond, ast.IsValue | ast.BoolRef | ast.Known):
        names.append(cond.name)
    elif isinstance(cond, ast.InList) and cond.fact:
        names.append(cond.fact)
    elif isinstance(cond, ast.Compare):
        names.extend(_refs(cond.left) + _refs(cond.right))
    elif isinstance(cond, ast.Between):
        names.extend(_refs(cond.value) + _refs(cond.low) + _refs(cond.high))
    return tuple(n for n in dict.fromkeys(names) if n not in ("age", "decision_date"))


def _refs(value: ast.Value) -> list[str]:
    if isinstance(value, ast.Ref):
        return [value.name]
    if isinstance(value, ast.BinOp):
        return _refs(value.left) + _refs(value.right)
    return []


def _combiner(shape: Node) -> Callable[[list[Tri]], Tri]:
    """Build a closure combining leaf results for `shape`, specialised for common shapes.

    Every group kind is symmetric in its items, so a group reads its leaf children's results
    first (one `itemgetter`, or a slice when they are contiguous) and then its subgroups'.
    """
    if shape.kind == "leaf":
        leaf: Callable[[list[Tri]], Tri] = operator.itemgetter(shape.index)
        return leaf
    if shape.kind == "not":
        inner = _combiner(shape.children[0])
        return lambda r: negate(inner(r))
    indexes = [c.index for c in shape.children if c.kind == "leaf"]
    subs = [_combiner(c) for c in shape.children if c.kind != "leaf"]
    pick = _picker(indexes)
    kind, n = shape.kind, shape.n
    if kind in ("all", "any"):
        stop = kind == "any"  # the value that decides the group on its own
        if not subs:
            return lambda r: decided(stop, pick(r))
        if len(subs) == 1:
            sub = subs[0]
            return lambda r: decided(stop, (*pick(r), sub(r)))
        if len(subs) == 2:
            first, second = subs
            return lambda r: decided(stop, (*pick(r), first(r), second(r)))
        return lambda r: decided(stop, (*pick(r), *[s(r) for s in subs]))
    return lambda r: combine(kind, n, (*pick(r), *[s(r) for s in subs]))


def _picker(indexes: list[int]) -> Callable[[list[Tri]], Sequence[Tri]]:
    """A C-level `itemgetter` reading the results at `indexes` from a result list, as a
    sequence (a slice when they are contiguous, as a one-index one is)."""
    if not indexes:
        return lambda r: ()
    if indexes == list(range(indexes[0], indexes[0] + len(indexes))):
        return operator.itemgetter(slice(indexes[0], indexes[0] + len(indexes)))
    pick: Callable[[list[Tri]], Sequence[Tri]] = operator.itemgetter(*indexes)
    return pick


def _predicate(shape: Node, fns: list[LeafFn]) -> LeafFn:
    """Build a short-circuiting closure for `shape`: Kleene logic, leaves called lazily."""
    if shape.kind == "leaf":
        return fns[shape.index]
    parts = [_predicate(child, fns) for child in shape.children]
    if shape.kind == "not":
        inner = parts[0]
        return lambda a: negate(inner(a))
    if shape.kind in ("all", "any"):
        stop = shape.kind == "any"  # the value that decides the group on its own
        return lambda a: first_decides(stop, (part(a) for part in parts))
    kind, n = shape.kind, shape.n
    return lambda a: combine(kind, n, [p(a) for p in parts])
