"""The OpenAPI 3.1 document, generated from the pydantic models of `api.schemas` and
`cds.models`.

In: the table of operations below (method, path, tag, request model, responses), the OAuth
scopes of each route (`chalicelib.api.scopes`) and the public base URL (the `servers`
entry). Out: the document served at `GET /openapi.json`. `app.py` registers exactly these
operations; a test checks the two lists agree, so neither can gain a route the other lacks,
and `make test` checks the document with openapi-spec-validator. Each route's scopes are
defined once, in `chalicelib.api.scopes`, which `app.py` enforces and this document declares.

CDS Hooks bodies (`cds.models.CdsOut`) are documented by their validation schema: they drop
absent optional members when serialised, so that schema (no `null` anywhere) is what is sent.

Every response of every operation declares `X-Request-Id` (`api.http.Endpoint` sets it on each
answer, the local authorizer on its 401/403, and the deployed gateway's own responses map it
from API Gateway's request id), and every operation declares the 500 whose body names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.auth import API_KEY_HEADER
from chalicelib.api.http import REQUEST_ID_HEADER
from chalicelib.api.schemas import (
    AssessmentOut,
    AssessRequest,
    DecisionOut,
    DecisionRecordOut,
    DecisionRequest,
    DecisionVersionsOut,
    ErrorBody,
    HealthOut,
    PolicyListOut,
    PolicySetOut,
    PolicyVersionsOut,
    RedecideRequest,
)
from chalicelib.api.scopes import scopes_for
from chalicelib.api.whatif import WhatIfOut, WhatIfRequest
from chalicelib.cds.models import (
    CdsOut,
    Discovery,
    FeedbackAnswer,
    FeedbackRequest,
    HookRequest,
    HookResponse,
)

Response = tuple[str, type[BaseModel] | None]

_ERRORS: Mapping[int, str] = {
    400: "malformed or invalid request; `details` names each bad field",
    401: "missing or invalid API key",
    404: "no such decision, version, policy, CDS service or card",
    405: "method not allowed on this path",
    409: "Idempotency-Key reused with another body, or too many concurrent re-decisions",
    413: "body over 256 KiB",
    422: "valid request that no policy set covers (dated before the pack)",
    403: "these credentials lack the scope this route needs (`insufficient_scope`; "
         "`details` names it)",
    503: "the decision store or the policy set is unavailable; see Retry-After",
    500: f"unexpected error: its message and the {REQUEST_ID_HEADER} header name the request "
         "(quote it when reporting)",
}
_REQUEST_ID_REF = {"$ref": f"#/components/headers/{REQUEST_ID_HEADER}"}
_HEADERS: Mapping[str, Any] = {
    REQUEST_ID_HEADER: {"description": "this request's id, on every answer (the same id is in "
                                       "the access log line and in a 500's message)",
                        "required": True, "schema": {"type": "string", "minLength": 1}},
}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it answers."""

    method: Literal["GET", "POST"]
    path: str
    operation_id: str
    tag: str
    summary: str
    description: str
    responses: Mapping[int, Response]
    errors: tuple[int, ...] = ()
    request: type[BaseModel] | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    authenticated: bool = True
    headers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def scopes(self) -> frozenset[str]:
        """Any one of these lets a caller in (empty for the public operations)."""
        return scopes_for(self.method, self.path)


def _path(name: str, description: str, pattern: str | None = None) -> Mapping[str, Any]:
    schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


_DECISION_ID = _path("decision_id", "the decision's ULID")
_READ = (401, 403, 404, 503)

TAGS = (
    ("decisions", "Decide referrals and read recorded decisions (design section 4)"),
    ("policies", "The policy set in use: policies, vocabulary, service registry"),
    ("services", "Whether a service is prescribed: the four-factor assessment"),
    ("what-if", "Impact of policy changes before publishing them"),
    ("cds-hooks", "CDS Hooks 2.0 services for EPRs: discovery, calls and feedback"),
    ("operations", "Liveness and this document"),
)
_SERVICE_ID = _path("service_id", "pss-order-select or pss-order-sign",
                    "^pss-order-(select|sign)$")

OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/v1/decisions", "createDecision", "decisions",
              "Decide a referral: commissioner, service, policy, eligibility, reasons",
              "Evaluates the referral against the policy set in force on its `date` and "
              "records the answer as version 1 of a new decision, unless `dry_run=true`.",
              {201: ("decision recorded as version 1", DecisionOut),
               200: ("dry run (not recorded), or an idempotent replay of the original",
                     DecisionOut)},
              (400, 401, 403, 409, 413, 422, 503), DecisionRequest,
              ({"name": "dry_run", "in": "query", "required": False,
                "description": "`true` evaluates without recording (no table needed)",
                "schema": {"type": "string", "enum": ["true", "false"]}},
               {"name": "Idempotency-Key", "in": "header", "required": False,
                "description": "replays of the same key and body return the original "
                               "decision for 48 h; scoped by client",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}}),
              headers={201: ("Location",), 503: ("Retry-After",)}),
    Operation("GET", "/v1/decisions/{decision_id}", "getDecision", "decisions",
              "The latest version of a decision",
              "The latest version, with the CDS Hooks feedback EHRs sent about its cards.",
              {200: ("the latest version", DecisionRecordOut)},
              _READ, parameters=(_DECISION_ID,)),
    Operation("GET", "/v1/decisions/{decision_id}/versions", "listDecisionVersions",
              "decisions", "Every version of a decision, oldest first",
              "Each version is immutable; a re-decision adds one.",
              {200: ("every version", DecisionVersionsOut)}, _READ, parameters=(_DECISION_ID,)),
    Operation("POST", "/v1/decisions/{decision_id}/versions", "redecide", "decisions",
              "Re-decide with added facts/attestations or under the current policy set",
              "Decides the latest version's inputs plus the facts and attestations given, "
              "under the policy set in use now, and records the answer as the next version.",
              {201: ("the new immutable version", DecisionOut)},
              (400, 401, 403, 404, 409, 413, 422, 503), RedecideRequest, (_DECISION_ID,),
              headers={503: ("Retry-After",)}),
    Operation("GET", "/v1/decisions/{decision_id}/versions/{version}", "getDecisionVersion",
              "decisions", "One version of a decision", "Version `n` exactly as recorded.",
              {200: ("the version", DecisionOut)}, (400, *_READ),
              parameters=(_DECISION_ID, _path("version", "1, 2, ...", "^[1-9][0-9]{0,5}$"))),
    Operation("POST", "/v1/services/assess", "assessService", "services",
              "Four-factor assessment: prescribed? highly specialised? with each factor",
              "Applies the pack's four-factor assessment to the figures given.",
              {200: ("the assessment", AssessmentOut)}, (400, 401, 403, 404, 413, 503),
              AssessRequest),
    Operation("GET", "/v1/policies", "listPolicies", "policies",
              "Every policy version in the policy set",
              "Each clinical commissioning policy version with its outcomes.",
              {200: ("the policies", PolicyListOut)}, (401, 403, 503)),
    Operation("GET", "/v1/policies/{policy_id}", "getPolicy", "policies",
              "Every version of one policy",
              "URL-encode `/` in the policy id as %2F.",
              {200: ("the policy's versions", PolicyVersionsOut)}, _READ,
              parameters=(_path("policy_id", "e.g. 16004%2FP (the national pack's renal "
                                             "denervation policy)"),)),
    Operation("GET", "/v1/policy-set", "getPolicySet", "policies", "The policy set in use",
              "Its version and digest, fact and attestation vocabulary and service registry.",
              {200: ("the policy set", PolicySetOut)}, (401, 403, 503)),
    Operation("GET", "/v1/health", "health", "operations",
              "Liveness and the policy set version", "No credentials needed.",
              {200: ("healthy", HealthOut)}, (503,), authenticated=False),
    Operation("GET", "/openapi.json", "openapi", "operations", "This document",
              "The OpenAPI 3.1 description of every operation; no credentials needed.",
              {200: ("the OpenAPI document", None)}, authenticated=False),
    Operation("POST", "/v1/what-if", "whatIf", "what-if",
              "Decide cases under the served pack and under it with some files changed",
              "Never changes the served pack; reports what moved between the two.",
              {200: ("what moved between the two packs", WhatIfOut)},
              (400, 401, 403, 413, 503), WhatIfRequest),
    Operation("GET", "/cds-services", "cdsDiscovery", "cds-hooks",
              "CDS Hooks discovery: the order-select and order-sign services",
              "The discovery document of CDS Hooks 2.0, with each service's prefetch "
              "templates; public, as the specification expects.",
              {200: ("the services", Discovery)}, authenticated=False),
    Operation("POST", "/cds-services/{service_id}", "cdsCall", "cds-hooks",
              "A CDS Hooks call: one card per draft order, decisions recorded",
              "Each coded order is decided and recorded with the call's hookInstance; its "
              "card links to the decision and a system action adds Da Vinci CRD "
              "coverage-information and our commissioning extension to the order.",
              {200: ("cards and system actions", HookResponse)},
              (400, 401, 403, 404, 413, 503), HookRequest, (_SERVICE_ID,),
              headers={503: ("Retry-After",)}),
    Operation("POST", "/cds-services/{service_id}/feedback", "cdsFeedback", "cds-hooks",
              "CDS Hooks feedback: what the clinician did with each card",
              "Each entry is recorded against the decision its card came from (outcome, "
              "override reason, timestamp) and shown by getDecision. An entry naming a card "
              "this service did not issue to the caller is 404 in its result; the whole "
              "request is 404 when no entry was recorded.",
              {200: ("one result per entry, in order", FeedbackAnswer)},
              (400, 401, 403, 404, 413, 503), FeedbackRequest, (_SERVICE_ID,),
              headers={503: ("Retry-After",)}),
)
_BY_ROUTE: Mapping[tuple[str, str], Operation] = {(op.method, op.path): op for op in OPERATIONS}


