"""What-if: the same cases under two policy sets, and what moved between them.

In: a base pack (a folder, or a git ref whose `policies/` is extracted with `git archive`), a
head pack (a folder), and cases (an activity CSV, or a folder of referral JSON files). Out: a
`Tally` — counts of (old → new) commissioner, service line and eligibility, activity moved in
and out of each service line, the shift between NHS England and ICBs, and the top changed
cases with the clause that changed them — as text, JSON (`Tally.to_dict`) or HTML (`report`).
"""

from __future__ import annotations

import heapq
import io
import subprocess
import tarfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from chalicelib.activity import Activity
from chalicelib.batch.classify import InputError, Progress, read_layout
from chalicelib.batch.lines import records
from chalicelib.batch.parallel import iter_blocks, run_blocks
from chalicelib.batch.rows import FastRows, Layout, RowDecider, RowError, reject_reason, row_request
from chalicelib.engine.decision import Decision
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import NotCoveredError, PolicyError, RequestError
from chalicelib.limits import load_json

_TOTALS = ("cases", "changed", "rejected_base", "rejected_head", "to_icb", "to_nhs_england")
_COUNTERS = (
    "commissioner",
    "service_line",
    "eligibility",
    "moved_in",
    "moved_out",
    "recommissioned",
)
REJECTED = "(rejected)"
NONE = "(none)"
TOP = 20
# How much a change matters when choosing the top cases: who pays first, then which service.
_WEIGHT = {"commissioner": 3, "service_line": 2, "eligibility": 1}


@dataclass(frozen=True, order=True)
class Outcome:
    """What one pack said about a case, reduced to what the diff compares."""

    commissioner: str
    service_line: str
    eligibility: str
    policy: str = ""

    @classmethod
    def of(cls, result: Sequence[str]) -> Outcome:
        """From the `RESULT_COLUMNS` values."""
        policy = f"{result[3]} v{result[4]}" if result[3] else ""
        return cls(result[0], result[2] or NONE, result[5], policy)

    @classmethod
    def of_decision(cls, decision: Decision) -> Outcome:
        """From a `Decision`."""
        line = decision.service.line if decision.service else NONE
        p = decision.policy
        return cls(
            decision.commissioner, line, decision.eligibility, f"{p.id} v{p.version}" if p else ""
        )


REJECTED_OUTCOME = Outcome(REJECTED, REJECTED, REJECTED)


@dataclass(frozen=True, order=True)
class ChangedCase:
    """One case whose outcome changed, and the clause that changed it."""

    rank: tuple[int, int]  # (-weight, input order): the top cases sort first
    case: str
    old: Outcome
    new: Outcome
    clause: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "case": self.case,
            "old": _outcome_dict(self.old),
            "new": _outcome_dict(self.new),
            "clause": self.clause,
        }


def _outcome_dict(o: Outcome) -> dict[str, str]:
    return {
        "commissioner": o.commissioner,
        "service_line": o.service_line,
        "eligibility": o.eligibility,
        "policy": o.policy,
    }


