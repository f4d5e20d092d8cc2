"""The CDS Hooks 2.0 request, response and feedback bodies, as pydantic models.

Section numbers below are those of the CDS Hooks 2.0 specification (HL7/cds-hooks,
`input/pagecontent/index.md`): "Use of JSON", "Calling a CDS Service", "CDS Service Response",
"Card Attributes", "Source", "Suggestion", "Action", "Link", "System Action", "Feedback",
"Data Types / Coding", and the invariants `cds-resp-1..7`, `cds-fb-1..3`, `cds-r-1` of its
logical models (`input/fsh/invariants`).

In: the JSON an EHR POSTs to `/cds-services/{id}` (`HookRequest`) and to its `/feedback`
(`FeedbackRequest`). FHIR resources inside (`draftOrders`, `prefetch`, action resources) stay
plain dicts: `chalicelib.cds.orders` and friends read them, and round-tripping them through
models would drop elements we do not model. Unknown request members are kept
(`extra="allow"`): the specification's "Extensions" section lets EHRs add them.

Out: `HookResponse` and `ServiceDescription`. "Use of JSON" says optional attributes without
a value are omitted, never `null`, `""`, `[]` or `{}`: `CdsOut` drops them when serialising,
and its JSON schema shows no `null` for them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# "Card Attributes": `summary` is a "<140-character" message, so 139 at most.
SUMMARY_MAX = 139
Indicator = Literal["info", "warning", "critical"]
Outcome = Literal["accepted", "overridden"]
# RFC 3339 section 5.6 date-time, as "Feedback" asks of `outcomeTimestamp`.
_RFC3339 = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)


class _OmittedWhenNone:
    """In the JSON schema, an optional member is absent rather than null ("Use of JSON")."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if schema["type"] == "nullable":
            return handler(schema["schema"])
        return handler(schema)


T = TypeVar("T")
# An optional member: None in Python, left out of the JSON we send and of its schema.
Opt = Annotated[T | None, _OmittedWhenNone()]


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # An omitted member has no default value to document; `default: null` would say it may
    # be sent as null, which "Use of JSON" forbids.
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class CdsOut(BaseModel):
    """Base of every body we send: absent optional members are left out, not sent empty."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        # A required member stays even when empty: `cards: []` means "no guidance".
        return {k: v for k, v in data.items()
                if v is not None and (fields[k].is_required() or v not in ([], {}))}


def absolute_url(value: str) -> str:
    """Check `value` is an absolute http(s) URL ("Link": `absolute` URLs are used as-is)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


AbsoluteUrl = Annotated[str, AfterValidator(absolute_url)]


# --- the request ("Calling a CDS Service") ---


class FhirAuthorization(BaseModel):
    """The OAuth 2.0 bearer token the EHR grants for reading its FHIR server."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_null_defaults)

    access_token: StrictStr = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: StrictInt
    scope: StrictStr = Field(min_length=1)
    subject: StrictStr = Field(min_length=1)
    patient: Opt[StrictStr] = None


class OrderContext(BaseModel):
    """The context of order-select and order-sign (order-select adds `selections`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_null_defaults)

    userId: Opt[StrictStr] = None
    patientId: StrictStr = Field(min_length=1, max_length=64)
    encounterId: Opt[StrictStr] = None
    # A FHIR Bundle of orders, checked entry by entry so errors name the FHIR path.
    draftOrders: dict[str, Any]
    selections: Opt[list[StrictStr]] = None


