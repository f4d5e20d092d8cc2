"""PSS rules HTTP API on Chalice: routes only.

Each route names itself, picks one use case from `chalicelib.api.wiring` and lets
`chalicelib.api.http.Endpoint` turn the reply (or error) into JSON and one access-log line.
Every route but health, the OpenAPI document (and CDS discovery) sits behind the `caller`
authorizer (`chalicelib.api.auth`: bearer JWTs, and API keys in the dev stage). It is never
cached across requests (ttl 0): a cached answer would let a replayed CDS token through.
Every authenticated route also needs one of its operation's OAuth scopes, from the one table in
`chalicelib.api.openapi` (`_answer` applies it; 403 `insufficient_scope` otherwise). Wrong
methods get a 405 with the design's error body from routes registered here, because API
Gateway itself would answer 403 `Missing Authentication Token`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import AuthRequest, AuthResponse, Chalice, Response

from chalicelib.api import wiring
from chalicelib.api.auth import AUTHORIZATION_HEADER
from chalicelib.api.gateway_auth import credentials_of, reads_every_header
from chalicelib.api.http import HttpRequest, method_not_allowed, requires
from chalicelib.api.local_auth import install_if_local
from chalicelib.api.replies import Reply
from chalicelib.api.schemas import OpenApiDocument
from chalicelib.api.scopes import scopes_for

app = Chalice(app_name="pss-rules")
# Under `chalice local` / chalice.test: hand the authorizer every header, as API Gateway does.
install_if_local(wiring.current().on_lambda())

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _answer(route: str, use_case: Callable[[HttpRequest], Reply]) -> Response:
    """Run `use_case` for the current request, behind its operation's scopes (if any)."""
    request = app.current_request
    assert request is not None  # Chalice sets it before calling any route
    scopes = scopes_for(request.method, request.path)  # `path` is the route template
    if scopes:
        use_case = requires(scopes, use_case)
    return wiring.current().endpoint(route, request, use_case)


@app.authorizer(ttl_seconds=0, header=AUTHORIZATION_HEADER)
def caller(auth_request: AuthRequest) -> AuthResponse:
    """The calling client and its scopes; `Unauthorized` (401) otherwise. With ttl 0 the
    policy answers this one request only."""
    principal = wiring.current().authorize(credentials_of(auth_request))
    return AuthResponse(routes=["*"], principal_id=principal.client_id,
                        context=principal.context())


reads_every_header(caller)


@app.route("/v1/decisions", methods=["POST"], authorizer=caller)
def create_decision() -> Response:
    """Decide a referral; record it unless `?dry_run=true`."""
    return _answer("POST /v1/decisions", lambda r: wiring.current().decisions
                   .decide(r.json(), r.client_id, r.header("Idempotency-Key"),
                           r.flag("dry_run")))


@app.route("/v1/decisions/{decision_id}", methods=["GET"], authorizer=caller)
def get_decision(decision_id: str) -> Response:
    """The latest version of a decision."""
    return _answer("GET /v1/decisions/{id}", lambda r: wiring.current()
                   .decisions.latest(decision_id, r.client_id, r.audit))


@app.route("/v1/decisions/{decision_id}/versions", methods=["GET"], authorizer=caller)
def list_decision_versions(decision_id: str) -> Response:
    """Every version of a decision."""
    return _answer("GET /v1/decisions/{id}/versions", lambda r: wiring
                   .current().decisions.versions(decision_id, r.client_id, r.audit))


@app.route("/v1/decisions/{decision_id}/versions", methods=["POST"], authorizer=caller)
def redecide(decision_id: str) -> Response:
    """Re-decide as a new immutable version (owner only; `Idempotency-Key` optional)."""
    return _answer("POST /v1/decisions/{id}/versions", lambda r: wiring
                   .current().decisions.redecide(decision_id, r.json(), r.client_id,
                                                 r.header("Idempotency-Key")))


@app.route("/v1/decisions/{decision_id}/versions/{version}", methods=["GET"],
           authorizer=caller)
def get_decision_version(decision_id: str, version: str) -> Response:
    """One version of a decision."""
    return _answer("GET /v1/decisions/{id}/versions/{n}", lambda r: wiring
                   .current().decisions.version(decision_id, version, r.client_id, r.audit))


@app.route("/v1/services/assess", methods=["POST"], authorizer=caller)
def assess_service() -> Response:
    """The four-factor assessment; it decides, so it takes the deciding scope."""
    return _answer("POST /v1/services/assess",
                   lambda r: wiring.current().catalogue.assess(r.json()))


