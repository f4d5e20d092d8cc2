"""A compiled policy set and the decision it makes: identify → commission → apply policy.

In: a `CheckedPack` (compiled once, at build or cold start) and a clock. Out: `Decision`s.
Identification rules are indexed by the codes they need, so a decision looks up the request's
codes instead of trying every rule; policies are indexed by the service line they govern.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.checker import CheckedPack
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import CompiledCondition, Compiler, Tri
from chalicelib.dsl.typecheck import list_keys
from chalicelib.engine.decision import (
    Assessment,
    ClauseSource,
    Decision,
    PolicyInfo,
    ProvenanceItem,
    ServiceInfo,
)
from chalicelib.engine.provenance import ProvenanceIndex
from chalicelib.engine.request import parse_request
from chalicelib.errors import NotCoveredError, Problem, RequestError, UnknownNameError

Clock = Callable[[], dt.datetime]
Reasons = list[tuple[ClauseSource, Tri]]


@dataclass(frozen=True)
class CompiledRule:
    """An identification rule ready to run."""

    decl: ast.RuleDecl
    condition: CompiledCondition
    sources: tuple[ClauseSource, ...]


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy version ready to run."""

    decl: ast.PolicyDecl
    start: dt.date
    end: dt.date
    applies: CompiledCondition | None
    criteria: CompiledCondition | None
    applies_sources: tuple[ClauseSource, ...]
    criteria_sources: tuple[ClauseSource, ...]
    info: PolicyInfo


def _sources(owner: str, condition: CompiledCondition | None) -> tuple[ClauseSource, ...]:
    if condition is None:
        return ()
    return tuple(ClauseSource(owner, leaf.text, leaf.at) for leaf in condition.leaves)


class RuleIndex:
    """Identification rules indexed by the code, list value or nothing each one requires.

    A rule whose condition is a conjunction containing a code-set test is filed under that
    set's codes; a request then gathers only the rules its own codes can reach, plus the
    few rules with no code test, and tries them in rank order.
    """

    _DIMENSIONS = (
        "dominant procedure",
        "primary diagnosis",
        "any procedure",
        "any diagnosis",
        "any drug",
        "treatment function",
    )

    def __init__(self, rules: list[CompiledRule], codesets: dict[str, CodeSet]) -> None:
        self.rules = rules
        self.index: dict[str, dict[str, list[int]]] = {
            d: defaultdict(list) for d in self._DIMENSIONS
        }
        self.lengths: dict[str, set[int]] = {d: set() for d in self._DIMENSIONS}
        self.unindexed: list[int] = []
        for position, rule in enumerate(rules):
            key = self._key(rule.decl.when, codesets)
            if key is None:
                self.unindexed.append(position)
                continue
            dimension, keys = key
            for k in keys:
                self.index[dimension][k].append(position)
                self.lengths[dimension].add(len(k))

    def _key(
        self, cond: ast.Condition, codesets: dict[str, CodeSet]
    ) -> tuple[str, Iterable[str]] | None:
        leaves = cond.items if isinstance(cond, ast.Group) and cond.kind == "all" else (cond,)
        for dimension in self._DIMENSIONS:
            for leaf in leaves:
                if isinstance(leaf, ast.InSet) and leaf.selector == dimension:
                    return dimension, codesets[leaf.set_name].keys
                if isinstance(leaf, ast.InList) and leaf.selector == dimension:
                    return dimension, list_keys(dimension, leaf.items)[1]
        return None

    def candidates(self, activity: Activity) -> list[int]:
        """Positions (rank order) of the rules the activity's codes can reach."""
        found = set(self.unindexed)
        index, lengths = self.index, self.lengths
        procedures, diagnoses = activity.procedures, activity.diagnoses
        for dimension, codes in (
            ("dominant procedure", procedures[:1]),
            ("primary diagnosis", diagnoses[:1]),
            ("any procedure", procedures),
            ("any diagnosis", diagnoses),
            ("any drug", activity.drugs),
            ("treatment function", (activity.treatment_function,)
             if activity.treatment_function else ()),
        ):
            if not codes:
                continue
            table = index[dimension]
            if not table:
                continue
            for code in codes:
                for n in lengths[dimension]:
                    hit = table.get(code[:n])
                    if hit:
                        found.update(hit)
        return sorted(found)


