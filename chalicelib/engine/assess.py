"""Assessments (the four-factor framework): typed inputs → factors → conclusions.

In: an `assessment` declaration, its inputs as JSON data, the pack's code sets. Out: an
`Assessment` naming each factor's value, threshold and whether it was met, and each
conclusion (e.g. `prescribed`, `highly_specialised`), three-valued like every condition.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import Compiler
from chalicelib.dsl.printer import condition_text, value_text
from chalicelib.dsl.types import BOOL, VType, fact_type
from chalicelib.engine.decision import Assessment, FactorResult
from chalicelib.engine.request import typed_facts
from chalicelib.errors import Problem, RequestError


def run_assessment(
    decl: ast.AssessmentDecl, inputs: dict[str, Any], codesets: dict[str, CodeSet]
) -> Assessment:
    """Evaluate `decl` over `inputs`; raise `RequestError` for unknown or ill-typed inputs."""
    types: dict[str, VType] = {
        i.name: fact_type(i.type.kind, i.type.values, i.unit) for i in decl.inputs
    }
    problems: list[Problem] = []
    facts = typed_facts(inputs, types, problems, where="")  # inputs sit at the top level
    if problems:
        raise RequestError(problems)
    types.update({f.name: BOOL for f in decl.factors})
    types.update({c.name: BOOL for c in decl.conclusions})
    compiler = Compiler(types, codesets)
    activity = Activity(date=dt.date.min, facts=facts)
    factors = []
    for factor in decl.factors:
        value, _ = compiler.compile(factor.condition).evaluate(activity)
        facts[factor.name] = value
        subject, threshold = _parts(factor.condition)
        factors.append(
            FactorResult(
                name=factor.name,
                title=factor.title,
                clause=condition_text(factor.condition),
                value=facts.get(subject) if subject else None,
                threshold=threshold,
                met=value,
                at=factor.span.at(),
            )
        )
    conclusions: dict[str, bool | None] = {}
    for conclusion in decl.conclusions:
        value, _ = compiler.compile(conclusion.when).evaluate(activity)
        conclusions[conclusion.name] = facts[conclusion.name] = value
    missing = tuple(i.name for i in decl.inputs if i.name not in facts)
    return Assessment(decl.name, conclusions, tuple(factors), missing)


def _parts(cond: ast.Condition) -> tuple[str | None, str]:
    """Return (input name, threshold text) of a factor's comparison."""
    if isinstance(cond, ast.Compare) and isinstance(cond.left, ast.Ref):
        return cond.left.name, f"{cond.op} {value_text(cond.right)}"
    if isinstance(cond, ast.Between) and isinstance(cond.value, ast.Ref):
        return cond.value.name, f"{value_text(cond.low)} to {value_text(cond.high)}"
    if isinstance(cond, ast.InList) and cond.fact:
        return cond.fact, "one of " + ", ".join(cond.items)
    if isinstance(cond, ast.IsValue):
        return cond.name, ("not " if cond.negated else "") + cond.value
    return None, condition_text(cond)
