"""What-if counting: what one case's outcome was under each pack, and what moved overall.

In: per case, the outcome under the base pack and under the head pack (and, for a changed
case, a way to name the clause that changed it). Out: a `Tally` — counts of (old → new)
commissioner, service line and eligibility, activity moved in and out of each service line,
the shift between NHS England and ICBs, and the top changed cases — mergeable across blocks
counted in worker processes, as JSON (`Tally.to_dict`) or text (`text_report`).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.engine.decision import Decision

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