@dataclass
class Tally:
    """Counts of what moved; blocks are tallied apart (in workers) and merged."""

    cases: int = 0
    changed: int = 0
    rejected_base: int = 0
    rejected_head: int = 0
    commissioner: Counter[tuple[str, str]] = field(default_factory=Counter)
    service_line: Counter[tuple[str, str]] = field(default_factory=Counter)
    eligibility: Counter[tuple[str, str]] = field(default_factory=Counter)
    moved_in: Counter[str] = field(default_factory=Counter)
    moved_out: Counter[str] = field(default_factory=Counter)
    recommissioned: Counter[str] = field(default_factory=Counter)
    to_icb: int = 0
    to_nhs_england: int = 0
    top: list[ChangedCase] = field(default_factory=list)
    top_limit: int = TOP

    def add(
        self, order: int, case: str, old: Outcome, new: Outcome, why: Callable[[], str]
    ) -> None:
        """Count one case; `why` (called only for changed cases) names the clause."""
        self.cases += 1
        self.rejected_base += old is REJECTED_OUTCOME
        self.rejected_head += new is REJECTED_OUTCOME
        self.commissioner[old.commissioner, new.commissioner] += 1
        self.service_line[old.service_line, new.service_line] += 1
        self.eligibility[old.eligibility, new.eligibility] += 1
        if old == new:
            return
        self.changed += 1
        if old.service_line != new.service_line:
            self.moved_out[old.service_line] += 1
            self.moved_in[new.service_line] += 1
        elif old.commissioner != new.commissioner:
            self.recommissioned[new.service_line] += 1
        if old.commissioner == "nhs_england" and new.commissioner.startswith("icb_"):
            self.to_icb += 1
        elif old.commissioner.startswith("icb_") and new.commissioner == "nhs_england":
            self.to_nhs_england += 1
        weight = max(
            (w for k, w in _WEIGHT.items() if getattr(old, k) != getattr(new, k)), default=0
        )
        rank = (-weight, order)
        if len(self.top) >= 2 * self.top_limit:  # trim now and then, not on every case
            self.top = heapq.nsmallest(self.top_limit, self.top)
        if len(self.top) < self.top_limit or rank < max(self.top).rank:
            self.top.append(ChangedCase(rank, case, old, new, why()))

    def merge(self, other: Tally) -> None:
        """Fold another tally (a later block) in."""
        for name in _TOTALS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _COUNTERS:
            getattr(self, name).update(getattr(other, name))
        self.top = heapq.nsmallest(self.top_limit, self.top + other.top)

    def ranked(self) -> list[ChangedCase]:
        """The top changed cases, most important first (who pays, then service, then order)."""
        return heapq.nsmallest(self.top_limit, self.top)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of `pss diff --json` and `POST /v1/what-if`."""

        def moves(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
            return [
                {"old": o, "new": n, "cases": c}
                for (o, n), c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
                if o != n
            ]

        lines = sorted(set(self.moved_in) | set(self.moved_out) | set(self.recommissioned))
        return {
            "cases": self.cases,
            "changed": self.changed,
            "rejected": {"base": self.rejected_base, "head": self.rejected_head},
            "commissioner": moves(self.commissioner),
            "service_line": moves(self.service_line),
            "eligibility": moves(self.eligibility),
            "by_service_line": [
                {
                    "service_line": line,
                    "moved_in": self.moved_in[line],
                    "moved_out": self.moved_out[line],
                    "recommissioned": self.recommissioned[line],
                }
                for line in lines
            ],
            "shift": {
                "nhs_england_to_icb": self.to_icb,
                "icb_to_nhs_england": self.to_nhs_england,
                "net_to_icb": self.to_icb - self.to_nhs_england,
            },
            "top_changed": [c.to_dict() for c in self.ranked()],
        }


def _matched_rule(decision: Decision) -> str | None:
    return decision.reasons[0][0].rule if decision.service and decision.reasons else None


def _rule_change(rule: str, other: PolicySet, mine: PolicySet, activity: Activity) -> str | None:
    """How `rule` (matched under `mine`) fares under `other`: its first clause not true."""
    theirs = {r.decl.name: r for r in other.rule_index.rules}.get(rule)
    ours = {r.decl.name: r for r in mine.rule_index.rules}.get(rule)
    if theirs is None or ours is None:
        return None
    _, results = theirs.condition.evaluate(activity)
    _, before = ours.condition.evaluate(activity)
    for n, (src, result) in enumerate(zip(theirs.sources, results, strict=True)):
        if result is not True:
            was = ""
            if n < len(ours.sources):
                was = f" (was `{ours.sources[n].clause}`: {_tri(before[n])})"
            return f"{rule}: `{src.clause}` is {_tri(result)}{was} at {src.at}"
    return None


def changed_clause(
    old: Decision | str,
    new: Decision | str,
    sides: tuple[PolicySet, PolicySet, Activity] | None = None,
) -> str:
    """The clause that changed an outcome (or a reject reason).

    When the identifying rule differs, the rule that stopped (or started) matching is
    evaluated under the other pack to name its first failing clause; otherwise the first
    reason whose result differs between the two decisions.
    """
    if isinstance(old, str) or isinstance(new, str):
        side, reason = ("base", old) if isinstance(old, str) else ("head", new)
        return f"rejected under {side}: {reason}"
    was, now = _matched_rule(old), _matched_rule(new)
    if sides is not None and was != now:
        base, head, activity = sides
        found = (_rule_change(was, head, base, activity) if was else None) or (
            _rule_change(now, base, head, activity) if now else None
        )
        if found:
            return found
    before = {(src.rule, src.clause): r for src, r in old.reasons}
    after = {(src.rule, src.clause): r for src, r in new.reasons}
    for src, result in new.reasons:
        if before.get((src.rule, src.clause), "absent") != result:
            previous = before.get((src.rule, src.clause), "absent")
            return (
                f"{src.rule}: `{src.clause}` is {_tri(result)} (was {_tri(previous)}) at {src.at}"
            )
    for src, result in old.reasons:
        if (src.rule, src.clause) not in after:
            return f"{src.rule}: `{src.clause}` ({_tri(result)}) no longer applies, at {src.at}"
    return "same clauses; the outcome of a clause set changed"


def explain(base: PolicySet, head: PolicySet, request: Any) -> str:
    """Decide `request` under both packs and name the clause that changed the outcome."""
    old, new = _decide_or_reason(base, request), _decide_or_reason(head, request)
    sides = None
    if not isinstance(old, str) and not isinstance(new, str):
        sides = (base, head, head.parse(request))
    return changed_clause(old, new, sides)


def _tri(value: object) -> str:
    if value is None:
        return "unknown"
    return str(value).lower()


def _decide_or_reason(policy_set: PolicySet, request: Any) -> Decision | str:
    try:
        return policy_set.decide(request)
    except (RequestError, NotCoveredError) as exc:
        return reject_reason(exc)


class DiffJob:
    """Compares the rows of one block under both packs (in-process or in a forked worker)."""

    def __init__(self, base: PolicySet, head: PolicySet, layout: Layout, top: int) -> None:
        fast = FastRows(layout, [base.rule_index, head.rule_index])
        self.fast = fast
        self.base = RowDecider(base, layout, fast)
        self.head = RowDecider(head, layout, fast)
        self.layout = layout
        self.top = top

    def _outcome(self, decider: RowDecider, fields: list[str], found: Any) -> Outcome:
        try:
            return Outcome.of(decider.decide_read(fields, found))
        except RowError:
            return REJECTED_OUTCOME

    def __call__(self, block: bytes, first_line: int) -> Tally:
        """Tally one block of whole records starting at input line `first_line`."""
        tally = Tally(top_limit=self.top)
        for at, fields, problem, _ in records(block, first_line):
            if problem is not None:
                tally.add(at, f"line {at}", REJECTED_OUTCOME, REJECTED_OUTCOME, str)
                continue
            found = self.fast.read(fields)
            old = self._outcome(self.base, fields, found)
            new = self._outcome(self.head, fields, found)
            case = (
                fields[self.layout.index["record_id"]]
                if len(fields) == len(self.layout.header)
                else ""
            )
            tally.add(at, case or f"line {at}", old, new, partial(self._why, fields))
        return tally

    def _why(self, fields: list[str]) -> str:
        try:
            request = row_request(fields, self.layout)
        except RowError as exc:
            return str(exc)
        return explain(self.base.policy_set, self.head.policy_set, request)


def diff_csv(
    source: io.BufferedIOBase | Any,
    base: PolicySet,
    head: PolicySet,
    workers: int = 1,
    top: int = TOP,
    progress: Progress | None = None,
) -> Tally:
    """Compare every row of an activity CSV under both packs; `InputError` if unusable."""
    layout, blocks = read_layout(iter_blocks(source))
    total = Tally(top_limit=top)
    for part in run_blocks(blocks, DiffJob(base, head, layout, top), workers):
        total.merge(part)
        if progress is not None:
            progress.update(part.cases, 0)
    if progress is not None:
        progress.close()
    return total


def diff_requests(
    cases: Sequence[tuple[str, Any]], base: PolicySet, head: PolicySet, top: int = TOP
) -> Tally:
    """Compare referral requests (name, JSON data) under both packs, in process."""
    tally = Tally(top_limit=top)
    for order, (name, request) in enumerate(cases):
        old_d = _decide_or_reason(base, request)
        new_d = _decide_or_reason(head, request)
        old = REJECTED_OUTCOME if isinstance(old_d, str) else Outcome.of_decision(old_d)
        new = REJECTED_OUTCOME if isinstance(new_d, str) else Outcome.of_decision(new_d)
        tally.add(order, name, old, new, partial(explain, base, head, request))
    return tally


def read_case_folder(folder: Path) -> list[tuple[str, Any]]:
    """Every `*.json` referral in a folder (sorted by name); `InputError` for unreadable ones."""
    cases = []
    for file in sorted(folder.glob("*.json")):
        try:
            cases.append((file.name, load_json(file.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:  # JSONDecodeError, LimitError, UnicodeDecodeError
            raise InputError(f"cannot read case `{file}`: {exc}") from None
    if not cases:
        raise InputError(f"`{folder}` holds no *.json cases")
    return cases


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


def extract_base(ref: str, head: Path, into: Path) -> Path:
    """Write the pack as it was at git `ref` under `into`; `InputError` if that cannot be done.

    The pack's path inside the repository is the head folder's (or `policies/` when the head
    lives outside the repository); it is extracted under its own folder name, so reasons
    read `policies/cardiac.pss:14` as they do for the head.
    """
    where = head.resolve() if head.is_dir() else Path.cwd()
    top = _git(["rev-parse", "--show-toplevel"], where)
    if top.returncode != 0:
        raise InputError(f"base `{ref}` is not a folder, and `{where}` is not in a git repository")
    root = Path(top.stdout.decode().strip())
    try:
        inside = head.resolve().relative_to(root).as_posix()
    except ValueError:
        inside = "policies"
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).returncode != 0:
        raise InputError(f"base `{ref}` is neither a folder nor a git ref of this repository")
    archive = _git(["archive", "--format=tar", ref, "--", inside], root)
    if archive.returncode != 0:
        raise InputError(f"`{inside}/` does not exist at git ref `{ref}`")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / inside


def load_pack(folder: Path, role: str) -> PolicySet:
    """Load one side of the diff; a pack that fails `pss check` is an `InputError`."""
    from chalicelib import load_policy_set

    try:
        return load_policy_set(folder)
    except PolicyError as exc:
        raise InputError(f"{role} pack `{folder}` fails `pss check`: {exc}") from None


def text_report(tally: Tally, base_label: str, head_label: str, limit: int = 15) -> str:
    """The terminal report."""
    out = [
        f"{tally.cases:,} cases: {tally.changed:,} changed between {base_label} and {head_label}"
        f" (rejected: {tally.rejected_base:,} under base, {tally.rejected_head:,} under head)"
    ]
    for title, counter in (
        ("commissioner", tally.commissioner),
        ("service line", tally.service_line),
        ("eligibility", tally.eligibility),
    ):
        moved = sorted(
            ((c, o, n) for (o, n), c in counter.items() if o != n), key=lambda r: (-r[0], r[1:])
        )
        out.append(f"\n{title} (old → new):" + ("" if moved else " no change"))
        out.extend(f"  {o:>22} → {n:<22} {c:>9,}" for c, o, n in moved[:limit])
        if len(moved) > limit:
            out.append(f"  ... {len(moved) - limit} more")
    out.append(
        f"\nactivity shifted: NHS England → ICBs {tally.to_icb:,}; ICBs → NHS England "
        f"{tally.to_nhs_england:,}; net to ICBs {tally.to_icb - tally.to_nhs_england:+,}"
        + (
            f" ({(tally.to_icb - tally.to_nhs_england) / tally.cases:+.2%} of cases)"
            if tally.cases
            else ""
        )
    )
    if tally.top:
        out.append("\ntop changed cases:")
        for c in tally.ranked():
            out.append(
                f"  {c.case}: {c.old.commissioner}/{c.old.service_line}/{c.old.eligibility} → "
                f"{c.new.commissioner}/{c.new.service_line}/{c.new.eligibility}\n      {c.clause}"
            )
    return "\n".join(out)
