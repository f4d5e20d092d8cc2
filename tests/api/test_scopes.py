"""Which OAuth scope each route needs (design section 4), enforced, declared and documented.

The route -> scope table lives once, in `chalicelib.api.openapi.OPERATIONS`; `app.py` guards
every route with it. Here: the table is the intended one (below, as README's security section
states it); every authenticated route refuses a caller lacking its scope with 403
`insufficient_scope` naming the scope, records nothing, and answers a caller holding it; the
OpenAPI document declares the same scopes; README's table is the same table; and real OAuth
tokens meet the same rules in prod.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.api import wiring
from chalicelib.api.auth import AUDIT, READ, WRITE, Credentials, Principal
from chalicelib.api.openapi import OPERATIONS, document, operation_for
from chalicelib.settings import DEV_PUBLIC_BASE_URL, Settings
from tests.api.test_cds_routes import national_pack
from tests.api.test_trust import WatchedStore, trust_settings
from tests.cds.conftest import hook_request, tavi_order
from tests.support.api import KEYS, referral
from tests.support.tokens import bearer, oauth_token

ROOT = Path(__file__).resolve().parents[2]
CLIENT = "trust-tie"  # the client id of `oauth_token`'s tokens too

# What the design asks, route by route: deciding (recorded or not) needs the deciding scope,
# reading recorded decisions the read or audit scope, the catalogue any scope of this API.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/decisions"): frozenset({WRITE}),
    ("GET", "/v1/decisions/{decision_id}"): frozenset({READ, AUDIT}),
    ("GET", "/v1/decisions/{decision_id}/versions"): frozenset({READ, AUDIT}),
    ("POST", "/v1/decisions/{decision_id}/versions"): frozenset({WRITE}),
    ("GET", "/v1/decisions/{decision_id}/versions/{version}"): frozenset({READ, AUDIT}),
    ("POST", "/v1/services/assess"): frozenset({WRITE}),
    ("GET", "/v1/policies"): frozenset({WRITE, READ, AUDIT}),
    ("GET", "/v1/policies/{policy_id}"): frozenset({WRITE, READ, AUDIT}),
    ("GET", "/v1/policy-set"): frozenset({WRITE, READ, AUDIT}),
    ("POST", "/v1/what-if"): frozenset({WRITE}),
    ("POST", "/cds-services/{service_id}"): frozenset({WRITE}),
    ("POST", "/cds-services/{service_id}/feedback"): frozenset({WRITE}),
}
PUBLIC = {("GET", "/v1/health"), ("GET", "/openapi.json"), ("GET", "/cds-services")}
SINGLE_SCOPES = (WRITE, READ, AUDIT)


def test_each_route_needs_the_scope_the_design_gives_it() -> None:
    table = {(op.method, op.path): op.scopes for op in OPERATIONS if op.authenticated}
    assert table == EXPECTED
    assert {(op.method, op.path) for op in OPERATIONS if not op.authenticated} == PUBLIC
    assert all(not op.scopes for op in OPERATIONS if not op.authenticated)
    assert operation_for("post", "/v1/services/assess") is not None
    assert operation_for("DELETE", "/v1/services/assess") is None


def test_the_openapi_document_declares_each_routes_scopes() -> None:
    paths = document(DEV_PUBLIC_BASE_URL)["paths"]
    for (method, path), scopes in EXPECTED.items():
        op = paths[path][method.lower()]
        bearers = [r["bearer"] for r in op["security"] if "bearer" in r]
        assert sorted(s for [s] in bearers) == sorted(scopes), path  # one alternative each
        assert {"apiKey": []} in op["security"]
        assert "insufficient_scope" in op["responses"]["403"]["description"]
        assert "WWW-Authenticate" in op["responses"]["403"]["headers"]
    for method, path in PUBLIC:
        assert paths[path][method.lower()]["security"] == []


def test_readme_documents_the_same_route_to_scope_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**Which scope each route needs.**", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `(GET|POST) ([^`]+)` \| (.+?) \|$", section, re.M)
    documented = {(method, path): frozenset(re.findall(r"`([a-z]+:[a-z]+)`", scopes))
                  for method, path, scopes in rows}
    readme_path = {"/v1/decisions/{id}": "/v1/decisions/{decision_id}",
                   "/v1/decisions/{id}/versions": "/v1/decisions/{decision_id}/versions",
                   "/v1/decisions/{id}/versions/{n}":
                       "/v1/decisions/{decision_id}/versions/{version}",
                   "/v1/policies/{id}": "/v1/policies/{policy_id}",
                   "/cds-services/{id}": "/cds-services/{service_id}",
                   "/cds-services/{id}/feedback": "/cds-services/{service_id}/feedback"}
    assert {(m, readme_path.get(p, p)): s for (m, p), s in documented.items()} == EXPECTED


# --- every route, with callers holding one scope each ----------------------------------------


class Scoped:
    """A client whose caller holds exactly the scopes set on it (the authorizer's answer)."""

    def __init__(self, client: Client, store: WatchedStore) -> None:
        self.http = client.http
        self.store = store
        self.scopes: frozenset[str] = frozenset()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": "Bearer stand-in", "content-type": "application/json"}
        if method == "GET":
            return self.http.get(path, headers=headers)
        return self.http.post(path, headers=headers, body=json.dumps(body))


@pytest.fixture
def scoped(make_client: Callable[..., Client]) -> Iterator[Scoped]:
    store = WatchedStore()
    settings = Settings(api_keys=KEYS, policy_dir=ROOT / "policies", pseudonym_key=b"k")
    client = make_client(store, settings=settings, policy_set=national_pack())
    caller = Scoped(client, store)

    def authorize(_credentials: Credentials) -> Principal:
        return Principal(CLIENT, caller.scopes, "test")

    current = wiring.current()
    current.authorize = authorize  # type: ignore[method-assign]
    yield caller


def _recorded(caller: Scoped) -> tuple[str, str]:
    """A decision recorded by CLIENT (its id), and a card uuid CDS Hooks issued to it."""
    caller.scopes = frozenset({WRITE})
    created = caller.call("POST", "/v1/decisions", referral())
    assert created.status_code == 201, created.body
    cds = caller.call("POST", "/cds-services/pss-order-sign", hook_request(orders=[tavi_order()]))
    assert cds.status_code == 200, cds.body
    return json.loads(created.body)["decision_id"], json.loads(cds.body)["cards"][0]["uuid"]


def _requests(decision: str, card: str) -> dict[tuple[str, str], tuple[str, Any, int]]:
    """Per route: the path called, the body, and the status a caller with the scope gets."""
    versions = f"/v1/decisions/{decision}/versions"
    feedback = {"feedback": [{"card": card, "outcome": "overridden",
                              "outcomeTimestamp": "2025-06-01T10:05:00Z"}]}
    return {
        ("POST", "/v1/decisions"): ("/v1/decisions", referral(), 201),
        ("GET", "/v1/decisions/{decision_id}"): (f"/v1/decisions/{decision}", None, 200),
        ("GET", "/v1/decisions/{decision_id}/versions"): (versions, None, 200),
        ("POST", "/v1/decisions/{decision_id}/versions"): (
            versions, {"attestations": ["aortic_valve_mdm_agreed"]}, 201),
        ("GET", "/v1/decisions/{decision_id}/versions/{version}"): (f"{versions}/1", None, 200),
        ("POST", "/v1/services/assess"): ("/v1/services/assess",
                                          {"patients_nationally": 120}, 200),
        ("GET", "/v1/policies"): ("/v1/policies", None, 200),
        ("GET", "/v1/policies/{policy_id}"): ("/v1/policies/CET5", None, 200),
        ("GET", "/v1/policy-set"): ("/v1/policy-set", None, 200),
        ("POST", "/v1/what-if"): ("/v1/what-if", {"files": {"policies/note.pss": "# note\n"},
                                                  "cases": [referral()]}, 200),
        ("POST", "/cds-services/{service_id}"): (
            "/cds-services/pss-order-sign", hook_request(orders=[tavi_order()]), 200),
        ("POST", "/cds-services/{service_id}/feedback"): (
            "/cds-services/pss-order-sign/feedback", feedback, 200),
    }


ROUTE_SCOPE_CASES = [pytest.param(route, scope, id=f"{route[0]} {route[1]} as {scope}")
                     for route in EXPECTED for scope in SINGLE_SCOPES]


@pytest.mark.parametrize(("route", "scope"), ROUTE_SCOPE_CASES)
def test_each_route_answers_a_caller_with_its_scope_and_refuses_one_without(
        scoped: Scoped, route: tuple[str, str], scope: str) -> None:
    decision, card = _recorded(scoped)
    path, body, ok = _requests(decision, card)[route]
    scoped.scopes = frozenset({scope})
    writes = scoped.store.writes
    response = scoped.call(route[0], path, body)
    if scope in EXPECTED[route]:
        assert response.status_code == ok, response.body
        return
    assert response.status_code == 403, response.body
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    error = json.loads(response.body)["error"]
    needed = " or ".join(f"`{s}`" for s in sorted(EXPECTED[route]))
    assert error == {"code": "insufficient_scope",
                     "message": f"this route needs the scope {needed}; these credentials "
                                f"hold `{scope}`",
                     "details": [{"field": "scope", "problem": f"needs {needed}"}]}
    assert scoped.store.writes == writes  # a refused call records nothing


def test_a_caller_with_no_scope_is_refused_even_the_catalogue(scoped: Scoped) -> None:
    response = scoped.call("GET", "/v1/policy-set")
    assert response.status_code == 403
    assert "these credentials hold no scope" in json.loads(response.body)["error"]["message"]


def test_the_scope_is_checked_before_the_body_or_the_decisions_existence(scoped: Scoped) -> None:
    scoped.scopes = frozenset({READ})
    assert scoped.call("POST", "/v1/services/assess", [1]).status_code == 403
    scoped.scopes = frozenset({WRITE})
    missing = "/v1/decisions/01JAAAAAAAAAAAAAAAAAAAAAAA"
    assert scoped.call("GET", missing).status_code == 403  # not 404: nothing is revealed


# --- the same rules with real OAuth tokens, in prod ----------------------------------------


@pytest.fixture
def prod(make_client: Callable[..., Client]) -> Client:
    return make_client(WatchedStore(), settings=trust_settings("prod"),
                       policy_set=national_pack())


@pytest.mark.parametrize("scope", SINGLE_SCOPES)
def test_any_scope_of_this_api_reads_the_catalogue(prod: Client, scope: str) -> None:
    headers = bearer(oauth_token(scope))
    for path in ("/v1/policies", "/v1/policies/CET5", "/v1/policy-set"):
        assert prod.http.get(path, headers=headers).status_code == 200, (path, scope)


def test_a_valid_token_with_none_of_our_scopes_is_403_on_every_route_it_tries(
        prod: Client) -> None:
    """Authenticated but not authorised: RFC 6750's insufficient_scope, not another 401."""
    headers = bearer(oauth_token("openid profile"))
    for method, path in (("GET", "/v1/policy-set"), ("POST", "/v1/decisions")):
        response = prod.http.request(method, path, headers=headers, body=b"{}")
        assert response.status_code == 403, (path, response.body)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
        assert json.loads(response.body)["error"]["code"] == "insufficient_scope"


def test_the_assessment_decides_so_it_needs_the_deciding_scope(prod: Client) -> None:
    body = json.dumps({"patients_nationally": 120})
    for scope in (READ, AUDIT):
        refused = prod.http.post("/v1/services/assess", headers=bearer(oauth_token(scope)),
                                 body=body)
        assert refused.status_code == 403, refused.body
        assert json.loads(refused.body)["error"]["details"] == [
            {"field": "scope", "problem": "needs `decisions:write`"}]
    allowed = prod.http.post("/v1/services/assess", headers=bearer(oauth_token(WRITE)),
                             body=body)
    assert allowed.status_code == 200, allowed.body
    assert "prescribed" in json.loads(allowed.body)
