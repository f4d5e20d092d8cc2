"""The CDS Hooks 2.0 request and response, as pydantic models.

In: the JSON body an EHR POSTs to `/cds-services/{id}`. Out: the `{cards, systemActions}` body
we answer with. FHIR resources inside (`draftOrders`, `prefetch`, action resources) stay plain
dicts here: `chalicelib.cds.fhir` reads them, and round-tripping them through models would drop
elements we do not model. Unknown top-level members are kept (`extra="allow"`), because the
specification lets EHRs add extensions and we must not reject them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

SUMMARY_MAX = 140
Indicator = Literal["info", "warning", "critical"]


class FhirAuthorization(BaseModel):
    """The OAuth 2.0 bearer token the EHR grants for reading its FHIR server."""

    model_config = ConfigDict(extra="allow")

    access_token: StrictStr = Field(min_length=1)
    token_type: StrictStr = "Bearer"
    expires_in: StrictInt | None = None
    scope: StrictStr | None = None
    subject: StrictStr | None = None


class OrderContext(BaseModel):
    """The context of order-select and order-sign (order-select adds `selections`)."""

    model_config = ConfigDict(extra="allow")

    userId: StrictStr | None = None
    patientId: StrictStr = Field(min_length=1, max_length=64)
    encounterId: StrictStr | None = None
    # A FHIR Bundle, checked entry by entry in `fhir.py` so errors name the FHIR path.
    draftOrders: dict[str, Any]
    selections: list[StrictStr] | None = None


class HookRequest(BaseModel):
    """A CDS Hooks call: which hook fired, for which patient, with what data."""

    model_config = ConfigDict(extra="allow")

    hook: StrictStr
    hookInstance: StrictStr = Field(min_length=1, max_length=128)
    fhirServer: StrictStr | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: OrderContext
    # Values are FHIR resources or Bundles; null (or absent) when the EHR could not fill a key.
    prefetch: dict[str, dict[str, Any] | None] | None = None


class Coding(BaseModel):
    """A code in a code system (FHIR Coding), used for `Source.topic`."""

    system: str | None = None
    code: str
    display: str | None = None


class Source(BaseModel):
    """Who produced a card; `topic` lets EHRs group and count cards."""

    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Link(BaseModel):
    """A link shown on a card: `absolute` opens a page, `smart` launches a SMART app."""

    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None


class Action(BaseModel):
    """A change to FHIR data proposed by a suggestion or applied as a system action."""

    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(BaseModel):
    """A set of actions the clinician may accept."""

    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Card(BaseModel):
    """One card: a summary a clinician reads at a glance, detail in Markdown, links."""

    uuid: str | None = None
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    links: list[Link] | None = None


class HookResponse(BaseModel):
    """The answer to a hook call."""

    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON body, leaving out optional members we did not set."""
        return self.model_dump(mode="json", exclude_none=True)


class ServiceDescription(BaseModel):
    """One entry of the discovery document."""

    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str] = Field(default_factory=dict)
    usageRequirements: str | None = None


__all__ = [
    "SUMMARY_MAX",
    "Action",
    "Card",
    "Coding",
    "FhirAuthorization",
    "HookRequest",
    "HookResponse",
    "Indicator",
    "Link",
    "OrderContext",
    "ServiceDescription",
    "Source",
    "Suggestion",
]
