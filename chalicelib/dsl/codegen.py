"""Checked conditions to one generated Python function that decides many activities at once.

In: a checked condition, its compiled leaves (closures) and the pack's value types and code
sets. Out: `decide_many(activities) -> list[True | False | None]`, the same three-valued
answers as `CompiledCondition.predicate` (the differential test checks it against the
reference interpreter), without a Python call per clause for the common clauses.

How, and why it is safe: the function is assembled by us from the checked AST as Python
source in which every name is one *we* made up (`a`, `v3`, `K0`, `leaf5`); nothing a policy
author wrote — no fact name, code, string or number — is ever placed in the source. Those
values are handed to the function as constants in its namespace (`K0` is a frozenset of
codes, `F2` a fact name, `T1` a threshold). The source is parsed with `ast.parse` and compiled
from that tree. Clauses without an inlined form call their compiled closure (`leaf5(a)`).
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import OPS, Compiler, Tri
from chalicelib.dsl.types import UNITS

ManyFn = Callable[[Sequence[Activity]], list[Tri]]
_MANY = {"any procedure": "procedures", "any diagnosis": "diagnoses", "any drug": "drugs"}
_FIRST = {"dominant procedure": "procedures", "primary diagnosis": "diagnoses"}


class _Writer:
    """Emits indented lines and mints names bound to constants."""

    def __init__(self, compiler: Compiler, codesets: dict[str, CodeSet]) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, Any] = {}
        self.compiler = compiler
        self.codesets = codesets
        self.count = 0

    def name(self, prefix: str, value: Any = None, bind: bool = False) -> str:
        self.count += 1
        made = f"{prefix}{self.count}"
        if bind:
            self.namespace[made] = value
        return made

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def node(self, cond: ast.Condition, target: str, depth: int) -> bool:
        """Emit statements that set `target` to the condition's three-valued value.

        Returns False when the value can never be unknown (so callers skip that test).
        """
        if isinstance(cond, ast.Group) and cond.kind in ("all", "any"):
            return self._group(cond, target, depth)
        if isinstance(cond, ast.Not):
            inner = self.name("n")
            if self.node(cond.operand, inner, depth):
                self.emit(depth, f"{target} = None if {inner} is None else not {inner}")
                return True
            self.emit(depth, f"{target} = not {inner}")
            return False
        if isinstance(cond, ast.InSet):
            return self._in_set(cond, target, depth)
        if (isinstance(cond, ast.Compare) and isinstance(cond.left, ast.Ref)
              and isinstance(cond.right, ast.Num)
              and self.compiler._type(cond.left).kind == "number"):
            self._compare(cond, target, depth)
            return True
        fn = self.compiler.leaf(cond) if not isinstance(cond, ast.Group) else (
            self.compiler.compile(cond).predicate)
        call = self.name("leaf", fn, bind=True)
        self.emit(depth, f"{target} = {call}(a)")
        return True

    def _group(self, group: ast.Group, target: str, depth: int) -> bool:
        # Kleene and/or with short-circuit, kept flat: `while True` ... `break` at the first
        # False (all) or True (any); otherwise unknown if any child was unknown.
        stop, other = ("False", "True") if group.kind == "all" else ("True", "False")
        unknown, child = self.name("u"), self.name("c")
        self.emit(depth, f"{target} = {stop}")
        self.emit(depth, f"{unknown} = False")
        self.emit(depth, "while True:")
        may_be_unknown = False
        for item in group.items:
            if self.node(item, child, depth + 1):
                may_be_unknown = True
                self.emit(depth + 1, f"if {child} is {stop}:")
                self.emit(depth + 2, "break")
                self.emit(depth + 1, f"if {child} is None:")
                self.emit(depth + 2, f"{unknown} = True")
            else:
                self.emit(depth + 1, f"if {child} is {stop}:")
                self.emit(depth + 2, "break")
        if may_be_unknown:
            self.emit(depth + 1, f"{target} = None if {unknown} else {other}")
        else:
            self.emit(depth + 1, f"{target} = {other}")
        self.emit(depth + 1, "break")
        return may_be_unknown

    def _in_set(self, cond: ast.InSet, target: str, depth: int) -> bool:
        codeset = self.codesets[cond.set_name]
        keys = self.name("K", codeset.keys, bind=True)
        test = self._member(codeset, keys, "code")
        if cond.selector in _MANY:
            self.emit(depth, f"{target} = False")
            self.emit(depth, f"for code in a.{_MANY[cond.selector]}:")
            self.emit(depth + 1, f"if {test}:")
            self.emit(depth + 2, f"{target} = True")
            self.emit(depth + 2, "break")
            return False
        if cond.selector in _FIRST:
            codes = self.name("s")
            self.emit(depth, f"{codes} = a.{_FIRST[cond.selector]}")
            self.emit(depth, f"if {codes}:")
            self.emit(depth + 1, f"code = {codes}[0]")
            self.emit(depth + 1, f"{target} = {test}")
            self.emit(depth, "else:")
            self.emit(depth + 1, f"{target} = False")
            return False
        call = self.name("leaf", self.compiler.leaf(cond), bind=True)
        self.emit(depth, f"{target} = {call}(a)")
        return True

    @staticmethod
    def _member(codeset: CodeSet, keys: str, var: str) -> str:
        if not codeset.hierarchical:
            return f"{var} in {keys}"
        return " or ".join(f"{var}[:{n}] in {keys}" for n in codeset.lengths) or "False"

    def _compare(self, cond: ast.Compare, target: str, depth: int) -> None:
        assert isinstance(cond.left, ast.Ref) and isinstance(cond.right, ast.Num)
        name = cond.left.name
        value = self.name("v")
        if name == "age":
            self.emit(depth, f"{value} = a.age")
        else:
            fact = self.name("F", name, bind=True)
            self.emit(depth, f"{value} = a.facts.get({fact})")
        scale = self.compiler._type(cond.left).scale
        number = cond.right
        threshold: float = number.value
        if number.unit is not None:
            threshold = float(number.value) * UNITS[number.unit][1] / scale
        bound = self.name("T", threshold, bind=True)
        op = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "==": "==", "!=": "!="}[cond.op]
        assert cond.op in OPS
        self.emit(depth, f"{target} = None if {value} is None else {value} {op} {bound}")


def compile_many(cond: ast.Condition, compiler: Compiler,
                 codesets: dict[str, CodeSet]) -> ManyFn:
    """Generate `decide_many(activities)` for a checked condition."""
    writer = _Writer(compiler, codesets)
    writer.emit(0, "def decide_many(activities):")
    writer.emit(1, "out = []")
    writer.emit(1, "append = out.append")
    writer.emit(1, "for a in activities:")
    writer.node(cond, "result", 2)
    writer.emit(2, "append(result)")
    writer.emit(1, "return out")
    tree = pyast.parse("\n".join(writer.lines), filename="<pss-generated>", mode="exec")
    code = compile(tree, "<pss-generated>", "exec")
    namespace: dict[str, Any] = {"__builtins__": {}, **writer.namespace}
    exec(code, namespace)  # our own generated tree: see the module docstring
    decide_many: ManyFn = namespace["decide_many"]
    return decide_many
