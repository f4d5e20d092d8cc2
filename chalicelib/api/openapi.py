"""The OpenAPI 3.1 document, generated from the pydantic models of `api.schemas`.

In: the table of operations below (method, path, request model, responses). Out: the document
served at `GET /openapi.json`. `app.py` registers exactly these operations; a test checks the
two lists agree, so neither can gain a route the other lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api.auth import API_KEY_HEADER
from chalicelib.api.hooks import DiscoveryOut
from chalicelib.api.schemas import (
    AssessmentOut,
    AssessRequest,
    DecisionOut,
    DecisionRequest,
    DecisionVersionsOut,
    ErrorBody,
    HealthOut,
    PolicyListOut,
    PolicySetOut,
    PolicyVersionsOut,
    RedecideRequest,
)
from chalicelib.api.whatif import WhatIfOut, WhatIfRequest
from chalicelib.cds.models import HookRequest, HookResponse

Response = tuple[str, type[BaseModel] | None]

_ERRORS: Mapping[int, str] = {
    400: "malformed or invalid request; `details` names each bad field",
    401: "missing or invalid API key",
    404: "no such decision, version or policy",
    405: "method not allowed on this path",
    409: "Idempotency-Key reused with another body, or too many concurrent re-decisions",
    413: "body over 256 KiB",
    422: "valid request that no policy set covers (dated before the pack)",
    503: "the decision store or the policy set is unavailable; see Retry-After",
}


@dataclass(frozen=True)
class Operation:
    """One route: what it takes and what it answers."""

    method: Literal["GET", "POST"]
    path: str
    operation_id: str
    summary: str
    responses: Mapping[int, Response]
    errors: tuple[int, ...] = ()
    request: type[BaseModel] | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    authenticated: bool = True
    headers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


def _path(name: str, description: str, pattern: str | None = None) -> Mapping[str, Any]:
    schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


_DECISION_ID = _path("decision_id", "the decision's ULID")
_READ = (401, 404, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/v1/decisions", "createDecision",
              "Decide a referral: commissioner, service, policy, eligibility, reasons",
              {201: ("decision recorded as version 1", DecisionOut),
               200: ("dry run (not recorded), or an idempotent replay of the original",
                     DecisionOut)},
              (400, 401, 409, 413, 422, 503), DecisionRequest,
              ({"name": "dry_run", "in": "query", "required": False,
                "description": "`true` evaluates without recording (no table needed)",
                "schema": {"type": "string", "enum": ["true", "false"]}},
               {"name": "Idempotency-Key", "in": "header", "required": False,
                "description": "replays of the same key and body return the original "
                               "decision for 48 h; scoped by client",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}}),
              headers={201: ("Location",), 503: ("Retry-After",)}),
    Operation("GET", "/v1/decisions/{decision_id}", "getDecision",
              "The latest version of a decision", {200: ("the latest version", DecisionOut)},
              _READ, parameters=(_DECISION_ID,)),
    Operation("GET", "/v1/decisions/{decision_id}/versions", "listDecisionVersions",
              "Every version of a decision, oldest first",
              {200: ("every version", DecisionVersionsOut)}, _READ, parameters=(_DECISION_ID,)),
    Operation("POST", "/v1/decisions/{decision_id}/versions", "redecide",
              "Re-decide with added facts/attestations or under the current policy set",
              {201: ("the new immutable version", DecisionOut)},
              (400, 401, 404, 409, 413, 422, 503), RedecideRequest, (_DECISION_ID,),
              headers={503: ("Retry-After",)}),
    Operation("GET", "/v1/decisions/{decision_id}/versions/{version}", "getDecisionVersion",
              "One version of a decision", {200: ("the version", DecisionOut)},
              (400, *_READ),
              parameters=(_DECISION_ID, _path("version", "1, 2, ...", "^[1-9][0-9]{0,5}$"))),
    Operation("POST", "/v1/services/assess", "assessService",
              "Four-factor assessment: prescribed? highly specialised? with each factor",
              {200: ("the assessment", AssessmentOut)}, (400, 401, 404, 413, 503),
              AssessRequest),
    Operation("GET", "/v1/policies", "listPolicies", "Every policy version in the policy set",
              {200: ("the policies", PolicyListOut)}, (401, 503)),
    Operation("GET", "/v1/policies/{policy_id}", "getPolicy",
              "Every version of one policy (URL-encode `/` in the id as %2F)",
              {200: ("the policy's versions", PolicyVersionsOut)}, _READ,
              parameters=(_path("policy_id", "e.g. NHSCB%2FA09%2FP%2Fa"),)),
    Operation("GET", "/v1/policy-set", "getPolicySet", "The policy set in use",
              {200: ("the policy set", PolicySetOut)}, (401, 503)),
    Operation("GET", "/v1/health", "health", "Liveness and the policy set version",
              {200: ("healthy", HealthOut)}, (503,), authenticated=False),
    Operation("GET", "/openapi.json", "openapi", "This document",
              {200: ("the OpenAPI document", None)}, authenticated=False),
    Operation("POST", "/v1/what-if", "whatIf",
              "Decide cases under the served pack and under it with some files changed",
              {200: ("what moved between the two packs", WhatIfOut)}, (400, 401, 413, 503),
              WhatIfRequest),
    Operation("GET", "/cds-services", "cdsDiscovery",
              "CDS Hooks discovery: the order-select and order-sign services",
              {200: ("the services", DiscoveryOut)}, authenticated=False),
    Operation("POST", "/cds-services/{service_id}", "cdsCall",
              "A CDS Hooks call: one card per draft order, decisions recorded",
              {200: ("cards and system actions", HookResponse)}, (400, 401, 404, 413, 503),
              HookRequest, (_path("service_id", "pss-order-select or pss-order-sign"),),
              headers={503: ("Retry-After",)}),
)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    models = _models()
    keyed, definitions = models_json_schema(
        [(m, "validation" if inbound else "serialization") for m, inbound in models],
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
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
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


def _operation(op: Operation, refs: Mapping[Any, Any]) -> dict[str, Any]:
    def content(model: type[BaseModel] | None, mode: str) -> dict[str, Any]:
        schema = refs[(model, mode)] if model is not None else {"type": "object"}
        return {"application/json": {"schema": schema}}

    responses: dict[str, Any] = {}
    for status, (text, model) in op.responses.items():
        responses[str(status)] = {"description": text, "content": content(model, "serialization")}
    for status in op.errors:
        responses[str(status)] = {"description": _ERRORS[status],
                                  "content": content(ErrorBody, "serialization")}
    for status, names in op.headers.items():
        responses[str(status)]["headers"] = {n: {"schema": {"type": "string"}} for n in names}
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary,
                           "parameters": list(op.parameters), "responses": responses,
                           "security": [{"apiKey": []}, {"bearer": []}] if op.authenticated
                           else []}
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": content(op.request, "validation")}
    return out