def operation_for(method: str, path: str) -> Operation | None:
    """The operation of a route (`path` as registered, e.g. `/v1/decisions/{decision_id}`);
    None for a method the path does not serve (the 405 routes)."""
    return _BY_ROUTE.get((method.upper(), path))


@cache
def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI document for the API served at `base_url` (built once per process)."""
    models = _models()
    keyed, definitions = models_json_schema([(m, _mode(m, inbound)) for m, inbound in models],
                                            ref_template="#/components/schemas/{model}")
    refs = {(m, mode): schema for (m, mode), schema in keyed.items()}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "PSS rules", "version": "1.0.0",
                 "description": "Rules and eligibility for NHS England specialised "
                                "commissioning: who commissions an activity, which policy "
                                "applies, and is the patient eligible."},
        "servers": [{"url": base_url, "description": "this deployment (PSS_PUBLIC_BASE_URL)"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "headers": dict(_HEADERS),
                       "securitySchemes": {
                           # dev stage only; prod takes OAuth 2.0 bearer JWTs (and CDS Hooks
                           # calls a JWT signed by the EHR, in every stage).
                           "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
                           "bearer": {"type": "http", "scheme": "bearer",
                                      "bearerFormat": "JWT"}}},
    }


def _models() -> list[tuple[type[BaseModel], bool]]:
    seen: list[tuple[type[BaseModel], bool]] = [(ErrorBody, False)]
    for op in OPERATIONS:
        if op.request is not None:
            seen.append((op.request, True))
        seen.extend((model, False) for _, model in op.responses.values() if model is not None)
    return list(dict.fromkeys(seen))


def _mode(model: type[BaseModel], inbound: bool) -> Literal["validation", "serialization"]:
    return "validation" if inbound or issubclass(model, CdsOut) else "serialization"


def _operation(op: Operation, refs: Mapping[Any, Any]) -> dict[str, Any]:
    def content(model: type[BaseModel] | None, inbound: bool) -> dict[str, Any]:
        if model is None:
            return {"application/json": {"schema": {"type": "object"}}}
        return {"application/json": {"schema": refs[(model, _mode(model, inbound))]}}

    responses: dict[str, Any] = {}
    for status, (text, model) in op.responses.items():
        responses[str(status)] = {"description": text, "content": content(model, False)}
    for status in (*op.errors, 500):
        responses[str(status)] = {"description": _ERRORS[status],
                                  "content": content(ErrorBody, False)}
    for code, response in responses.items():
        # A 403 is `insufficient_scope`, signalled as RFC 6750 does (`api.http.requires`).
        names = (*op.headers.get(int(code), ()), *(("WWW-Authenticate",) if code == "403" else ()))
        response["headers"] = {REQUEST_ID_HEADER: dict(_REQUEST_ID_REF),
                               **{n: {"schema": {"type": "string"}} for n in names}}
    out: dict[str, Any] = {"operationId": op.operation_id, "tags": [op.tag],
                           "summary": op.summary, "description": op.description,
                           "parameters": list(op.parameters), "responses": responses,
                           "security": _security(op)}
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": content(op.request, True)}
    return out


def _security(op: Operation) -> list[dict[str, list[str]]]:
    """An API key (dev), or a bearer token holding any one of the operation's scopes (each
    alternative is one requirement, since the scopes in one requirement are all needed)."""
    if not op.authenticated:
        return []
    return [{"apiKey": []}, *({"bearer": [scope]} for scope in sorted(op.scopes))]
