"""Which OAuth 2.0 scopes each route needs: the one table `app.py` enforces and the OpenAPI
document declares (design section 4 names the scopes; README, "Who may call", the rule).

Anything that computes an answer from the pack for the caller (a decision, recorded or dry
run, a re-decision, a four-factor assessment, a what-if, a CDS Hooks call and its feedback)
needs `decisions:write`; reading recorded decisions needs `decisions:read` or `audit:read`;
the read-only catalogue (policies, the policy set) takes any scope of this API, i.e. every
client the authorizer lets in, since an EPR that only decides needs the vocabulary to build
its requests and an auditor needs the policies to read decisions.
Kept apart from `openapi.py`, whose models a cold start should not import just to check a scope.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.api.auth import AUDIT, READ, SCOPES, WRITE

DECIDE = frozenset({WRITE})
READ_DECISIONS = frozenset({READ, AUDIT})
CATALOGUE = frozenset(SCOPES)

# (method, route as registered) -> any one of these scopes lets a caller in. Routes absent
# here are public (health, this document, CDS discovery) or the 405 routes.
ROUTE_SCOPES: Mapping[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/decisions"): DECIDE,
    ("GET", "/v1/decisions/{decision_id}"): READ_DECISIONS,
    ("GET", "/v1/decisions/{decision_id}/versions"): READ_DECISIONS,
    ("POST", "/v1/decisions/{decision_id}/versions"): DECIDE,
    ("GET", "/v1/decisions/{decision_id}/versions/{version}"): READ_DECISIONS,
    ("POST", "/v1/services/assess"): DECIDE,
    ("GET", "/v1/policies"): CATALOGUE,
    ("GET", "/v1/policies/{policy_id}"): CATALOGUE,
    ("GET", "/v1/policy-set"): CATALOGUE,
    ("POST", "/v1/what-if"): DECIDE,
    ("POST", "/cds-services/{service_id}"): DECIDE,
    ("POST", "/cds-services/{service_id}/feedback"): DECIDE,
}


def scopes_for(method: str, path: str) -> frozenset[str]:
    """The scopes of a route (`path` as registered, e.g. `/v1/decisions/{decision_id}`);
    empty for a public route or a method the path does not serve."""
    return ROUTE_SCOPES.get((method.upper(), path), frozenset())
