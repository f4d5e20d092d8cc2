"""A compiled policy set and the decision it makes: identify → commission → apply policy.

In: a `CheckedPack` (compiled once, at build or cold start) and a clock. Out: `Decision`s.
Identification rules are indexed by the codes they need, so a decision looks up the request's
codes instead of trying every rule; policies are indexed by the service line they govern.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, NamedTuple

from chalicelib.activity import Activity
from chalicelib.dsl import ast
from chalicelib.dsl.ast import Selector
from chalicelib.dsl.checker import CheckedPack
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import CompiledCondition, Compiler, Evaluator
from chalicelib.dsl.kleene import Tri
from chalicelib.dsl.outcomes import Commissioner, Eligibility
from chalicelib.dsl.typecheck import list_keys
from chalicelib.engine.decision import (
    Assessment,
    ClauseSource,
    Decision,
    PolicyInfo,
    ProvenanceItem,
    Reason,
    ServiceInfo,
)
from chalicelib.engine.provenance import ProvenanceIndex
from chalicelib.engine.request import parse_request
from chalicelib.errors import NotCoveredError, Problem, RequestError, UnknownNameError

Clock = Callable[[], dt.datetime]
CACHED_LOOKUPS = 4096  # per policy set: rule candidates and commissioner entries remembered


class _CodeLists(NamedTuple):
    """The `Activity` fields rule candidates depend on (`RuleIndex.DIMENSIONS` read these)."""

    procedures: tuple[str, ...]
    diagnoses: tuple[str, ...]
    drugs: tuple[str, ...]
    treatment_function: str | None


# The same fields are adjacent in `Activity`: one slice of it is the lookup key (a plain tuple,
# built at C speed), checked here once so a reordering of `Activity` cannot go unnoticed.
_FIRST = Activity._fields.index(_CodeLists._fields[0])
_CODE_FIELDS = slice(_FIRST, _FIRST + len(_CodeLists._fields))
if tuple(Activity._fields)[_FIRST:_FIRST + len(_CodeLists._fields)] != _CodeLists._fields:
    raise ImportError("Activity's code list fields are no longer adjacent, in _CodeLists order")
_code_key: Callable[[Activity], tuple[Any, ...]] = operator.itemgetter(_CODE_FIELDS)
Reasons = list[Reason]
# A clause's reasons by result (`ClauseSource.reasons`): a decision picks one per clause, at C
# speed (`map(_PICK, tables, results)`), instead of building pairs. A condition's tables and
# results come from the same leaves, so they are the same length: no check is paid for.
ReasonTable = dict[Tri, Reason]
_PICK: Callable[[ReasonTable, Tri], Reason] = dict.__getitem__
Explain = Callable[[Activity], tuple[Tri, list[Tri]]]  # a condition's `evaluate`


@dataclass(frozen=True)
class CompiledRule:
    """An identification rule ready to run."""

    decl: ast.RuleDecl
    condition: Evaluator
    sources: tuple[ClauseSource, ...]
    reasons: tuple[ReasonTable, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", _tables(self.sources))


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy version ready to run."""

    decl: ast.PolicyDecl
    start: dt.date
    end: dt.date
    applies: Evaluator | None
    criteria: Evaluator | None
    applies_sources: tuple[ClauseSource, ...]
    criteria_sources: tuple[ClauseSource, ...]
    info: PolicyInfo
    met: tuple[Eligibility, str | None]  # (eligibility, route) when the criteria hold
    not_met: tuple[Eligibility, str | None]  # ... when they do not
    applies_reasons: tuple[ReasonTable, ...] = field(init=False, repr=False, compare=False)
    criteria_reasons: tuple[ReasonTable, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "applies_reasons", _tables(self.applies_sources))
        object.__setattr__(self, "criteria_reasons", _tables(self.criteria_sources))


def _tables(sources: tuple[ClauseSource, ...]) -> tuple[ReasonTable, ...]:
    return tuple(source.reasons for source in sources)


def _sources(owner: str, condition: Evaluator | None) -> tuple[ClauseSource, ...]:
    if condition is None:
        return ()
    return tuple(ClauseSource(owner, leaf.text, leaf.at) for leaf in condition.leaves)