class HookRequest(BaseModel):
    """A CDS Hooks call: which hook fired, for which patient, with what data."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_null_defaults)

    hook: StrictStr
    hookInstance: StrictStr = Field(min_length=1, max_length=128)
    fhirServer: Opt[StrictStr] = None
    fhirAuthorization: Opt[FhirAuthorization] = None
    context: OrderContext
    # Values are FHIR resources or Bundles. We also take null for a key the EHR could not
    # fill (CDS Hooks 1.0 did that), treating it like an absent key.
    prefetch: Opt[dict[str, Opt[dict[str, Any]]]] = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> HookRequest:
        # cds-r-1: "if fhirAuthorization details are provided, a fhirServer SHALL be specified"
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is given (cds-r-1)")
        return self


# --- the response ("CDS Service Response") ---


class Coding(CdsOut):
    """"Data Types / Coding": `code` and `system` required, `display` optional."""

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: Opt[str] = None


class DisplayedCoding(Coding):
    """A Coding with `display`, as override reasons need it (cds-resp-4)."""

    display: str = Field(min_length=1)


class Source(CdsOut):
    """"Source": who produced a card; `topic` lets EHRs group and count cards."""

    label: str = Field(min_length=1)
    url: Opt[AbsoluteUrl] = None
    icon: Opt[AbsoluteUrl] = None
    topic: Opt[Coding] = None


class Link(CdsOut):
    """"Link": `absolute` opens a page as-is, `smart` launches a SMART app."""

    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: Opt[Annotated[str, Field(min_length=1)]] = None

    @model_validator(mode="after")
    def _conformant(self) -> Link:
        if self.type == "absolute":
            absolute_url(self.url)
            if self.appContext is not None:  # cds-resp-3
                raise ValueError("appContext is only for `smart` links (cds-resp-3)")
        return self


class Action(CdsOut):
    """"Action" / "System Action": a change to FHIR data, proposed or auto-applied."""

    type: Literal["create", "update", "delete"]
    # Optional for system actions, required in suggestions (cds-resp-5); we always give one.
    description: str = Field(min_length=1)
    resource: Opt[dict[str, Any]] = None
    resourceId: Opt[Annotated[str, Field(min_length=1)]] = None


class Suggestion(CdsOut):
    """"Suggestion": a set of actions the clinician may accept."""

    label: str = Field(min_length=1)
    uuid: str = Field(min_length=1)  # optional in the spec; feedback needs it
    isRecommended: Opt[StrictBool] = None
    actions: Opt[Annotated[list[Action], Field(min_length=1)]] = None


class Card(CdsOut):
    """"Card Attributes": a summary read at a glance, Markdown detail, links, reasons to
    decline. `uuid` is optional in the spec; ours always has one, so feedback can find it."""

    uuid: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=SUMMARY_MAX)
    detail: Opt[Annotated[str, Field(min_length=1)]] = None
    indicator: Indicator
    source: Source
    suggestions: Opt[Annotated[list[Suggestion], Field(min_length=1)]] = None
    selectionBehavior: Opt[Literal["at-most-one", "any"]] = None
    overrideReasons: Opt[Annotated[list[DisplayedCoding], Field(min_length=1)]] = None
    links: Opt[Annotated[list[Link], Field(min_length=1)]] = None

    @model_validator(mode="after")
    def _selection(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:  # cds-resp-6
            raise ValueError("suggestions need a selectionBehavior (cds-resp-6)")
        if self.selectionBehavior is not None and not self.suggestions:
            raise ValueError("selectionBehavior without suggestions")
        recommended = sum(1 for s in self.suggestions or () if s.isRecommended)
        if self.selectionBehavior == "at-most-one" and recommended > 1:  # cds-resp-1
            raise ValueError("at-most-one allows one recommended suggestion (cds-resp-1)")
        return self


class HookResponse(CdsOut):
    """"HTTP Response": `cards` (required, may be empty) and optional `systemActions`."""

    cards: list[Card]
    systemActions: Opt[Annotated[list[Action], Field(min_length=1)]] = None


class ServiceDescription(CdsOut):
    """One entry of the discovery document ("Discovery / Response")."""

    hook: str = Field(min_length=1)
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    prefetch: Opt[dict[str, str]] = None
    usageRequirements: Opt[Annotated[str, Field(min_length=1)]] = None


class Discovery(CdsOut):
    """The body of `GET /cds-services`."""

    services: list[ServiceDescription]


# --- feedback ("Feedback") ---


class AcceptedSuggestion(BaseModel):
    """"AcceptedSuggestion": the `uuid` of a suggestion the user accepted."""

    model_config = ConfigDict(extra="allow")

    id: StrictStr = Field(min_length=1)


class OverrideReasonIn(BaseModel):
    """"OverrideReason": the reason picked from the card's list, and/or a comment."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_null_defaults)

    reason: Opt[Coding] = None
    userComment: Opt[Annotated[StrictStr, Field(max_length=2000)]] = None

    @model_validator(mode="after")
    def _something(self) -> OverrideReasonIn:
        if self.reason is None and not self.userComment:  # cds-fb-3
            raise ValueError("an overrideReason needs a reason, a userComment or both (cds-fb-3)")
        return self


class FeedbackEntry(BaseModel):
    """One "Feedback" entry: which card, what the user did, why, and when."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_null_defaults)

    card: StrictStr = Field(min_length=1, max_length=64)
    outcome: Outcome  # cds-fb-1
    acceptedSuggestions: Opt[Annotated[list[AcceptedSuggestion], Field(min_length=1)]] = None
    overrideReason: Opt[OverrideReasonIn] = None
    outcomeTimestamp: StrictStr = Field(
        description="RFC 3339 date-time in UTC, e.g. 2021-12-11T10:05:31Z")

    @field_validator("outcomeTimestamp")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        if not _RFC3339.match(value):
            raise ValueError("must be an RFC 3339 date-time, e.g. 2021-12-11T10:05:31Z")
        try:
            dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("is not a real date and time") from None
        return value

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> FeedbackEntry:
        if self.outcome == "accepted" and not self.acceptedSuggestions:  # cds-fb-2
            raise ValueError("an `accepted` outcome needs acceptedSuggestions (cds-fb-2)")
        return self


class FeedbackRequest(BaseModel):
    """The body of `POST /cds-services/{id}/feedback`."""

    model_config = ConfigDict(extra="allow")

    feedback: list[FeedbackEntry] = Field(min_length=1, max_length=100)


class FeedbackResult(CdsOut):
    """What became of one feedback entry: 200 recorded against a decision, or 404."""

    card: str
    status: Literal[200, 404]
    decision_id: Opt[str] = None
    problem: Opt[str] = None


class FeedbackAnswer(CdsOut):
    """The answer to a feedback POST: one result per entry, in order."""

    results: list[FeedbackResult]


__all__ = [
    "SUMMARY_MAX",
    "AcceptedSuggestion",
    "Action",
    "Card",
    "CdsOut",
    "Coding",
    "Discovery",
    "DisplayedCoding",
    "FeedbackAnswer",
    "FeedbackEntry",
    "FeedbackRequest",
    "FeedbackResult",
    "FhirAuthorization",
    "HookRequest",
    "HookResponse",
    "Indicator",
    "Link",
    "OrderContext",
    "OverrideReasonIn",
    "ServiceDescription",
    "Source",
    "Suggestion",
    "absolute_url",
]
