"""Differential test: compiled evaluators agree with the reference interpreter (the oracle).

Random conditions over a small vocabulary (every leaf kind, every group kind, units, dates,
code ranges) are compiled to closures and also walked by `Interpreter`; on random activities
(facts present or absent) both must give the same three-valued answer. `make test` runs
`PSS_DIFF_EXAMPLES` (default 200) examples; `make fuzz` runs many more.
"""

from __future__ import annotations

import datetime as dt
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import Compiler
from chalicelib.dsl.types import BUILTINS, VType
from tests.support.oracle import Interpreter

EXAMPLES = int(os.environ.get("PSS_DIFF_EXAMPLES", "200"))
TYPES = {
    **BUILTINS,
    "score": VType("number", integer=True),
    "size_cm": VType("number", "cm", 1),
    "gap_days": VType("number", "days", 1, integer=True),
    "dose_date": VType("date"),
    "status": VType("enum", values=("wild_type", "mutant", "unknown")),
    "flag": VType("bool"),
}
CODESETS = {
    "VALVES": CodeSet.build("VALVES", "opcs4", ["K261", "K262", "K263", "K30"]),
    "CRC": CodeSet.build("CRC", "icd10", ["C18", "C19", "C20", "D011"]),
    "DRUGS": CodeSet.build("DRUGS", "drug", ["cetuximab", "nivolumab"]),
}
PROCS = ["K261", "K262", "K269", "K301", "W371", "Y531"]
DIAGS = ["C187", "C19", "C20", "D011", "D012", "I350"]
DRUGS = ["cetuximab", "nivolumab", "paracetamol"]

nums = st.integers(min_value=0, max_value=30)
ops = st.sampled_from([">=", "<=", ">", "<", "==", "!="])


def numeric_leaf() -> st.SearchStrategy[ast.Condition]:
    plain = st.builds(lambda op, n: ast.Compare(op, ast.Ref("score"), ast.Num(n)), ops, nums)
    # `age OP n` takes the compiler's fast path, `n OP age` its general one.
    age = st.builds(
        lambda op, n, u, flip: ast.Compare(op, ast.Num(n, u), ast.Ref("age"))
        if flip else ast.Compare(op, ast.Ref("age"), ast.Num(n, u)),
        ops,
        nums,
        st.sampled_from([None, "years", "months"]),
        st.booleans(),
    )
    size = st.builds(
        lambda op, n, u: ast.Compare(op, ast.Num(n, u), ast.Ref("size_cm")),
        ops,
        nums,
        st.sampled_from([None, "cm", "mm"]),
    )
    gap = st.builds(
        lambda op, n, u: ast.Compare(
            op,
            ast.BinOp(
                "-",
                ast.BinOp("-", ast.Ref("decision_date"), ast.Ref("dose_date")),
                ast.Ref("gap_days"),
            ),
            ast.Num(n, u),
        ),
        ops,
        nums,
        st.sampled_from(["days", "weeks"]),
    )
    between = st.builds(
        lambda lo, hi: ast.Between(ast.Ref("score"), ast.Num(lo), ast.Num(hi)), nums, nums
    )
    return st.one_of(plain, age, size, gap, between)


def other_leaf() -> st.SearchStrategy[ast.Condition]:
    return st.one_of(
        st.builds(
            ast.IsValue, st.just("status"), st.sampled_from(["wild_type", "mutant"]), st.booleans()
        ),
        st.builds(ast.IsValue, st.just("flag"), st.sampled_from(["yes", "no"]), st.booleans()),
        st.builds(
            ast.InSet, st.sampled_from(["dominant procedure", "any procedure"]), st.just("VALVES")
        ),
        st.builds(
            ast.InSet, st.sampled_from(["primary diagnosis", "any diagnosis"]), st.just("CRC")
        ),
        st.builds(ast.InSet, st.just("any drug"), st.just("DRUGS")),
        st.builds(
            ast.InList,
            st.sampled_from(["provider", "treatment function"]),
            st.none(),
            st.lists(st.sampled_from(["RBA", "RRK", "320", "800"]), min_size=1, max_size=3).map(
                tuple
            ),
        ),
        st.builds(
            ast.InList,
            st.none(),
            st.just("status"),
            st.lists(
                st.sampled_from(["wild_type", "mutant", "unknown"]), min_size=1, max_size=2
            ).map(tuple),
        ),
        st.builds(ast.BoolRef, st.just("flag")),
        st.builds(ast.Attested, st.sampled_from(["mdt", "consultant"])),
        st.builds(ast.Known, st.sampled_from(["score", "dose_date", "flag"])),
    )


def group(children: st.SearchStrategy[ast.Condition]) -> st.SearchStrategy[ast.Condition]:
    items = st.lists(children, min_size=1, max_size=4).map(tuple)
    return st.one_of(
        st.builds(lambda k, i: ast.Group(k, i), st.sampled_from(["all", "any"]), items),
        st.builds(lambda i: ast.Group("exactly_one", i, 1), items),
        st.builds(lambda i, n: ast.Group("at_least", i, min(n, len(i))), items, st.integers(1, 4)),
        st.builds(ast.Not, children),
    )


conditions = st.recursive(st.one_of(numeric_leaf(), other_leaf()), group, max_leaves=10)


def maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), strategy)


@st.composite
def activities(draw: st.DrawFn) -> Activity:
    facts = {
        "score": draw(maybe(nums)),
        "size_cm": draw(maybe(st.sampled_from([0.5, 5.0, 5.5, 6.0, 6.5, 30.0]))),
        "gap_days": draw(maybe(st.integers(0, 60))),
        # Days before the decision date: cheaper for hypothesis to draw than `st.dates`.
        "dose_date": draw(maybe(st.integers(0, 151).map(
            lambda days: dt.date(2025, 6, 1) - dt.timedelta(days=days)))),
        "status": draw(maybe(st.sampled_from(["wild_type", "mutant", "unknown"]))),
        "flag": draw(maybe(st.booleans())),
    }
    return Activity(
        date=dt.date(2025, 6, 1),
        age_months=draw(st.one_of(st.integers(0, 40), st.integers(0, 100 * 12))),
        procedures=tuple(draw(st.lists(st.sampled_from(PROCS), max_size=3))),
        diagnoses=tuple(draw(st.lists(st.sampled_from(DIAGS), max_size=3))),
        drugs=tuple(draw(st.lists(st.sampled_from(DRUGS), max_size=2))),
        treatment_function=draw(maybe(st.sampled_from(["320", "800"]))),  # type: ignore[arg-type]
        provider=draw(maybe(st.sampled_from(["RBA", "RRK", "RX1"]))),  # type: ignore[arg-type]
        facts={k: v for k, v in facts.items() if v is not None},
        attestations=frozenset(draw(st.lists(st.sampled_from(["mdt", "consultant"])))),
    )


@settings(max_examples=EXAMPLES, deadline=None)
@given(conditions, st.lists(activities(), min_size=1, max_size=5))
def test_compiled_agrees_with_interpreter(cond: ast.Condition, cases: list[Activity]) -> None:
    compiler = Compiler(TYPES, CODESETS)
    compiled = compiler.compile(cond)
    reference = Interpreter(TYPES, CODESETS)
    for activity in cases:
        value, leaves = compiled.evaluate(activity)
        assert value == reference.evaluate(cond, activity), activity
        assert compiled.predicate(activity) == value
        assert len(leaves) == len(compiled.leaves)
        # An unknown answer always names what is missing (a fact, attestation or field).
        if value is None:
            assert compiled.missing(activity, leaves)