class _LinePlan(NamedTuple):
    """What a decision reads about the service line its identification rule names."""

    service: ast.ServiceDecl
    info: ServiceInfo
    line: ast.LineDecl


class CodeIndex:
    """Conditions indexed by the code, list value or nothing each one requires.

    A condition that is a conjunction containing a code test on one of `dimensions` is filed
    under that test's codes: an activity none of whose codes reach it makes that test, and so
    the whole conjunction, false. `candidates` gathers only the conditions the activity's own
    codes can reach, plus those with no such test, in their original order.

    The index is a coarse filter (a drug name is looked up by its prefixes too), so every
    code test of the conjunction is then run on the code lists (`code_tests`): a condition
    one of whose code tests is false (or, for an absent treatment function, unknown: never
    true) is not a candidate. Both are answered once per distinct set of code lists, so a
    decision pays for neither; and a condition made of nothing but code tests (`settled`) is
    known to be true, each of its clauses true, for every candidate: it is not evaluated.
    """

    def __init__(self, conditions: Sequence[ast.Condition | None],
                 codesets: dict[str, CodeSet], dimensions: Sequence[Selector]) -> None:
        self.dimensions = tuple(dimensions)
        self.index: dict[Selector, dict[str, list[int]]] = {
            d: defaultdict(list) for d in self.dimensions
        }
        self.lengths: dict[Selector, set[int]] = {d: set() for d in self.dimensions}
        self.unindexed: list[int] = []
        # Position -> the conjunction's code tests, compiled; and the value and clause results
        # of those conditions that are code tests only (a candidate passed every one).
        self.code_tests: dict[int, tuple[Callable[[Activity], Tri], ...]] = {}
        self.settled: dict[int, tuple[Tri, ...]] = {}
        # Position -> the items of its `all` group that are code tests, when it has others too:
        # a candidate passed them, so only the others need evaluating (`assuming`).
        self.partly_settled: dict[int, frozenset[int]] = {}
        self.assumed: dict[int, Explain] = {}  # filled by `assume`
        tests_of = Compiler({}, codesets).leaf  # code tests read no fact: no types needed
        for position, condition in enumerate(conditions):
            tests = [] if condition is None else self._tests(condition, codesets)
            if not tests or condition is None:
                self.unindexed.append(position)
                continue
            self.code_tests[position] = tuple(tests_of(leaf) for _, _, leaf in tests)
            conjuncts = _conjuncts(condition)
            if len(tests) == len(conjuncts):
                self.settled[position] = (True,) * len(tests)
            else:
                self.partly_settled[position] = frozenset(
                    i for i, item in enumerate(conjuncts)
                    if any(item is leaf for _, _, leaf in tests))
            dimension, keys, _ = min(tests, key=lambda test: len(test[1]))
            for k in keys:
                self.index[dimension][k].append(position)
                self.lengths[dimension].add(len(k))
        # Only the dimensions some rule is filed under are looked at.
        self._lookups = [
            (d.field, d.many, d.first_only, self.index[d], sorted(self.lengths[d]))
            for d in self.dimensions
            if self.index[d]
        ]
        # Activity repeats the same few code lists: each is looked up once, in bounded memory.
        # `reach(code_key)`: `candidates` of an activity whose code lists are `code_key`
        # (`_code_key`), called directly (no method around it: every decision calls it twice).
        self.reach: Callable[[tuple[Any, ...]], tuple[int, ...]] = lru_cache(
            maxsize=CACHED_LOOKUPS)(self._reach_uncached)

    # Pickled without the cache (a bound lru_cache does not pickle): Spark ships compiled packs.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "reach"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.reach = lru_cache(maxsize=CACHED_LOOKUPS)(self._reach_uncached)

    def _tests(
        self, cond: ast.Condition, codesets: dict[str, CodeSet]
    ) -> list[tuple[Selector, Collection[str], ast.InSet | ast.InList]]:
        """The conjuncts of `cond` that test codes on one of `dimensions`, with their keys."""
        leaves = _conjuncts(cond)
        tests: list[tuple[Selector, Collection[str], ast.InSet | ast.InList]] = []
        for leaf in leaves:
            if not isinstance(leaf, ast.InSet | ast.InList) or leaf.selector is None:
                continue
            dimension = Selector(leaf.selector)
            if dimension not in self.dimensions:
                continue
            if isinstance(leaf, ast.InSet):
                tests.append((dimension, codesets[leaf.set_name].keys, leaf))
            else:
                tests.append((dimension, list_keys(dimension, leaf.items)[1], leaf))
        return tests

    def assume(self, conditions: Sequence[Evaluator | None]) -> None:
        """Fill `assumed` from the compiled `conditions` (in position order): for each partly
        settled one, the `evaluate` of its other items only, its code tests taken as true."""
        for position, items in self.partly_settled.items():
            condition = conditions[position]
            if isinstance(condition, CompiledCondition):
                self.assumed[position] = condition.assuming(items).evaluate

    def candidates(self, activity: Activity) -> tuple[int, ...]:
        """Positions (rank order) of the rules the activity's codes can reach."""
        return self.reach(_code_key(activity))

    def _reach_uncached(self, key: tuple[Any, ...]) -> tuple[int, ...]:
        lists = _CodeLists._make(key)
        found = set(self.unindexed)
        for attr, many, first_only, table, lengths in self._lookups:
            value: Any = getattr(lists, attr)
            if not value:
                continue
            codes: Iterable[str] = (value[:1] if first_only else value) if many else (value,)
            for code in codes:
                for n in lengths:
                    hit = table.get(code[:n])
                    if hit:
                        found.update(hit)
        if found:
            codes_only = Activity(dt.date.min)._replace(**lists._asdict())
            found = {p for p in found
                     if all(test(codes_only) is True for test in self.code_tests.get(p, ()))}
        return tuple(sorted(found))