@app.route("/v1/policies", methods=["GET"], authorizer=caller)
def list_policies() -> Response:
    """Every policy version."""
    return _answer("GET /v1/policies", lambda r: wiring.current().catalogue.policies())


@app.route("/v1/policies/{policy_id}", methods=["GET"], authorizer=caller)
def get_policy(policy_id: str) -> Response:
    """Every version of one policy."""
    return _answer("GET /v1/policies/{id}",
                   lambda r: wiring.current().catalogue.policy(policy_id))


@app.route("/v1/policy-set", methods=["GET"], authorizer=caller)
def get_policy_set() -> Response:
    """The policy set in use."""
    return _answer("GET /v1/policy-set", lambda r: wiring.current().catalogue.policy_set_info())


@app.route("/v1/health", methods=["GET"])
def health() -> Response:
    """Liveness; no key needed."""
    return _answer("GET /v1/health", lambda r: wiring.current().catalogue.health())


@app.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    """The OpenAPI document; no key needed."""
    # Imported here, not at the top: it pulls in every CDS Hooks model, which a cold start
    # that serves no CDS call or document should not pay for.
    from chalicelib.api.openapi import document

    return _answer("GET /openapi.json",
                   lambda r: Reply(200, OpenApiDocument.model_validate(
                       document(wiring.current().settings.public_base_url))))


@app.route("/v1/what-if", methods=["POST"], authorizer=caller)
def what_if() -> Response:
    """Decide cases under the served pack and under it with some files changed.

    It compiles policy text the caller sends, so it takes the deciding scope: a read-only or
    audit-only token may not run it.
    """
    return _answer("POST /v1/what-if", lambda r: wiring.current().what_if.run(r.json()))


@app.lambda_function(name="classify_upload")
def classify_upload(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Classify activity CSVs uploaded under `incoming/` into `classified/` (S3 events).

    A plain Lambda function rather than `@app.on_s3_event`: `chalice package` refuses S3
    event handlers for CloudFormation, so the bucket and its notification to this function
    are declared in the merge template under `.chalice/`.
    """
    from urllib.parse import unquote_plus

    from chalicelib.batch.s3_handler import classify_s3_object

    current = wiring.current()
    summaries = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket, key = s3.get("bucket", {}).get("name"), s3.get("object", {}).get("key")
        if not bucket or not key:
            continue
        summary = classify_s3_object(current.s3, bucket, unquote_plus(key), current.policy_set)
        current.log_event("s3_batch", {k: summary.get(k) for k in ("input", "error", "skipped")})
        summaries.append(summary)
    return {"classified": len(summaries)}


@app.route("/cds-services", methods=["GET"], cors=True)
def cds_discovery() -> Response:
    """CDS Hooks discovery; public, as the specification expects."""
    return _answer("GET /cds-services", lambda r: wiring.current().hooks.discover())


@app.route("/cds-services/{service_id}", methods=["POST"], authorizer=caller, cors=True)
def cds_call(service_id: str) -> Response:
    """A CDS Hooks call (order-select or order-sign): one card per draft order."""
    return _answer("POST /cds-services/{id}", lambda r: wiring.current()
                   .hooks.call(service_id, r.body, r.client_id))


@app.route("/cds-services/{service_id}/feedback", methods=["POST"], authorizer=caller,
           cors=True)
def cds_feedback(service_id: str) -> Response:
    """CDS Hooks feedback on cards this service issued, recorded against their decisions;
    the same credentials as the service (its JWT `aud` is this feedback URL)."""
    return _answer("POST /cds-services/{id}/feedback", lambda r: wiring
                   .current().hooks.feedback(service_id, r.body, r.client_id))


def _register_method_not_allowed() -> None:
    """Answer 405 on every path for the methods it lacks (no key needed to learn that)."""
    allowed = {path: set(entries) for path, entries in app.routes.items()}
    for path, methods in allowed.items():
        others = [m for m in ALL_METHODS if m not in methods]
        allow = ", ".join(sorted(methods))

        def not_allowed(allow: str = allow, path: str = path, **_: str) -> Response:
            return _answer("* " + path, method_not_allowed(allow))

        not_allowed.__name__ = "not_allowed_" + "".join(c if c.isalnum() else "_" for c in path)
        app.route(path, methods=others)(not_allowed)


_register_method_not_allowed()
