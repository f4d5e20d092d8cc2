"""The test oracle: a plain reference interpreter over the AST, the meaning stated simply.

In: a checked condition, an `Activity`, the value types and code sets. Out: True, False or
None (unknown). It is deliberately naive — recursive, no precomputation — and it states the
three-valued logic, the selectors and the units again on its own, without importing the
compiler's helpers (`chalicelib.dsl.kleene`, `ast.Selector`): an oracle that shared the code
under test could not catch a mistake in it. Lives under `tests/`, so it is never deployed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.activity import Activity
from chalicelib.codes import normalise
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.types import BUILTINS, UNITS, VType

Tri = bool | None
_SYSTEMS = {
    "dominant procedure": "opcs4",
    "any procedure": "opcs4",
    "primary diagnosis": "icd10",
    "any diagnosis": "icd10",
    "any drug": "drug",
    "provider": "ods",
}


class Interpreter:
    """Evaluates conditions by walking the AST."""

    def __init__(self, types: dict[str, VType], codesets: dict[str, CodeSet]) -> None:
        self.types = {**BUILTINS, **types}
        self.codesets = codesets

    def evaluate(self, cond: ast.Condition, a: Activity) -> Tri:  # noqa: C901
        """Return the three-valued truth of `cond` for activity `a`."""
        if isinstance(cond, ast.Group):
            values = [self.evaluate(item, a) for item in cond.items]
            trues, unknowns = values.count(True), values.count(None)
            if cond.kind == "all":
                return False if False in values else (None if unknowns else True)
            if cond.kind == "any":
                return True if trues else (None if unknowns else False)
            if cond.kind == "exactly_one":
                if trues > 1:
                    return False
                if trues == 1:
                    return True if unknowns == 0 else None
                return None if unknowns else False
            if trues >= cond.n:
                return True
            return False if trues + unknowns < cond.n else None
        if isinstance(cond, ast.Not):
            value = self.evaluate(cond.operand, a)
            return None if value is None else not value
        if isinstance(cond, ast.Compare):
            return self._compare(cond.op, cond.left, cond.right, a)
        if isinstance(cond, ast.Between):
            low = self._compare(">=", cond.value, cond.low, a)
            high = self._compare("<=", cond.value, cond.high, a)
            return _and(low, high)
        if isinstance(cond, ast.IsValue):
            value = self._lookup(cond.name, a)
            if value is None:
                return None
            wanted: Any = cond.value
            if self.types[cond.name].kind == "bool":
                wanted = cond.value in ("yes", "true")
            return bool(value != wanted) if cond.negated else bool(value == wanted)
        if isinstance(cond, ast.InSet):
            return self._selector(cond.selector, a, lambda c: c in self.codesets[cond.set_name])
        if isinstance(cond, ast.InList):
            return self._in_list(cond, a)
        if isinstance(cond, ast.BoolRef):
            result: Tri = a.facts.get(cond.name)
            return result
        if isinstance(cond, ast.Attested):
            return True if cond.name in a.attestations else None
        if isinstance(cond, ast.Known):
            return cond.name in a.facts
        raise TypeError(cond)

    def _in_list(self, cond: ast.InList, a: Activity) -> Tri:
        if cond.fact is not None:
            value = self._lookup(cond.fact, a)
            return None if value is None else bool(value in cond.items)
        system = _SYSTEMS.get(str(cond.selector))
        if system is None:
            return self._selector(cond.selector or "", a, lambda v: v in cond.items)
        members = CodeSet.build("list", system, [normalise(system, i) or i for i in cond.items])
        return self._selector(cond.selector or "", a, lambda c: c in members)

    def _selector(self, selector: str, a: Activity, test: Any) -> Tri:
        many = {"any procedure": a.procedures, "any diagnosis": a.diagnoses, "any drug": a.drugs}
        if selector in many:
            return any(test(code) for code in many[selector])
        if selector == "dominant procedure":
            return bool(a.procedures) and test(a.procedures[0])
        if selector == "primary diagnosis":
            return bool(a.diagnoses) and test(a.diagnoses[0])
        value = {
            "treatment function": a.treatment_function,
            "provider": a.provider,
            "region": a.region,
            "icb": a.icb,
        }[selector]
        return None if value is None else bool(test(value))

    def _lookup(self, name: str, a: Activity) -> Any:
        if name == "age":
            return a.age_months
        if name == "decision_date":
            return a.date
        if name == "sex":
            return a.sex
        return a.facts.get(name)

    def _compare(self, op: str, left: ast.Value, right: ast.Value, a: Activity) -> Tri:
        x, x_unit = self._value(left, a)
        y, y_unit = self._value(right, a)
        if x is None or y is None:
            return None
        # A bare number is in the unit of what it is compared with.
        if x_unit is None and isinstance(left, ast.Num):
            x = x * (y_unit or 1)
        if y_unit is None and isinstance(right, ast.Num):
            y = y * (x_unit or 1)
        return bool(
            {
                ">=": x >= y,
                "<=": x <= y,
                ">": x > y,
                "<": x < y,
                "==": x == y,
                "!=": x != y,
            }[op]
        )

    def _value(self, value: ast.Value, a: Activity) -> tuple[Any, float | None]:  # noqa: C901
        """Return (value in base units, scale of its unit or None for a bare number)."""
        if isinstance(value, ast.Num):
            if value.unit is None:
                return float(value.value), None
            return float(value.value) * UNITS[value.unit][1], UNITS[value.unit][1]
        if isinstance(value, ast.DateLit):
            return value.value, 1
        if isinstance(value, ast.StrLit):
            return value.value, 1
        if isinstance(value, ast.Ref):
            raw = self._lookup(value.name, a)
            if value.name == "age":  # read in months; written bare, it means years
                return raw, 12
            vtype = self.types[value.name]
            if raw is None or vtype.kind != "number":
                return raw, 1
            return raw * vtype.scale, (vtype.scale if vtype.dim else None)
        x, xu = self._value(value.left, a)
        y, yu = self._value(value.right, a)
        if x is None or y is None:
            return None, 1
        if isinstance(x, dt.date) and isinstance(y, dt.date):
            return (x - y).days, 1
        if isinstance(x, dt.date):
            return _shift(x, round(y * (xu or 1) if yu is None else y), value.op), 1
        if xu is None and isinstance(value.left, ast.Num):
            x = x * (yu or 1)
        if yu is None and isinstance(value.right, ast.Num):
            y = y * (xu or 1)
        unit = xu if xu is not None else yu
        return (x + y if value.op == "+" else x - y), unit


def _shift(day: dt.date, days: int, op: str) -> dt.date:
    signed = days if op == "+" else -days
    try:
        return day + dt.timedelta(days=signed)
    except OverflowError:
        return dt.date.max if signed > 0 else dt.date.min


def _and(x: Tri, y: Tri) -> Tri:
    if x is False or y is False:
        return False
    return None if x is None or y is None else True
