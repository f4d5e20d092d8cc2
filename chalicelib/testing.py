"""Author tests: run the `test` blocks of a pack, measure clause coverage, write JUnit XML.

In: a compiled `PolicySet` (its checked pack carries the tests). Out: one `TestResult` per
test, and a `Coverage` of every clause of every rule and policy: which results (true, false,
unknown) the tests made it take. A clause never seen true or never seen false is a gap.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.source import Diagnostic
from chalicelib.engine.decision import ClauseSource, Decision
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import NotCoveredError, RequestError, UnknownNameError

_TRI = {"yes": True, "true": True, "no": False, "false": False, "unknown": None, None: None}


@dataclass(frozen=True)
class TestResult:
    """The outcome of one author test."""

    name: str
    at: str
    failures: tuple[str, ...]
    seconds: float = 0.0  # how long the test took, for JUnit's `time`

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures

    @property
    def file(self) -> str:
        """The test's file, e.g. `policies/tests/cancer.pss` (from `at`, `file:line`)."""
        return self.at.rsplit(":", 1)[0] if ":" in self.at else self.at


@dataclass
class Coverage:
    """Per clause, the set of results the tests produced."""

    seen: dict[ClauseSource, set[bool | None]] = field(default_factory=lambda: defaultdict(set))

    def record(self, decision: Decision) -> None:
        """Add every clause result of a decision."""
        for source, result in decision.reasons:
            if source.at:
                self.seen[source].add(result)

    def record_all(self, policy_set: PolicySet, activity: Activity) -> None:
        """Add the result of every identification rule's clauses and of every applicability
        clause of the policies in force, as if each were tried: a rule clause seen false in
        some test counts even when another rule won."""
        for rule in policy_set.rule_index.rules:
            _, results = rule.condition.evaluate(activity)
            for source, result in zip(rule.sources, results, strict=True):
                self.seen[source].add(result)
        for policy in policy_set.policies:
            if policy.applies is not None and policy.start <= activity.date <= policy.end:
                _, results = policy.applies.evaluate(activity)
                for source, result in zip(policy.applies_sources, results, strict=True):
                    self.seen[source].add(result)

    def gaps(self, clauses: Iterable[ClauseSource]) -> list[tuple[ClauseSource, str]]:
        """Clauses never seen true or never seen false, with what is lacking."""
        out = []
        for clause in clauses:
            results = self.seen.get(clause, set())
            if clause.clause.startswith("attested ") and None in results:
                # An attestation is given or not: "not given" (unknown) is its false side.
                results = {*results, False}
            lacking = [
                name for value, name in ((True, "true"), (False, "false")) if value not in results
            ]
            if lacking:
                out.append((clause, " and ".join(lacking)))
        return out


def all_clauses(policy_set: PolicySet) -> list[ClauseSource]:
    """Every clause of every identification rule and policy in the pack."""
    clauses: list[ClauseSource] = []
    for rule in policy_set.rule_index.rules:
        clauses.extend(rule.sources)
    for policy in policy_set.policies:
        clauses.extend(policy.applies_sources)
        clauses.extend(policy.criteria_sources)
    return list(dict.fromkeys(clauses))


def invalid_inputs(policy_set: PolicySet) -> list[Diagnostic]:
    """A diagnostic for every test whose `given` request (or assessment input) is invalid,
    so `pss check` catches a test that could never run as written."""
    found = []
    for test in policy_set.checked.tests:
        try:
            if test.assessment is None:
                policy_set.parse(test.input)
            else:
                policy_set.assess(test.assessment, test.input)
        except RequestError as exc:
            problems = "; ".join(f"{d.field}: {d.problem}" for d in exc.details)
            found.append(Diagnostic("error", f"test `{test.name}` gives an invalid request: "
                                    f"{problems}", test.span))
    return found