def _conjuncts(cond: ast.Condition) -> tuple[ast.Condition, ...]:
    """The items of a top-level `all` group; any other condition is its one conjunct."""
    return tuple(cond.items) if isinstance(cond, ast.Group) and cond.kind == "all" else (cond,)


class RuleIndex(CodeIndex):
    """Identification rules indexed by the codes they need, tried in rank order.

    Rules are filed under every coded list and the treatment function: an absent treatment
    function makes its test unknown, never true, and a rule matches only when true.
    """

    DIMENSIONS = (*(s for s in Selector if s.many), Selector.TREATMENT_FUNCTION)

    def __init__(self, rules: list[CompiledRule], codesets: dict[str, CodeSet]) -> None:
        self.rules = rules
        super().__init__([r.decl.when for r in rules], codesets, self.DIMENSIONS)
        self.assume([r.condition for r in rules])


# Policies are filed only under coded lists: a list test is never unknown, so a policy its
# codes cannot reach surely does not apply (an unknown one must stop the search instead).
POLICY_DIMENSIONS = tuple(s for s in Selector if s.many)


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
        # Decisions are mostly dated today, in a few regions: each answer is found once.
        self._in_force = lru_cache(maxsize=CACHED_LOOKUPS)(self._in_force_uncached)
        self.provenance = ProvenanceIndex(checked)
        rules = [self._rule(r) for r in checked.rules]
        self.rule_index = RuleIndex(rules, checked.codesets)
        self.policies = [self._policy(p) for p in checked.policies]
        # What a decision says of each service line, built once.
        self.service_info = {
            line: ServiceInfo(s.id, line, s.name, s.programme, s.highly_specialised)
            for line, s in checked.line_service.items()
        }
        self.by_line: dict[str | None, list[CompiledPolicy]] = defaultdict(list)
        self.policy_index: dict[str, CodeIndex] = {}
        any_line = [p for p in self.policies if p.decl.governs is None]
        for line in checked.lines:
            governed = [p for p in self.policies if p.decl.governs and line in p.decl.governs]
            ranked = sorted(governed + any_line, key=lambda p: (p.decl.rank, p.decl.id, p.start))
            self.by_line[line] = ranked
            if ranked:
                index = self.policy_index[line] = CodeIndex(
                    [p.decl.applies for p in ranked], checked.codesets, POLICY_DIMENSIONS)
                index.assume([p.applies for p in ranked])
        # Everything a decision looks up about the line its rule names, in one place.
        self._line_plans = {line: self._line_plan(line) for line in checked.line_service}

    def _line_plan(self, line: str) -> _LinePlan:
        return _LinePlan(self.checked.line_service[line], self.service_info[line],
                         self.checked.lines[line])

    # Pickled without its cache, as `CodeIndex`; the provenance index is keyed by declaration
    # identity, which unpickling changes, so it is rebuilt over the unpickled declarations.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_in_force",
                                                                     "provenance")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._in_force = lru_cache(maxsize=CACHED_LOOKUPS)(self._in_force_uncached)
        self.provenance = ProvenanceIndex(self.checked)

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
            met=_outcome(decl.met, Eligibility.ELIGIBLE),
            not_met=_outcome(decl.not_met, Eligibility.NOT_ELIGIBLE),
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
        codes = _code_key(activity)  # both indexes look the code lists up
        rule = self._identify(activity, codes, reasons)
        if rule is None:
            return self._decision(Commissioner.ICB_CORE, None, None, Eligibility.NOT_APPLICABLE,
                                  None, (), reasons)
        line = rule.decl.line
        plan = self._line_plans[line]
        commissioner, entry, reason = self._in_force(plan.service.id, activity.date,
                                                     activity.region, activity.icb)
        reasons.append(reason)
        policy, undecided = self._select_policy(line, activity, codes, reasons)
        provenance = self.provenance.rests_on(
            rule.decl, plan.service, plan.line, entry, policy.decl if policy else None
        )
        if policy is None:
            return self._decision(commissioner, plan.info, None, Eligibility.NOT_APPLICABLE, None,
                                  (), reasons, provenance)
        if undecided:
            # Whether this policy applies depends on inputs not given: say which.
            return self._decision(commissioner, plan.info, policy.info, Eligibility.INCOMPLETE,
                                  None, undecided, reasons, provenance)
        eligibility, route, missing = self._apply(policy, activity, reasons)
        return self._decision(commissioner, plan.info, policy.info, eligibility, route, missing,
                              reasons, provenance)

    def _decision(
        self,
        commissioner: Commissioner,
        service: ServiceInfo | None,
        policy: PolicyInfo | None,
        eligibility: Eligibility,
        route: str | None,
        missing: Iterable[str],
        reasons: Reasons,
        provenance: tuple[ProvenanceItem, ...] = (),
    ) -> Decision:
        # `tuple.__new__` builds the NamedTuple at C speed from every field, in field order
        # (its generated `__new__` is Python; every decision pays for it).
        return _new_tuple(Decision, (
            self.version,  # policy_set_version
            self.digest,  # policy_set_digest
            commissioner,  # commissioner
            service,  # service
            policy,  # policy
            eligibility,  # eligibility
            route,  # route
            tuple(missing),  # missing
            tuple(reasons),  # reasons
            self.clock(),  # evaluated_at
            provenance,  # provenance
        ))

    def _identify(self, activity: Activity, codes: tuple[Any, ...],
                  reasons: Reasons) -> CompiledRule | None:
        index = self.rule_index
        rules, settled, assumed = index.rules, index.settled, index.assumed
        for position in index.reach(codes):
            rule = rules[position]
            # Candidates come from the code index and mostly match, so each is evaluated
            # clause by clause at once: the winner's results are its reasons.
            known = settled.get(position)
            if known is not None:
                reasons.extend(map(_PICK, rule.reasons, known))
                return rule
            evaluate = assumed.get(position) or rule.condition.evaluate
            value, results = evaluate(activity)
            if value is True:
                reasons.extend(map(_PICK, rule.reasons, results))
                return rule
        reasons.append(_NO_RULE)
        return None

    def _in_force_uncached(
        self, service_id: str, date: dt.date, region: str | None, icb: str | None
    ) -> tuple[Commissioner, ast.CommissionerEntry | None, Reason]:
        """The commissioner, the entry in force (None: none) and the reason that says so."""
        best = self._entry_in_force_uncached(service_id, date, region, icb)
        if best is None:
            service = self.checked.services[service_id]
            text = "no commissioner in force on this date"
            return (Commissioner.ICB_CORE, None,
                    ClauseSource(f"service {service_id}", text, service.span.at()).reason(False))
        return _COMMISSIONERS[best.outcome], best, _entry_source(service_id, best).reason(True)

    def _entry_in_force_uncached(self, service_id: str, date: dt.date, region: str | None,
                                 icb: str | None) -> ast.CommissionerEntry | None:
        """The commissioner entry of a service in force on `date` where the patient lives."""
        best: ast.CommissionerEntry | None = None
        for entry in self.checked.services[service_id].commissioners:
            if entry.start > date or not _in_scope(entry, region, icb):
                continue
            # The latest start wins; on the same date a region/ICB-scoped entry wins.
            if best is None or (entry.start, entry.scope_kind is not None) > (
                best.start,
                best.scope_kind is not None,
            ):
                best = entry
        return best

    def _select_policy(
        self, line: str, activity: Activity, codes: tuple[Any, ...], reasons: Reasons
    ) -> tuple[CompiledPolicy | None, list[str]]:
        """The first policy (by rank) in force whose applicability holds.

        Returns (policy, []) when one applies; (policy, missing inputs) when the first one
        that could apply depends on inputs the request lacks (an unknown applicability must
        not let a lower-ranked policy answer); (None, []) when none applies.
        """
        index = self.policy_index.get(line)
        if index is None:
            return None, []
        ranked, settled, assumed = self.by_line[line], index.settled, index.assumed
        date = activity.date
        for position in index.reach(codes):
            policy = ranked[position]
            if not policy.start <= date <= policy.end:
                continue
            if policy.applies is None:
                return policy, []
            known = settled.get(position)
            if known is not None:
                reasons.extend(map(_PICK, policy.applies_reasons, known))
                return policy, []
            evaluate = assumed.get(position) or policy.applies.evaluate
            applies, results = evaluate(activity)  # candidates mostly apply
            if applies is False:
                continue
            reasons.extend(map(_PICK, policy.applies_reasons, results))
            if applies is True:
                return policy, []
            return policy, policy.applies.missing(activity, results)
        return None, []

    def _apply(
        self, policy: CompiledPolicy, activity: Activity, reasons: Reasons
    ) -> tuple[Eligibility, str | None, list[str]]:
        if policy.criteria is None:
            return *policy.met, []
        value, results = policy.criteria.evaluate(activity)
        reasons.extend(map(_PICK, policy.criteria_reasons, results))
        if value is True:
            return *policy.met, []
        if value is False:
            return *policy.not_met, []
        missing = policy.criteria.missing(activity, results)
        return Eligibility.INCOMPLETE, None, missing

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


