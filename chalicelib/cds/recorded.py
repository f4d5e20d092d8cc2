"""What the CDS adapter reads of a recorded decision, as read-only protocols.

The decision use case hands back its typed response model (`api.schemas.DecisionOut`); these
protocols name the part cards and extensions use, so `cds` reads typed attributes without
importing the API layer and without a round trip through dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class ServiceView(Protocol):
    """The identified service and service line."""

    @property
    def id(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def name(self) -> str: ...


class PolicyView(Protocol):
    """The policy version applied."""

    @property
    def id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def title(self) -> str: ...


class ReasonView(Protocol):
    """One clause a decision rests on."""

    @property
    def rule(self) -> str: ...
    @property
    def clause(self) -> str: ...
    @property
    def result(self) -> bool | None: ...
    @property
    def at(self) -> str: ...


class ProvenanceView(Protocol):
    """A pack item a decision rests on, and whether it is verified against a source."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def verified(self) -> bool: ...


class PolicySetView(Protocol):
    """The policy set that decided."""

    @property
    def version(self) -> str: ...


class RecordedDecision(Protocol):
    """A decision as recorded: its id and outcome (design section 4)."""

    @property
    def decision_id(self) -> str | None: ...
    @property
    def commissioner(self) -> str: ...
    @property
    def service(self) -> ServiceView | None: ...
    @property
    def policy(self) -> PolicyView | None: ...
    @property
    def eligibility(self) -> str: ...
    @property
    def route(self) -> str | None: ...
    @property
    def missing(self) -> Sequence[str]: ...
    @property
    def reasons(self) -> Sequence[ReasonView]: ...
    @property
    def provenance(self) -> Sequence[ProvenanceView]: ...
    @property
    def unverified(self) -> bool: ...
    @property
    def policy_set(self) -> PolicySetView: ...
    @property
    def evaluated_at(self) -> str: ...


# `decide(request, hook_instance)` records one decision (keeping the hookInstance on it) and
# returns it. It raises `RequestError` / `NotCoveredError` for requests the engine rejects;
# anything else (a store outage) propagates for the route to map.
Decide = Callable[[dict[str, Any], str], RecordedDecision]
# `fetch(fhir_server, bearer_token, relative_url)` returns a resource or Bundle, or None.
Fetch = Callable[[str, str, str], dict[str, Any] | None]
