"""Pydantic models of every request and response of the HTTP API (design section 4).

In: JSON data. Out: validated models; `api.openapi` turns them into the OpenAPI document, so
the document and the code cannot drift. The decision request itself is the engine's
`DecisionRequest` (it also checks the pack's vocabulary); the models here add only what the
HTTP API adds: ids, versions, listings, errors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from chalicelib.decisions.store import FeedbackRecord
from chalicelib.dsl.outcomes import Commissioner, Eligibility
from chalicelib.engine.fields import MAX_CODES
from chalicelib.engine.request import DecisionRequest

ProvenanceKind = Literal["rule", "service", "line", "commissioner", "policy"]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr | None


class ErrorDetail(BaseModel):
    """One bad field: its JSON path (e.g. `patient.nhs_number`) and what is wrong."""

    field: str
    problem: str


class ErrorInfo(BaseModel):
    """A stable machine code, a message for people, and the bad fields."""

    code: str = Field(examples=["invalid_request"])
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


class PolicySetRef(BaseModel):
    """The policy set that made a decision."""

    version: str
    digest: str = Field(pattern=r"^sha256:")


class ServiceOut(BaseModel):
    """The identified prescribed service and service line."""

    id: str
    line: str
    name: str
    programme: str | None
    highly_specialised: bool


class PolicyRef(BaseModel):
    """The clinical commissioning policy version applied."""

    id: str
    version: int
    title: str


class ReasonOut(BaseModel):
    """One clause the decision rests on, its three-valued result and its source line."""

    rule: str
    clause: str
    result: bool | None
    at: str


class ProvenanceOut(BaseModel):
    """A pack item a decision rests on, the public sources it cites, and whether it is verified."""

    kind: ProvenanceKind
    id: str
    source: list[str] = Field(description="public web addresses the item rests on")
    verified: bool = Field(description="false when the item has no source or is marked unverified")
    # A default, not required: decisions recorded before the field existed read back too.
    unverified_reasons: list[str] = Field(
        default_factory=list,
        description="why the pack marks the item unverified, in its own words (empty when "
                    "nothing marks it so; always present in new answers)")


class DecisionOut(BaseModel):
    """A decision. Dry runs have `decision_id` and `version` null and `recorded` false."""

    decision_id: str | None = Field(description="ULID; null for a dry run")
    version: int | None = Field(ge=1, description="1 for a new decision; null for a dry run")
    recorded: bool = Field(description="true only once the decision store confirmed the write")
    policy_set: PolicySetRef
    commissioner: Commissioner
    service: ServiceOut | None
    policy: PolicyRef | None
    eligibility: Eligibility
    route: str | None
    missing: list[str]
    reasons: list[ReasonOut]
    provenance: list[ProvenanceOut] = Field(
        description="the identification rule, service, line, commissioner entry and policy "
        "version the answer rests on")
    unverified: bool = Field(description="true when any item in `provenance` is unverified")
    evaluated_at: str = Field(description="UTC, e.g. 2025-06-01T10:00:00Z",
                              pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class FeedbackOut(BaseModel):
    """CDS Hooks feedback an EHR sent about a card of this decision (CDS Hooks 2.0 Feedback)."""

    card: str = Field(description="the card's uuid")
    service: str = Field(description="the CDS service that issued the card")
    outcome: Literal["accepted", "overridden"]
    override_reason: dict[str, Any] | None = Field(
        description="the entry's overrideReason as sent: `reason` (a Coding) and/or "
                    "`userComment`; null when none was given")
    accepted_suggestions: list[str]
    outcome_timestamp: str = Field(description="when the user acted, as the EHR sent it")
    received_at: str = Field(description="when we recorded it, UTC")

    @classmethod
    def of(cls, record: FeedbackRecord) -> FeedbackOut:
        """The response form of a stored feedback entry."""
        reason = record.override_reason
        return cls.model_validate({
            "card": record.card_uuid, "service": record.service_id, "outcome": record.outcome,
            "override_reason": dict(reason) if reason is not None else None,
            "accepted_suggestions": list(record.accepted_suggestions),
            "outcome_timestamp": record.outcome_timestamp, "received_at": record.received_at})


class DecisionRecordOut(DecisionOut):
    """The latest version of a decision, with the feedback EHRs sent about its cards."""

    feedback: list[FeedbackOut]


class DecisionVersionsOut(BaseModel):
    """Every version of a decision, oldest first."""

    decision_id: str
    versions: list[DecisionOut]


class RedecideRequest(BaseModel):
    """The body of `POST /v1/decisions/{id}/versions`: facts and attestations to add.

    Facts given here replace earlier values of the same name (null removes one); an empty
    body re-decides the same inputs under the current policy set.
    """

    model_config = ConfigDict(extra="forbid")

    facts: dict[str, Scalar] = Field(default_factory=dict)
    attestations: list[StrictStr] = Field(default_factory=list, max_length=MAX_CODES)


class FactorOut(BaseModel):
    """One factor of the four-factor assessment."""

    name: str
    title: str
    clause: str
    value: Scalar
    threshold: str
    met: bool | None
    at: str


class AssessmentOut(BaseModel):
    """The four-factor assessment: its conclusions (e.g. `prescribed`) and each factor."""

    model_config = ConfigDict(extra="allow")

    assessment: str
    prescribed: bool | None = None
    highly_specialised: bool | None = None
    factors: list[FactorOut]
    missing: list[str]


class OutcomeOut(BaseModel):
    """What a policy answers when its criteria are met, or not met."""

    eligibility: Eligibility
    route: str | None


class PolicyOut(BaseModel):
    """One version of a clinical commissioning policy."""

    id: str
    version: int
    title: str
    effective_from: dt.date | None
    effective_to: dt.date | None
    governs: list[str] | None = Field(description="service lines; null means every line")
    when_met: OutcomeOut
    when_not_met: OutcomeOut


class PolicyListOut(BaseModel):
    """Every policy version in the policy set."""

    policies: list[PolicyOut]


class PolicyVersionsOut(BaseModel):
    """Every version of one policy, oldest first."""

    id: str
    versions: list[PolicyOut]


class FactOut(BaseModel):
    """A fact a request may carry in `facts`: its type, allowed values, unit and meaning."""

    name: str
    type: str
    values: list[str] = Field(default_factory=list, description="for enum facts")
    unit: str | None = None
    description: str


class AttestationOut(BaseModel):
    """A statement a clinician attests by listing it in `attestations`."""

    name: str
    description: str


class ServiceEntryOut(BaseModel):
    """A prescribed specialised service of the registry, whether or not a rule reaches it yet."""

    id: str = Field(description="the statutory number, e.g. `69`, or a lettered one, `2A`")
    name: str
    lines: list[str]
    programme: str | None
    portfolio: str | None
    highly_specialised: bool
    source: list[str] = Field(description="public web addresses the entry rests on")
    verified: bool


class PolicySetOut(BaseModel):
    """The policy set this deployment decides with, and the vocabulary requests may use."""

    name: str
    version: str
    digest: str
    covers_from: dt.date
    facts: list[FactOut] = Field(default_factory=list)
    attestations: list[AttestationOut] = Field(default_factory=list)
    services: list[ServiceEntryOut] = Field(default_factory=list)


class HealthOut(BaseModel):
    """Liveness: the process is up and its policy set compiled."""

    status: Literal["ok"]
    stage: str
    policy_set: PolicySetRef


class AssessRequest(BaseModel):
    """The inputs of the four-factor assessment (`policies/four_factors.pss`); any left out
    is unknown, and the answer says which."""

    model_config = ConfigDict(extra="forbid")

    patients_nationally: int | None = Field(default=None, description="individuals in England "
                                            "needing the service each year")
    cost_per_patient_gbp: float | None = Field(default=None, description="annual cost per "
                                               "patient, GBP")
    providers_able: int | None = Field(default=None, description="providers able to deliver it")
    financial_risk_to_icb: Literal["low", "medium", "high"] | None = Field(
        default=None, description="financial risk of the service to one ICB")


__all__ = [
    "AssessRequest",
    "AssessmentOut",
    "DecisionOut",
    "DecisionRequest",
    "DecisionVersionsOut",
    "ErrorBody",
    "HealthOut",
    "PolicyListOut",
    "PolicyOut",
    "PolicySetOut",
    "PolicyVersionsOut",
    "RedecideRequest",
]


class OpenApiDocument(RootModel[dict[str, Any]]):
    """The OpenAPI document itself, as JSON data."""