_COMMISSIONERS = {c.value: c for c in Commissioner}
_new_tuple = tuple.__new__
# The reason of an activity no identification rule matches (built once: a source renders its
# reasons when built).
_NO_RULE: Reason = ClauseSource(
    "identification",
    "no identification rule matches the activity: not a prescribed specialised service", "",
).reason(False)


def _outcome(outcome: ast.Outcome | None, default: Eligibility) -> tuple[Eligibility, str | None]:
    """A policy's checked outcome as (eligibility, route); `default` when it names none."""
    if outcome is None:
        return default, None
    return Eligibility(outcome.eligibility), outcome.route


@cache
def _entry_source(service_id: str, entry: ast.CommissionerEntry) -> ClauseSource:
    """The reason a commissioner entry gives (built once per entry)."""
    text = f"commissioner {entry.outcome} from {entry.start.isoformat()}"
    if entry.scope_kind:
        text += f" in {entry.scope_kind} " + ", ".join(f'"{v}"' for v in entry.scope_values)
    return ClauseSource(f"service {service_id}", text, entry.span.at())


def _in_scope(entry: ast.CommissionerEntry, region: str | None, icb: str | None) -> bool:
    if entry.scope_kind is None:
        return True
    value = region if entry.scope_kind == "region" else icb
    return value is not None and value in entry.scope_values


__all__ = ["PolicySet"]