def run_tests(policy_set: PolicySet, coverage: Coverage | None = None, *,
              timer: Callable[[], float] = time.perf_counter) -> list[TestResult]:
    """Run every test of the pack; record clause results into `coverage` when given.

    `timer` (seconds, monotonic) times each test for the JUnit report.
    """
    results = []
    for test in policy_set.checked.tests:
        started = timer()
        failures = _run_one(policy_set, test, coverage)
        results.append(TestResult(test.name, test.span.at(), tuple(failures),
                                  max(timer() - started, 0.0)))
    return results


def _run_one(policy_set: PolicySet, test: ast.TestDecl, coverage: Coverage | None) -> list[str]:
    try:
        if test.assessment is not None:
            assessment = policy_set.assess(test.assessment, test.input)
            actual: dict[str, Any] = dict(assessment.conclusions)
            actual.update({f.name: f.met for f in assessment.factors})
            return [
                f"expected {e.key} {e.value}, got {_tri_text(actual.get(e.key))}"
                for e in test.expectations
                if _TRI.get(e.value if isinstance(e.value, str) or e.value is None else "")
                != actual.get(e.key)
            ]
        activity = policy_set.parse(test.input)
        decision = policy_set.decide_activity(activity)
    except RequestError as exc:
        return [
            "the test's request is invalid: "
            + "; ".join(f"{d.field}: {d.problem}" for d in exc.details)
        ]
    except (NotCoveredError, UnknownNameError) as exc:
        return [str(exc)]
    if coverage is not None:
        coverage.record(decision)
        coverage.record_all(policy_set, activity)
    return [msg for e in test.expectations if (msg := _check(e, decision))]


def _tri_text(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _actual(key: str, decision: Decision) -> Any:
    service, policy = decision.service, decision.policy
    return {
        "commissioner": decision.commissioner,
        "service": service.id if service else None,
        "line": service.line if service else None,
        "policy": policy.id if policy else None,
        "policy_version": str(policy.version) if policy else None,
        "eligibility": decision.eligibility,
        "route": decision.route,
        "missing": decision.missing,
        "highly_specialised": ("yes" if service.highly_specialised else "no") if service else None,
    }[key]


def _check(expectation: ast.Expectation, decision: Decision) -> str | None:
    actual = _actual(expectation.key, decision)
    wanted = expectation.value
    if expectation.key == "missing":
        # `expect missing ras` names one input; `expect missing (a, b)` several; `none`, none.
        wanted_set = {wanted} if isinstance(wanted, str) else set(wanted or ())
        if wanted_set != set(actual):
            return f"expected missing ({', '.join(sorted(wanted_set))}), got ({', '.join(actual)})"
        return None
    if isinstance(wanted, str) and expectation.key == "highly_specialised":
        wanted = "yes" if _TRI.get(wanted) else "no"
    if actual != wanted:
        return f"expected {expectation.key} {wanted or 'none'}, got {actual or 'none'}"
    return None


def junit_xml(results: list[TestResult], suite: str = "pss") -> str:
    """Render results as JUnit XML: one testsuite, one testcase per test.

    `classname` is the file's stem (`cancer` for `policies/tests/cancer.pss`): CI servers
    such as Jenkins split classnames on dots, so a path with `.pss:3` would scatter. `name` is
    the test's title, `time` its seconds, and `file` / `line` say where it is written.
    """
    failures = sum(1 for r in results if not r.passed)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=_seconds(sum(r.seconds for r in results)),
    )
    for result in results:
        line = result.at.rsplit(":", 1)[1] if ":" in result.at else ""
        case = ET.SubElement(root, "testcase", name=result.name,
                             classname=PurePosixPath(result.file).stem.replace(".", "_"),
                             time=_seconds(result.seconds), file=result.file)
        if line.isdigit():
            case.set("line", line)
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.failures[0])
            failure.text = f"{result.at}\n" + "\n".join(result.failures)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _seconds(value: float) -> str:
    return f"{value:.6f}"
