"""AST to checked pack: names, types, codes, dates, overlaps, contradictions.

In: the `ast.Module`s of a pack and a way to read its CSV code files. Out: a `CheckedPack`
(symbol tables the compiler reads) and every diagnostic found, all at once. The pack is
usable only when no diagnostic is an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TypeVar

from chalicelib.dsl import ast
from chalicelib.dsl.analysis import find_contradiction, rule_relations
from chalicelib.dsl.codeset_loader import load_codesets
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.outcomes import (
    MET_OUTCOMES,
    NOT_MET_OUTCOMES,
    ROUTED,
    Commissioner,
    Eligibility,
)
from chalicelib.dsl.provenance import check_provenance
from chalicelib.dsl.source import Diagnostic, Span, did_you_mean
from chalicelib.dsl.typecheck import ConditionTyper, Scope
from chalicelib.dsl.types import BUILTINS, FACT_KINDS, REGIONS, UNITS, VType, fact_type

COMMISSIONERS = tuple(Commissioner)
PROGRAMMES = (
    "internal_medicine",
    "cancer_and_blood",
    "trauma",
    "women_and_children",
    "mental_health",
)
PORTFOLIOS = ("acute", "highly_specialised", "mental_health")
T = TypeVar("T")


@dataclass(frozen=True)
class CheckedPack:
    """Symbol tables of a pack that passed the checker."""

    pack: ast.Pack
    facts: dict[str, ast.FactDecl]
    fact_types: dict[str, VType]
    attestations: dict[str, ast.AttestationDecl]
    codesets: dict[str, CodeSet]
    lines: dict[str, ast.LineDecl]
    services: dict[str, ast.ServiceDecl]
    line_service: dict[str, ast.ServiceDecl]
    rules: tuple[ast.RuleDecl, ...]
    policies: tuple[ast.PolicyDecl, ...]
    assessments: dict[str, ast.AssessmentDecl]
    tests: tuple[ast.TestDecl, ...]
    modules: tuple[ast.Module, ...] = field(default=(), compare=False)


class _Report:
    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, span: Span, message: str, hint: str = "") -> None:
        self.items.append(Diagnostic("error", message, span, hint))

    def warning(self, span: Span, message: str, hint: str = "") -> None:
        self.items.append(Diagnostic("warning", message, span, hint))


def check(
    modules: Iterable[ast.Module], read_file: Callable[[str], str]
) -> tuple[CheckedPack | None, list[Diagnostic]]:
    """Check a pack; return its symbol tables (None if any error) and all diagnostics."""
    modules = tuple(modules)
    report = _Report()
    decls = [d for m in modules for d in m.items]
    pack = _check_pack([d for d in decls if isinstance(d, ast.Pack)], modules, report)
    facts = _unique(report, "fact", [d for d in decls if isinstance(d, ast.FactDecl)])
    attestations = _unique(
        report, "attestation", [d for d in decls if isinstance(d, ast.AttestationDecl)]
    )
    fact_types = _check_facts(facts, attestations, report)
    codeset_decls = _unique(
        report, "code set", [d for d in decls if isinstance(d, ast.CodeSetDecl)]
    )
    codesets = load_codesets(codeset_decls, read_file, report.error)
    lines = _unique(
        report, "service line", [d for d in decls if isinstance(d, ast.LineDecl)], "code"
    )
    services = _unique(
        report, "service", [d for d in decls if isinstance(d, ast.ServiceDecl)], "id"
    )
    line_service = _check_services(services, lines, report)
    scope = Scope(fact_types, set(attestations), codesets, report.error)
    rules = _check_rules(
        [d for d in decls if isinstance(d, ast.RuleDecl)], scope, lines, line_service, report
    )
    policies = [d for d in decls if isinstance(d, ast.PolicyDecl)]
    _check_policies(policies, scope, lines, report)
    assessments = _unique(
        report, "assessment", [d for d in decls if isinstance(d, ast.AssessmentDecl)]
    )
    for assessment in assessments.values():
        _check_assessment(assessment, codesets, report)
    tests = tuple(d for d in decls if isinstance(d, ast.TestDecl))
    _check_tests(tests, assessments, report)
    check_provenance(decls, report.error, report.warning)
    diagnostics = sorted(report.items, key=lambda d: (d.span.file, d.span.line, d.span.col))
    if pack is None or any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    checked = CheckedPack(
        pack=pack,
        facts=facts,
        fact_types=fact_types,
        attestations=attestations,
        codesets=codesets,
        lines=lines,
        services=services,
        line_service=line_service,
        rules=tuple(sorted(rules, key=lambda r: (r.rank, r.name))),
        policies=tuple(policies),
        assessments=assessments,
        tests=tests,
        modules=modules,
    )
    return checked, diagnostics


def _unique(report: _Report, kind: str, decls: list[T], key: str = "name") -> dict[str, T]:
    table: dict[str, T] = {}
    for decl in decls:
        name = getattr(decl, key)
        if name in table:
            first: Span = getattr(table[name], "span")  # noqa: B009
            report.error(
                getattr(decl, "span"),  # noqa: B009
                f"duplicate {kind} `{name}`",
                f"first declared at {first.file}:{first.line}",
            )
        else:
            table[name] = decl
    return table


def _check_pack(
    packs: list[ast.Pack], modules: tuple[ast.Module, ...], report: _Report
) -> ast.Pack | None:
    if not packs:
        where = Span(modules[0].path if modules else "<pack>", 1, 1)
        report.error(
            where,
            "the pack has no `pack` header",
            'add `pack "name" version "2025.1" covers from 2013-04-01` to one file',
        )
        return None
    for extra in packs[1:]:
        report.error(
            extra.span,
            "a pack has exactly one `pack` header",
            f"the first is at {packs[0].span.file}:{packs[0].span.line}",
        )
    if packs[0].covers_from == dt.date.min:
        report.error(packs[0].span, "`covers from` is not a real date")
    return packs[0]


def _check_facts(
    facts: dict[str, ast.FactDecl],
    attestations: dict[str, ast.AttestationDecl],
    report: _Report,
) -> dict[str, VType]:
    types: dict[str, VType] = dict(BUILTINS)
    for name, decl in facts.items():
        if name in BUILTINS:
            report.error(decl.span, f"`{name}` is built in and cannot be declared as a fact")
            continue
        if name in attestations:
            report.error(decl.span, f"`{name}` is declared both as a fact and an attestation")
        declared = _fact_vtype(decl, report)
        if declared is not None:
            types[name] = declared
    return types


def _fact_vtype(decl: ast.FactDecl, report: _Report) -> VType | None:
    kind = decl.type.kind
    if kind not in FACT_KINDS:
        report.error(
            decl.type.span,
            f"unknown type `{kind}`",
            did_you_mean(kind, FACT_KINDS) or "types: " + ", ".join(FACT_KINDS),
        )
        return None
    if decl.unit is not None and kind not in ("int", "decimal"):
        report.error(decl.span, f"only numbers have units; `{decl.name}` is {kind}")
        return None
    if kind == "enum" and len(set(decl.type.values)) != len(decl.type.values):
        report.error(decl.type.span, f"enum `{decl.name}` lists a value twice")
    return fact_type(kind, decl.type.values, decl.unit)


def _check_services(
    services: dict[str, ast.ServiceDecl], lines: dict[str, ast.LineDecl], report: _Report
) -> dict[str, ast.ServiceDecl]:
    line_service: dict[str, ast.ServiceDecl] = {}
    for service in services.values():
        spans = service.line_spans or (service.span,) * len(service.lines)
        for code, span in zip(service.lines, spans, strict=True):
            if code not in lines:
                report.error(
                    span,
                    f"unknown service line `{code}`",
                    did_you_mean(code, lines) or 'declare it with `line CODE "name"`',
                )
            elif code in line_service:
                other = line_service[code]
                report.error(
                    span,
                    f"service line `{code}` already belongs to service `{other.id}` ({other.name})",
                )
            else:
                line_service[code] = service
        _check_service_fields(service, report)
        _check_commissioners(service, report)
    return line_service


def _check_service_fields(service: ast.ServiceDecl, report: _Report) -> None:
    for value, allowed, what in (
        (service.programme, PROGRAMMES, "programme of care"),
        (service.portfolio, PORTFOLIOS, "portfolio"),
    ):
        if value is None:
            report.error(service.span, f"service `{service.id}` has no {what}")
        elif value not in allowed:
            report.error(
                service.span,
                f"unknown {what} `{value}`",
                did_you_mean(value, allowed) or "one of: " + ", ".join(allowed),
            )


def _check_commissioners(service: ast.ServiceDecl, report: _Report) -> None:
    if not service.commissioners:
        report.error(
            service.span,
            f"service `{service.id}` has no commissioner",
            "add `commissioner nhs_england from 2013-04-01`",
        )
    seen: set[tuple[dt.date, str | None, tuple[str, ...]]] = set()
    for entry in service.commissioners:
        if entry.outcome not in COMMISSIONERS:
            report.error(
                entry.span,
                f"unknown commissioner `{entry.outcome}`",
                did_you_mean(entry.outcome, COMMISSIONERS) or "one of: " + ", ".join(COMMISSIONERS),
            )
        if service.highly_specialised and entry.outcome != Commissioner.NHS_ENGLAND:
            report.error(
                entry.span,
                "a highly specialised service is commissioned by NHS "
                f"England at every date, not `{entry.outcome}`",
            )
        if entry.start == dt.date.min:
            report.error(entry.span, "the commissioner's `from` is not a real date")
        key = (entry.start, entry.scope_kind, tuple(sorted(entry.scope_values)))
        if key in seen:
            report.error(entry.span, "two commissioners from the same date for the same scope")
        seen.add(key)
        if entry.scope_kind not in (None, "region", "icb"):
            report.error(
                entry.span,
                f"unknown scope `{entry.scope_kind}`",
                'use `in region "..."` or `in icb "..."`',
            )
        if entry.scope_kind == "region":
            for region in entry.scope_values:
                if region not in REGIONS:
                    report.error(
                        entry.span,
                        f"unknown NHS England region `{region}`",
                        did_you_mean(region, REGIONS) or "; ".join(REGIONS),
                    )


def _check_rules(
    rules: list[ast.RuleDecl],
    scope: Scope,
    lines: dict[str, ast.LineDecl],
    line_service: dict[str, ast.ServiceDecl],
    report: _Report,
) -> list[ast.RuleDecl]:
    names: dict[str, ast.RuleDecl] = {}
    typer = ConditionTyper(scope, context="rule")
    for rule in rules:
        if rule.name in names:
            report.error(rule.span, f"duplicate rule `{rule.name}`")
        names[rule.name] = rule
        if rule.line not in lines:
            report.error(
                rule.span, f"unknown service line `{rule.line}`", did_you_mean(rule.line, lines)
            )
        elif rule.line not in line_service:
            report.error(
                rule.span,
                f"service line `{rule.line}` belongs to no service",
                "list it under `lines` in the service it identifies",
            )
        if rule.rank < 1:
            report.error(rule.span, "rank must be 1 or more (1 is tried first)")
        if typer.condition(rule.when):
            _report_contradiction(rule.when, report)
    _report_rule_relations(rules, scope.codesets, report)
    return rules


def _report_rule_relations(
    rules: list[ast.RuleDecl], codesets: dict[str, CodeSet], report: _Report
) -> None:
    for kind, first, second in rule_relations(rules, codesets):
        if kind == "ambiguous":
            report.error(
                second.span,
                f"rules `{first.name}` and `{second.name}` can match the same activity with "
                f"no precedence between them (both rank {first.rank})",
                "give one of them a lower rank so it is tried first",
            )
        elif kind == "shadowed":
            report.warning(
                second.span,
                f"rule `{second.name}` can never apply: rule `{first.name}` (rank {first.rank}) "
                "matches every activity it matches",
                f"give `{second.name}` a lower rank than {first.rank}, or remove it",
            )


def _report_contradiction(condition: ast.Condition, report: _Report) -> None:
    found = find_contradiction(condition)
    if found is not None:
        span, message = found
        report.error(
            span,
            f"this condition can never be true: {message}",
            "check the thresholds: no value satisfies them all",
        )


def _check_policies(
    policies: list[ast.PolicyDecl], scope: Scope, lines: dict[str, ast.LineDecl], report: _Report
) -> None:
    typer = ConditionTyper(scope, context="policy")
    by_id: dict[str, list[ast.PolicyDecl]] = {}
    for policy in policies:
        by_id.setdefault(policy.id, []).append(policy)
        _check_policy_fields(policy, lines, report)
        for condition in (policy.applies, policy.criteria):
            if condition is not None and typer.condition(condition):
                _report_contradiction(condition, report)
    for versions in by_id.values():
        _check_versions(versions, report)


def _check_policy_fields(
    policy: ast.PolicyDecl, lines: dict[str, ast.LineDecl], report: _Report
) -> None:
    if policy.effective_from is None:
        report.error(policy.span, f"policy `{policy.id}` has no `effective from` date")
    elif policy.effective_from == dt.date.min or policy.effective_to == dt.date.min:
        report.error(policy.span, f"policy `{policy.id}` has an effective date that is not real")
    elif policy.effective_to is not None and policy.effective_to < policy.effective_from:
        report.error(policy.span, f"policy `{policy.id}` ends before it starts")
    for code in policy.governs or ():
        if code not in lines:
            report.error(policy.span, f"unknown service line `{code}`", did_you_mean(code, lines))
    if policy.governs == ():
        report.error(
            policy.span,
            f"policy `{policy.id}` governs no service line",
            "add `governs NCBPS...` or `governs any line`",
        )
    if policy.met is None:
        report.error(policy.span, f"policy `{policy.id}` has no `when met:` outcome")
    for outcome, allowed in ((policy.met, MET_OUTCOMES), (policy.not_met, NOT_MET_OUTCOMES)):
        if outcome is None:
            continue
        if outcome.eligibility not in allowed:
            report.error(
                outcome.span,
                f"`{outcome.eligibility}` is not an outcome here",
                did_you_mean(outcome.eligibility, allowed) or "one of: " + ", ".join(allowed),
            )
        elif outcome.eligibility in ROUTED and not outcome.route:
            report.error(
                outcome.span,
                f"`{outcome.eligibility}` needs a route",
                'name the form or process: `via "Blueteq CET5"`',
            )


def _check_versions(versions: list[ast.PolicyDecl], report: _Report) -> None:
    ordered = sorted(versions, key=lambda p: (p.effective_from or dt.date.min, p.version))
    numbers: set[int] = set()
    for policy in ordered:
        if policy.version in numbers:
            report.error(
                policy.span, f"policy `{policy.id}` version {policy.version} is declared twice"
            )
        numbers.add(policy.version)
    for earlier, later in pairwise(ordered):
        end = earlier.effective_to or dt.date.max
        if later.effective_from is not None and later.effective_from <= end:
            report.error(
                later.span,
                f"versions {earlier.version} and {later.version} of policy `{later.id}` are both "
                f"in force on {later.effective_from.isoformat()}",
                f"end version {earlier.version} with `to` the day before version {later.version} "
                "starts",
            )


def _check_assessment(
    assessment: ast.AssessmentDecl, codesets: dict[str, CodeSet], report: _Report
) -> None:
    types: dict[str, VType] = {}
    for decl in assessment.inputs:
        if decl.name in BUILTINS:
            report.error(decl.span, f"`{decl.name}` is built in and cannot be an input",
                         "give the input another name")
        if decl.unit is not None and decl.unit not in UNITS:
            report.error(decl.span, f"unknown unit `{decl.unit}`")
        declared = _fact_vtype(decl, report)
        if declared is not None:
            types[decl.name] = declared
    scope = Scope(types, set(), codesets, report.error)
    typer = ConditionTyper(scope, context="assessment")
    for factor in assessment.factors:
        if not isinstance(factor.condition, ast.Compare | ast.Between | ast.InList | ast.IsValue):
            report.error(
                factor.span,
                f"factor `{factor.name}` must be one comparison of an input with its threshold",
            )
        typer.condition(factor.condition)
        types[factor.name] = VType("bool")
    for conclusion in assessment.conclusions:
        typer.condition(conclusion.when)
        types[conclusion.name] = VType("bool")


ELIGIBILITIES = tuple(Eligibility)
# expect KEY -> the values it can take (keys not listed take any string)
EXPECTED_VALUES: dict[str, tuple[str, ...]] = {
    "commissioner": COMMISSIONERS,
    "eligibility": ELIGIBILITIES,
    "highly_specialised": ("yes", "no", "true", "false"),
}


# a factor or conclusion of an assessment test is met, not met, or unknown
ASSESSED_VALUES = ("yes", "no", "true", "false", "unknown")


def _check_expected_value(
    expectation: ast.Expectation, report: _Report, every_key: tuple[str, ...] | None = None
) -> None:
    allowed = every_key or EXPECTED_VALUES.get(expectation.key)
    value = expectation.value
    if allowed is not None and value not in allowed:
        report.error(expectation.span, f"`{value}` is not a possible {expectation.key}",
                     did_you_mean(str(value), allowed) or "one of: " + ", ".join(allowed))
    if expectation.key == "policy_version" and not (isinstance(value, str) and value.isdigit()):
        report.error(expectation.span, "a policy version is a whole number, e.g. `2`")


TEST_KEYS = (
    "commissioner",
    "service",
    "line",
    "policy",
    "policy_version",
    "eligibility",
    "route",
    "missing",
    "highly_specialised",
)


def _check_tests(
    tests: tuple[ast.TestDecl, ...],
    assessments: dict[str, ast.AssessmentDecl],
    report: _Report,
) -> None:
    names: set[str] = set()
    for test in tests:
        if test.name in names:
            report.error(test.span, f"duplicate test name `{test.name}`")
        names.add(test.name)
        if test.assessment is not None and test.assessment not in assessments:
            report.error(
                test.span,
                f"unknown assessment `{test.assessment}`",
                did_you_mean(test.assessment, assessments),
            )
            continue
        allowed: tuple[str, ...] = TEST_KEYS
        if test.assessment is not None:
            decl = assessments[test.assessment]
            allowed = tuple(f.name for f in decl.factors) + tuple(c.name for c in decl.conclusions)
        for expectation in test.expectations:
            if expectation.key not in allowed:
                report.error(
                    expectation.span,
                    f"cannot expect `{expectation.key}` here",
                    did_you_mean(expectation.key, allowed)
                    or "expect one of: " + ", ".join(allowed),
                )
            elif test.assessment is not None:
                _check_expected_value(expectation, report, ASSESSED_VALUES)
            else:
                _check_expected_value(expectation, report)
        if not test.expectations:
            report.warning(test.span, f"test `{test.name}` expects nothing")
