"""Decisions: what the engine answers, frozen, and its JSON form (design section 4).

`Decision.to_dict()` is the response body minus `decision_id`, `version` and `recorded`, which
only the decision store can give.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chalicelib.dsl.kleene import Tri
from chalicelib.dsl.outcomes import Commissioner, Eligibility


def utc_seconds(moment: dt.datetime) -> str:
    """`2025-06-01T10:00:00Z` for a moment, formatting each second once.

    Formatting a time costs more than building a reason; decisions made in the same second
    share the text. `_last_second` holds one (second, text) pair, replaced atomically.
    """
    global _last_second
    second = moment.timestamp() // 1
    last = _last_second
    if last[0] == second:
        return last[1]
    text = moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_second = (second, text)
    return text


_last_second: tuple[float, str] = (-1.0, "")


class Reason(tuple[Any, ...]):
    """One reason of a decision: the pair (`ClauseSource`, result), read as a pair, and
    `json`, its entry in the response's `reasons` (shared: copied before it is handed out).

    Each source builds its three reasons once (`ClauseSource.reasons`), so a decision lists
    existing reasons and its response copies ready-made entries: no reason is built field by
    field per decision.
    """

    json: dict[str, Any]

    @property
    def source(self) -> ClauseSource:
        """Where the reason comes from."""
        source: ClauseSource = self[0]
        return source

    @property
    def result(self) -> Tri:
        """The clause's value: True, False, or None for unknown."""
        result: Tri = self[1]
        return result


@dataclass(frozen=True)
class ClauseSource:
    """Where a reason comes from: the rule or policy, the clause text, and `file:line`.

    `reasons` holds, for each result (True, False, None), the `Reason` a decision lists.
    """

    rule: str
    clause: str
    at: str
    reasons: dict[Tri, Reason] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        reasons = {}
        for result in (True, False, None):
            reason = reasons[result] = Reason((self, result))
            reason.json = {"rule": self.rule, "clause": self.clause, "result": result,
                           "at": self.at}
        object.__setattr__(self, "reasons", reasons)

    def reason(self, result: Tri) -> Reason:
        """The reason this clause gives when its value is `result`."""
        return self.reasons[result]


@dataclass(frozen=True)
class ServiceInfo:
    """The identified service and service line."""

    id: str
    line: str
    name: str
    programme: str | None
    highly_specialised: bool

    json: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "json", {
            "id": self.id, "line": self.line, "name": self.name, "programme": self.programme,
            "highly_specialised": self.highly_specialised})

    def to_dict(self) -> dict[str, Any]:
        """Return the `service` object of the response (a fresh copy of one built once)."""
        return self.json.copy()


@dataclass(frozen=True)
class PolicyInfo:
    """The clinical commissioning policy (version) applied."""

    id: str
    version: int
    title: str

    json: dict[str, Any] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "json", {"id": self.id, "version": self.version,
                                          "title": self.title})

    def to_dict(self) -> dict[str, Any]:
        """Return the `policy` object of the response (a fresh copy of one built once)."""
        return self.json.copy()


@dataclass(frozen=True)
class ProvenanceItem:
    """A pack item an answer rests on: its kind, id, public sources, whether it is verified,
    and why the pack doubts it.

    `kind` is rule, service, line, commissioner or policy; verified means the item cites a
    source and nothing in the pack marks it unverified (see `dsl.provenance`). `unverified`
    holds the pack's own `unverified "..."` reasons, so that a clinical safety officer reading
    one decision sees why it rests on a guess without opening the pack.
    """

    kind: str
    id: str
    source: tuple[str, ...]
    verified: bool
    unverified: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return one entry of the response's `provenance` list."""
        return {"kind": self.kind, "id": self.id, "source": [*self.source],
                "verified": self.verified, "unverified_reasons": [*self.unverified]}


class Decision(NamedTuple):
    """One answer: commissioner, service, policy, eligibility, and every reason.

    Immutable like the frozen dataclasses elsewhere, but a `NamedTuple` (as `Activity`): one
    is built for every decision, and a tuple of eleven fields is built in a quarter of the
    time a frozen dataclass takes, while its fields read as fast.
    """

    policy_set_version: str
    policy_set_digest: str
    commissioner: Commissioner
    service: ServiceInfo | None
    policy: PolicyInfo | None
    eligibility: Eligibility
    route: str | None
    missing: tuple[str, ...]
    reasons: tuple[Reason, ...]
    evaluated_at: dt.datetime
    # The items the answer rests on, in the order the decision used them.
    provenance: tuple[ProvenanceItem, ...] = ()

    @property
    def unverified(self) -> bool:
        """True when any item the answer rests on is unverified."""
        return not all(map(_VERIFIED, self.provenance))

    def reason_dicts(self) -> list[dict[str, Any]]:
        """Return the reasons as the response lists them."""
        return list(map(dict.copy, map(_JSON, self.reasons)))

    def to_dict(self) -> dict[str, Any]:
        """Return the response JSON of design section 4, minus id, version and recorded."""
        service, policy, provenance = self.service, self.policy, self.provenance
        # `_value_` is the member's value (`value` reads the same through a slower property).
        return {
            "policy_set": {"version": self.policy_set_version, "digest": self.policy_set_digest},
            "commissioner": self.commissioner._value_,
            "service": service.to_dict() if service else None,
            "policy": policy.to_dict() if policy else None,
            "eligibility": self.eligibility._value_,
            "route": self.route,
            "missing": [*self.missing],
            "reasons": list(map(dict.copy, map(_JSON, self.reasons))),
            "provenance": list(map(ProvenanceItem.to_dict, provenance)),
            "unverified": not all(map(_VERIFIED, provenance)),
            "evaluated_at": utc_seconds(self.evaluated_at),
        }


_JSON = operator.attrgetter("json")  # a reason's shared response entry
_VERIFIED = operator.attrgetter("verified")


@dataclass(frozen=True)
class FactorResult:
    """One factor of an assessment: its value, threshold and whether it was met."""

    name: str
    title: str
    clause: str
    value: Any
    threshold: str
    met: Tri
    at: str


@dataclass(frozen=True)
class Assessment:
    """The result of an assessment such as the four factors."""

    name: str
    conclusions: dict[str, Tri]
    factors: tuple[FactorResult, ...]
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: conclusions, then each factor."""
        return {
            "assessment": self.name,
            **self.conclusions,
            "factors": [
                {
                    "name": f.name,
                    "title": f.title,
                    "clause": f.clause,
                    "value": f.value,
                    "threshold": f.threshold,
                    "met": f.met,
                    "at": f.at,
                }
                for f in self.factors
            ],
            "missing": list(self.missing),
        }
