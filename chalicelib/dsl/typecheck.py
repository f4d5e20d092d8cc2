"""Name resolution and type checking of conditions and values.

In: a condition and the names in scope (facts, attestations, code sets). Out: diagnostics
through the scope's error sink, and True when the condition is well typed. Three contexts:
identification rules may use only activity (codes, age, sex, provider...), policies also facts
and attestations, assessments only their own inputs and factors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.codes import normalise
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.source import Span, did_you_mean
from chalicelib.dsl.types import BOOL, DATE, DAYS, NUMBER, REGIONS, STRING, UNITS, VType

ErrorSink = Callable[[Span, str, str], None]



def list_keys(selector: str, items: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The code system a selector reads and the canonical keys of its `in (...)` items.

    Codes are normalised as requests are (`"K26.2"` -> `K262`); other values (treatment
    function, region, ICB) stay as written, with no system. `selector` may also be a
    dimension that is not a selector (`sex`): its values stay as written.
    """
    known = ast.Selector.named(selector)
    system = known.system if known is not None else None
    if system is None:
        return None, list(items)
    return system, [normalise(system, item) or item for item in items]
RULE_NAMES = ("age", "sex")


@dataclass
class Scope:
    """The names a condition may use."""

    types: dict[str, VType]
    attestations: set[str]
    codesets: dict[str, CodeSet]
    error: ErrorSink