class PolicySet:
    """A compiled national pack: decides requests and runs assessments."""

    def __init__(self, checked: CheckedPack, digest: str, clock: Clock) -> None:
        self.checked = checked
        self.version = checked.pack.version
        self.name = checked.pack.name
        self.covers_from = checked.pack.covers_from
        self.digest = digest
        self.clock = clock
        self.compiler = Compiler(checked.fact_types, checked.codesets)
        self.provenance = ProvenanceIndex(checked)
        rules = [self._rule(r) for r in checked.rules]
        self.rule_index = RuleIndex(rules, checked.codesets)
        self.policies = [self._policy(p) for p in checked.policies]
        self.by_line: dict[str | None, list[CompiledPolicy]] = defaultdict(list)
        any_line = [p for p in self.policies if p.decl.governs is None]
        for line in checked.lines:
            governed = [p for p in self.policies if p.decl.governs and line in p.decl.governs]
            self.by_line[line] = sorted(
                governed + any_line, key=lambda p: (p.decl.rank, p.decl.id, p.start)
            )

    def _rule(self, decl: ast.RuleDecl) -> CompiledRule:
        condition = self.compiler.compile(decl.when)
        return CompiledRule(decl, condition, _sources(decl.name, condition))

    def _policy(self, decl: ast.PolicyDecl) -> CompiledPolicy:
        applies = self.compiler.compile(decl.applies) if decl.applies else None
        criteria = self.compiler.compile(decl.criteria) if decl.criteria else None
        return CompiledPolicy(
            decl=decl,
            start=decl.effective_from or dt.date.min,
            end=decl.effective_to or dt.date.max,
            applies=applies,
            criteria=criteria,
            applies_sources=_sources(decl.id, applies),
            criteria_sources=_sources(decl.id, criteria),
            info=PolicyInfo(decl.id, decl.version, decl.title),
        )

    # --- deciding ------------------------------------------------------------------------

    def parse(self, request: Any) -> Activity:
        """Validate a request (the JSON of `POST /v1/decisions`) into an `Activity`."""
        return parse_request(request, self.checked.fact_types, self.checked.attestations)[1]

    def decide(self, request: Any) -> Decision:
        """Decide a request given as JSON data; raises `RequestError` or `NotCoveredError`."""
        return self.decide_activity(self.parse(request))

    def decide_activity(self, activity: Activity) -> Decision:
        """Decide an already validated activity."""
        if activity.date < self.covers_from:
            raise NotCoveredError(
                f"no policy set is in force on {activity.date.isoformat()}: the national pack "
                f"covers decisions from {self.covers_from.isoformat()}"
            )
        reasons: Reasons = []
        rule = self._identify(activity, reasons)
        if rule is None:
            return self._decision("icb_core", None, None, "not_applicable", None, (), reasons)
        service = self.checked.line_service[rule.decl.line]
        commissioner, entry = self._commissioner(service, activity, reasons)
        info = ServiceInfo(
            service.id, rule.decl.line, service.name, service.programme, service.highly_specialised
        )
        policy, undecided = self._select_policy(rule.decl.line, activity, reasons)
        line = self.checked.lines[rule.decl.line]
        provenance = self.provenance.rests_on(
            rule.decl, service, line, entry, policy.decl if policy else None
        )
        if policy is None:
            return self._decision(commissioner, info, None, "not_applicable", None, (), reasons,
                                  provenance)
        if undecided:
            # Whether this policy applies depends on inputs not given: say which.
            return self._decision(commissioner, info, policy.info, "incomplete", None,
                                  undecided, reasons, provenance)
        eligibility, route, missing = self._apply(policy, activity, reasons)
        return self._decision(commissioner, info, policy.info, eligibility, route, missing, reasons,
                              provenance)

    def _decision(
        self,
        commissioner: str,
        service: ServiceInfo | None,
        policy: PolicyInfo | None,
        eligibility: str,
        route: str | None,
        missing: Iterable[str],
        reasons: Reasons,
        provenance: tuple[ProvenanceItem, ...] = (),
    ) -> Decision:
        return Decision(
            self.version,
            self.digest,
            commissioner,
            service,
            policy,
            eligibility,
            route,
            tuple(missing),
            tuple(reasons),
            self.clock(),
            provenance,
        )

    def _identify(self, activity: Activity, reasons: Reasons) -> CompiledRule | None:
        rules = self.rule_index.rules
        for position in self.rule_index.candidates(activity):
            rule = rules[position]
            # The short-circuiting predicate finds the rule; only the winner is re-run
            # clause by clause for its reasons.
            if rule.condition.predicate(activity) is True:
                _, results = rule.condition.evaluate(activity)
                reasons.extend(zip(rule.sources, results, strict=True))
                return rule
        reasons.append(
            (
                ClauseSource(
                    "identification",
                    "no identification rule matches the activity: "
                    "not a prescribed specialised service",
                    "",
                ),
                False,
            )
        )
        return None

    def _commissioner(
        self, service: ast.ServiceDecl, activity: Activity, reasons: Reasons
    ) -> tuple[str, ast.CommissionerEntry | None]:
        """The commissioner in force and the entry that says so (None: no entry in force)."""
        best: ast.CommissionerEntry | None = None
        for entry in service.commissioners:
            if entry.start > activity.date or not _in_scope(entry, activity):
                continue
            # The latest start wins; on the same date a region/ICB-scoped entry wins.
            if best is None or (entry.start, entry.scope_kind is not None) > (
                best.start,
                best.scope_kind is not None,
            ):
                best = entry
        if best is None:
            text = "no commissioner in force on this date"
            reasons.append((ClauseSource(f"service {service.id}", text, service.span.at()), False))
            return "icb_core", None
        reasons.append((_entry_source(service.id, best), True))
        return best.outcome, best

    def _select_policy(
        self, line: str, activity: Activity, reasons: Reasons
    ) -> tuple[CompiledPolicy | None, list[str]]:
        """The first policy (by rank) in force whose applicability holds.

        Returns (policy, []) when one applies; (policy, missing inputs) when the first one
        that could apply depends on inputs the request lacks (an unknown applicability must
        not let a lower-ranked policy answer); (None, []) when none applies.
        """
        for policy in self.by_line.get(line, ()):
            if not policy.start <= activity.date <= policy.end:
                continue
            if policy.applies is None:
                return policy, []
            applies = policy.applies.predicate(activity)
            if applies is False:
                continue
            _, results = policy.applies.evaluate(activity)
            reasons.extend(zip(policy.applies_sources, results, strict=True))
            if applies is True:
                return policy, []
            return policy, policy.applies.missing(activity, results)
        return None, []

    def _apply(
        self, policy: CompiledPolicy, activity: Activity, reasons: Reasons
    ) -> tuple[str, str | None, list[str]]:
        decl = policy.decl
        met = decl.met or ast.Outcome("eligible")
        if policy.criteria is None:
            return met.eligibility, met.route, []
        value, results = policy.criteria.evaluate(activity)
        reasons.extend(zip(policy.criteria_sources, results, strict=True))
        if value is True:
            return met.eligibility, met.route, []
        if value is False:
            failed = decl.not_met or ast.Outcome("not_eligible")
            return failed.eligibility, failed.route, []
        missing = policy.criteria.missing(activity, results)
        return "incomplete", None, missing

    # --- assessments and listings ------------------------------------------------------------

    def assess(self, name: str, inputs: Any) -> Assessment:
        """Run assessment `name` (e.g. `four_factors`) over its inputs given as JSON data."""
        from chalicelib.engine.assess import run_assessment

        decl = self.checked.assessments.get(name)
        if decl is None:
            raise UnknownNameError(f"unknown assessment `{name}`")
        if not isinstance(inputs, dict):
            raise RequestError([Problem("body", "must be a JSON object")])
        return run_assessment(decl, inputs, self.checked.codesets)

    def policy_versions(self, policy_id: str | None = None) -> list[ast.PolicyDecl]:
        """Every policy version in the pack (of one id when given), by id then start date."""
        found = [p.decl for p in self.policies if policy_id is None or p.decl.id == policy_id]
        return sorted(found, key=lambda p: (p.id, p.effective_from or dt.date.min))


@cache
def _entry_source(service_id: str, entry: ast.CommissionerEntry) -> ClauseSource:
    """The reason a commissioner entry gives (built once per entry)."""
    text = f"commissioner {entry.outcome} from {entry.start.isoformat()}"
    if entry.scope_kind:
        text += f" in {entry.scope_kind} " + ", ".join(f'"{v}"' for v in entry.scope_values)
    return ClauseSource(f"service {service_id}", text, entry.span.at())


def _in_scope(entry: ast.CommissionerEntry, activity: Activity) -> bool:
    if entry.scope_kind is None:
        return True
    value = activity.region if entry.scope_kind == "region" else activity.icb
    return value is not None and value in entry.scope_values


__all__ = ["PolicySet"]
