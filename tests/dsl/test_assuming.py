"""`CompiledCondition.assuming`: knowing some leaf items of an `all` group are true, only the
others are evaluated, and the answer and every leaf's result are `evaluate`'s."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.ast import Selector
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import AssumingOne, Compiler
from chalicelib.dsl.types import BUILTINS, VType

TYPES = {**BUILTINS, "flag": VType("bool"), "score": VType("number", integer=True),
         "status": VType("enum", values=("wild_type", "mutant"))}
CODESETS = {"DRUGS": CodeSet.build("DRUGS", "drug", ["cetuximab"]),
            "CRC": CodeSet.build("CRC", "icd10", ["C18"])}
DRUGS = ast.InSet(Selector.ANY_DRUG, "DRUGS")
CRC = ast.InSet(Selector.ANY_DIAGNOSIS, "CRC")
SCORE = ast.Compare(">=", ast.Ref("score"), ast.Num(3))
EITHER = ast.Group("any", (ast.BoolRef("flag"), ast.IsValue("status", "mutant")))
NOT_FLAG = ast.Not(ast.BoolRef("flag"))


def _activities() -> list[Activity]:
    """Every combination of the facts absent, or given with each of a few values."""
    out = []
    for flag, score, status in itertools.product((None, True, False), (None, 1, 5),
                                                 (None, "wild_type", "mutant")):
        facts = {k: v for k, v in (("flag", flag), ("score", score), ("status", status))
                 if v is not None}
        out.append(Activity(dt.date(2025, 6, 1), diagnoses=("C187",), drugs=("cetuximab",),
                            facts=facts))
    return out


@pytest.mark.parametrize(("items", "assumed"), [
    ((DRUGS, SCORE, EITHER), {0}),  # code test first, a subgroup among the rest
    ((SCORE, DRUGS, NOT_FLAG, CRC), {1, 3}),  # code tests between and after the others
    ((DRUGS, SCORE), {0}),  # one other leaf: its value is the group's
    ((CRC, EITHER, DRUGS), {0, 2}),  # one other item, a group
])
def test_assuming_true_items_answers_as_evaluate(items: tuple[ast.Condition, ...],
                                                 assumed: set[int]) -> None:
    condition = Compiler(TYPES, CODESETS).compile(ast.Group("all", items))
    reduced = condition.assuming(frozenset(assumed))
    # Only the other leaves are called.
    called = [reduced.fn] if isinstance(reduced, AssumingOne) else [f for _, f in reduced.fns]
    assert len(called) == len(condition.fns) - len(assumed)
    for activity in _activities():  # every activity has the codes: the assumed items hold
        assert reduced.evaluate(activity) == condition.evaluate(activity), activity.facts


def test_only_leaf_items_of_an_all_group_can_be_assumed() -> None:
    compiler = Compiler(TYPES, CODESETS)
    with pytest.raises(ValueError, match="leaf items"):
        compiler.compile(ast.Group("any", (DRUGS, SCORE))).assuming(frozenset({0}))
    with pytest.raises(ValueError, match="leaf items"):
        compiler.compile(ast.Group("all", (EITHER, DRUGS))).assuming(frozenset({0}))


def test_a_types_exact_class_is_derived_and_not_compared() -> None:
    assert VType("bool").exact is bool
    assert VType("number", integer=True).exact is int
    assert VType("number").exact is None  # a decimal is always checked
    assert VType("enum", values=("a",)).exact is str
    assert VType("date").exact is None
    assert VType("enum", values=("a",)) == VType("enum", values=("a",))