class ConditionTyper:
    """Checks conditions in one context: `rule`, `policy` or `assessment`."""

    def __init__(self, scope: Scope, context: str) -> None:
        self.scope = scope
        self.context = context
        self.ok = True

    def _error(self, span: Span, message: str, hint: str = "") -> None:
        self.ok = False
        self.scope.error(span, message, hint)

    def condition(self, cond: ast.Condition) -> bool:
        """Check `cond`; return True when it has no error."""
        self.ok = True
        self._cond(cond)
        return self.ok

    def _cond(self, cond: ast.Condition) -> None:
        if isinstance(cond, ast.Group):
            self._group(cond)
        elif isinstance(cond, ast.Not):
            self._cond(cond.operand)
        elif isinstance(cond, ast.Compare):
            self._compare(cond.left, cond.right, cond.span)
        elif isinstance(cond, ast.Between):
            self._compare(cond.value, cond.low, cond.span)
            self._compare(cond.value, cond.high, cond.span)
        elif isinstance(cond, ast.IsValue):
            self._is_value(cond)
        elif isinstance(cond, ast.InSet):
            self._in_set(cond)
        elif isinstance(cond, ast.InList):
            self._in_list(cond)
        elif isinstance(cond, ast.BoolRef):
            found = self._name(cond.name, cond.span)
            if found is not None and found.kind != "bool":
                self._error(
                    cond.span,
                    f"`{cond.name}` is {found.describe()}, not yes/no",
                    "compare it with a value, e.g. `>=` or `is`",
                )
        elif isinstance(cond, ast.Attested):
            self._attested(cond)
        elif isinstance(cond, ast.Known):
            self._known(cond)

    def _group(self, group: ast.Group) -> None:
        for item in group.items:
            self._cond(item)
        if group.kind == "at_least" and not 1 <= group.n <= len(group.items):
            self._error(
                group.span,
                f"`at least {group.n} of` needs between 1 and "
                f"{len(group.items)} (the number of conditions listed)",
            )
        if group.kind == "exactly_one" and len(group.items) < 2:
            self._error(group.span, "`exactly one of` needs at least two conditions")

    def _attested(self, cond: ast.Attested) -> None:
        if self.context != "policy":
            self._error(cond.span, f"attestations cannot be used in {self._where()}")
        elif cond.name not in self.scope.attestations:
            self._error(
                cond.span,
                f"unknown attestation `{cond.name}`",
                did_you_mean(cond.name, self.scope.attestations),
            )

    def _known(self, cond: ast.Known) -> None:
        found = self._name(cond.name, cond.span)
        if found is not None and cond.name in ("age", "decision_date", "sex"):
            self._error(cond.span, f"`{cond.name}` is always known")

    def _where(self) -> str:
        return {"rule": "identification rules", "assessment": "assessments"}.get(
            self.context, "policies"
        )

    def _name(self, name: str, span: Span) -> VType | None:
        if self.context == "rule" and name not in RULE_NAMES:
            if name in self.scope.types:
                self._error(
                    span,
                    f"identification rules may only use activity, not the fact `{name}`",
                    "move this criterion into a policy",
                )
            else:
                self._error(
                    span,
                    f"unknown name `{name}`",
                    did_you_mean(name, RULE_NAMES) or "rules may use: age, sex",
                )
            return None
        found = self.scope.types.get(name)
        if found is None:
            hint = did_you_mean(name, [*self.scope.types, *self.scope.attestations])
            if name in self.scope.attestations:
                hint = f"`{name}` is an attestation: write `attested {name}`"
            self._error(span, f"unknown fact `{name}`", hint)
        return found

    def _is_value(self, cond: ast.IsValue) -> None:
        found = self._name(cond.name, cond.span)
        if found is None:
            return
        if found.kind == "bool":
            if cond.value not in ("yes", "no", "true", "false"):
                self._error(cond.span, f"`{cond.name}` is yes/no, not `{cond.value}`")
        elif found.kind == "enum":
            if cond.value not in found.values:
                self._error(
                    cond.span,
                    f"`{cond.value}` is not a value of `{cond.name}`",
                    did_you_mean(cond.value, found.values) or "values: " + ", ".join(found.values),
                )
        else:
            self._error(
                cond.span,
                f"`is` compares enum and yes/no facts; `{cond.name}` is {found.describe()}",
                "use a comparison such as `==` or `>=`",
            )

    def _in_set(self, cond: ast.InSet) -> None:
        if self.context == "assessment":
            self._error(cond.span, "assessments cannot use activity codes")
            return
        codeset = self.scope.codesets.get(cond.set_name)
        if codeset is None:
            self._error(
                cond.span,
                f"unknown code set `{cond.set_name}`",
                did_you_mean(cond.set_name, self.scope.codesets),
            )
            return
        system = ast.Selector(cond.selector).system
        if system is None:
            self._error(
                cond.span,
                f"`{cond.selector}` takes a list of values, not a code set",
                f'write `{cond.selector} in ("...", "...")`',
            )
        elif codeset.system != system:
            self._error(
                cond.span,
                f"`{cond.selector}` holds {system} codes but `{cond.set_name}`"
                f" is a {codeset.system} set",
            )

    def _in_list(self, cond: ast.InList) -> None:
        if cond.fact is not None:
            found = self._name(cond.fact, cond.span)
            if found is None:
                return
            if found.kind != "enum":
                self._error(
                    cond.span,
                    f"`in (...)` on a fact needs an enum; `{cond.fact}` is {found.describe()}",
                )
                return
            for item in cond.items:
                if item not in found.values:
                    self._error(
                        cond.span,
                        f"`{item}` is not a value of `{cond.fact}`",
                        did_you_mean(item, found.values),
                    )
            return
        if self.context == "assessment":
            self._error(cond.span, "assessments cannot use activity")
            return
        self._check_list_items(cond)

    def _check_list_items(self, cond: ast.InList) -> None:
        if cond.selector is None:
            return
        selector = ast.Selector(cond.selector)
        system = selector.system
        for item in cond.items:
            if system is not None:
                if normalise(system, item) is None:
                    self._error(cond.span, f"`{item}` is not a valid {system} code")
            elif selector is ast.Selector.TREATMENT_FUNCTION:
                if not (len(item) == 3 and item.isdigit()):
                    self._error(
                        cond.span,
                        f"`{item}` is not a treatment function code",
                        'treatment function codes have three digits, e.g. "320"',
                    )
            elif selector is ast.Selector.REGION and item not in REGIONS:
                self._error(
                    cond.span,
                    f"unknown NHS England region `{item}`",
                    did_you_mean(item, REGIONS),
                )

    # --- values --------------------------------------------------------------------------

    def _compare(self, left: ast.Value, right: ast.Value, span: Span) -> None:
        lt, rt = self.value(left), self.value(right)
        if lt is None or rt is None:
            return
        if lt.kind == "number" and rt.kind == "number":
            self._units(left, lt, right, rt, span)
        elif lt.kind == rt.kind == "date":
            return
        elif "enum" in (lt.kind, rt.kind) or "bool" in (lt.kind, rt.kind):
            # Name the side that is yes/no or an enum, not whichever side is a name.
            side, named, other = ((left, lt, rt) if lt.kind in ("enum", "bool")
                                  else (right, rt, lt))
            name = _ref_name(side) or "this"
            hint = f"write `{name} is <value>`"
            if right.span.line > span.line > 0:
                # A line ending in `>=` runs on into the next clause: say so, as that is
                # what the author most likely meant.
                hint = (f"the comparison runs on to line {right.span.line}: is a value "
                        f"missing after the operator on line {span.line}?")
            self._error(
                span,
                f"`{name}` is {named.describe()} and cannot be compared with {other.describe()}",
                hint,
            )
        else:
            self._error(span, f"cannot compare {lt.describe()} with {rt.describe()}")

    def _units(self, left: ast.Value, lt: VType, right: ast.Value, rt: VType, span: Span) -> None:
        if lt.dim is not None and rt.dim is not None and lt.dim != rt.dim:
            self._error(
                span,
                f"cannot compare {lt.dim} with {rt.dim}",
                "months have no fixed number of days; compare like with like",
            )
        elif (lt.dim is None) != (rt.dim is None):
            unitless, other = (left, rt) if lt.dim is None else (right, lt)
            if not isinstance(unitless, ast.Num):
                self._error(
                    span,
                    f"`{_ref_name(unitless) or 'this value'}` has no unit but is "
                    f"compared with {other.describe()}",
                )

    def value(self, value: ast.Value) -> VType | None:
        """Return the type of `value`, reporting errors (None when it has one)."""
        if isinstance(value, ast.Num):
            if value.unit is None:
                return NUMBER
            dim, scale = UNITS[value.unit]
            return VType("number", dim, scale)
        if isinstance(value, ast.DateLit):
            return DATE
        if isinstance(value, ast.StrLit):
            return STRING
        if isinstance(value, ast.Ref):
            return self._name(value.name, value.span)
        return self._binop(value)

    def _binop(self, value: ast.BinOp) -> VType | None:
        lt, rt = self.value(value.left), self.value(value.right)
        if lt is None or rt is None:
            return None
        if lt.kind == rt.kind == "date":
            if value.op == "-":
                return DAYS
            self._error(value.span, "two dates cannot be added")
            return None
        if lt.kind == "date" and rt.kind == "number":
            if rt.dim != "days":
                self._error(
                    value.span,
                    "add or subtract days or weeks from a date",
                    "months and years have no fixed length; write e.g. `26 weeks`",
                )
                return None
            return DATE
        if lt.kind == rt.kind == "number":
            if lt.dim is not None and rt.dim is not None and lt.dim != rt.dim:
                self._error(value.span, f"cannot combine {lt.dim} with {rt.dim}")
                return None
            return lt if lt.dim is not None else rt
        self._error(value.span, f"cannot apply `{value.op}` to {lt.describe()} and {rt.describe()}")
        return None


def _ref_name(value: ast.Value) -> str | None:
    return value.name if isinstance(value, ast.Ref) else None


__all__ = ["BOOL", "ConditionTyper", "Scope"]
