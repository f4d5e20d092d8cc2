"""Age in exact months: from `birth_date` and the decision date, the same on every path.

A child born 2023-10-01 is 20 months old on 2025-06-01, so `age < 18 months` is false for
them; comparisons written in years and in months agree, at the boundaries (17 vs 18 months,
a birthday on the decision date, 29 February) and on random dates, with an oracle that counts
month anniversaries one by one.
"""

from __future__ import annotations

import datetime as dt
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.activity import Activity, age_in_months
from chalicelib.dsl import ast
from chalicelib.dsl.compiler import Compiler
from chalicelib.dsl.types import BUILTINS
from tests.conftest import build
from tests.support.oracle import Interpreter

PACK = build("""
line NCBPS99Z "test line"
service "X" "test service" {
  lines NCBPS99Z
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
}
rule any_k26 "K26" { line NCBPS99Z rank 10 when any procedure in ("K26") }
policy "INFANT" version 1 "under 18 months" {
  effective from 2013-04-01
  governs NCBPS99Z
  criteria age < 18 months
  when met: eligible
  when not met: not_eligible
}
""")


def _decide(born: str, on: str) -> str:
    request = {"date": on, "patient": {"birth_date": born}, "procedures": ["K26.1"]}
    return PACK.decide(request).eligibility


def test_twenty_months_is_not_under_eighteen_months() -> None:
    assert _decide("2023-10-01", "2025-06-01") == "not_eligible"


@pytest.mark.parametrize(("born", "on", "months"), [
    ("2023-12-02", "2025-06-01", 17),  # one day short of 18 months
    ("2023-12-01", "2025-06-01", 18),  # 18 months on the day
    ("2007-06-01", "2025-06-01", 216),  # 18th birthday on the decision date
    ("2007-06-02", "2025-06-01", 215),  # the day before it
    ("2024-02-29", "2025-02-28", 11),  # born on 29 February: not yet 1 in a common year
    ("2024-02-29", "2025-03-01", 12),  # ... 1 year old on 1 March
    ("2024-02-29", "2028-02-29", 48),  # ... and on 29 February in a leap year
    ("2025-01-31", "2025-02-28", 0),  # a month with no 31st completes on the 1st after
    ("2025-01-31", "2025-03-01", 1),
])
def test_months_at_the_boundaries(born: str, on: str, months: int) -> None:
    born_day, on_day = dt.date.fromisoformat(born), dt.date.fromisoformat(on)
    assert age_in_months(born_day, on_day) == months
    assert PACK.parse({"date": on, "patient": {"birth_date": born}}).age_months == months
    expected = "eligible" if months < 18 else "not_eligible"
    assert _decide(born, on) == expected


def test_eighteenth_birthday_on_the_decision_date_is_an_adult() -> None:
    compiled = Compiler(dict(BUILTINS), {}).compile(
        ast.Compare(">=", ast.Ref("age"), ast.Num(18)))
    birthday = PACK.parse({"date": "2025-06-01", "patient": {"birth_date": "2007-06-01"}})
    eve = PACK.parse({"date": "2025-05-31", "patient": {"birth_date": "2007-06-01"}})
    assert compiled.predicate(birthday) is True
    assert compiled.predicate(eve) is False


def test_age_in_years_only_is_its_first_month() -> None:
    activity = PACK.parse({"date": "2025-06-01", "patient": {"age": 1}})
    assert activity.age_months == 12


# --- random dates against an oracle that counts anniversaries --------------------------------


def _anniversary(born: dt.date, k: int) -> dt.date:
    """The day `k` months after `born` are complete (the 1st of the next month if the day
    does not exist in that month)."""
    year, month = divmod(born.month - 1 + k, 12)
    year, month = born.year + year, month + 1
    try:
        return dt.date(year, month, born.day)
    except ValueError:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return dt.date(year, month, 1)


def _oracle_months(born: dt.date, on: dt.date) -> int:
    k = 0
    while _anniversary(born, k + 1) <= on:
        k += 1
    return k


OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
       "==": operator.eq, "!=": operator.ne}
FLIPPED = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "==": "==", "!=": "!="}
COMPILER = Compiler(dict(BUILTINS), {})
ORACLE = Interpreter(dict(BUILTINS), {})


def _forms(op: str, n: int, unit: str | None) -> list[ast.Condition]:
    """The same test written three ways: `age OP n` (the compiler's fast path), `n OP' age`
    and `age + 0 months OP n` (its general path)."""
    return [
        ast.Compare(op, ast.Ref("age"), ast.Num(n, unit)),
        ast.Compare(FLIPPED[op], ast.Num(n, unit), ast.Ref("age")),
        ast.Compare(op, ast.BinOp("+", ast.Ref("age"), ast.Num(0, "months")), ast.Num(n, unit)),
    ]


@settings(max_examples=300, deadline=None)
@given(
    born=st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)),
    days=st.integers(0, 30 * 366),
    op=st.sampled_from(sorted(OPS)),
    n=st.integers(0, 40),
    unit=st.sampled_from([None, "years", "months"]),
)
def test_years_and_months_agree_with_the_oracle(
    born: dt.date, days: int, op: str, n: int, unit: str | None
) -> None:
    on = born + dt.timedelta(days=days)
    months = _oracle_months(born, on)
    activity = PACK.parse({"date": on.isoformat(), "patient": {"birth_date": born.isoformat()}})
    assert activity.age_months == months
    threshold = n * (1 if unit == "months" else 12)  # a bare number is years
    expected = OPS[op](months, threshold)
    for cond in _forms(op, n, unit):
        compiled = COMPILER.compile(cond)
        assert compiled.predicate(activity) is expected, cond
        assert compiled.evaluate(activity)[0] is expected, cond
        assert ORACLE.evaluate(cond, activity) is expected, cond
    # Written in years or in the same number of months, the answer is the same.
    if unit != "months":
        in_months = COMPILER.compile(ast.Compare(op, ast.Ref("age"), ast.Num(n * 12, "months")))
        assert in_months.predicate(activity) is expected


@settings(deadline=None)  # compiles six conditions per example: slow on a busy machine
@given(years=st.integers(0, 130), n=st.integers(0, 130), op=st.sampled_from(sorted(OPS)))
def test_age_in_years_agrees_on_both_paths(years: int, n: int, op: str) -> None:
    activity = Activity(date=dt.date(2025, 6, 1), age_months=years * 12)
    expected = OPS[op](years, n)
    for cond in _forms(op, n, "years") + _forms(op, n, None):
        assert COMPILER.compile(cond).predicate(activity) is expected
        assert ORACLE.evaluate(cond, activity) is expected
