"""Trust at the boundary (design section 4): who may call, who may read, where we may fetch.

Every JWT here is real: RSA and EC keys generated in the session, a JWKS published inline in
the settings, tokens signed with PyJWT, verified by the service through the Chalice authorizer
exactly as a call from an EHR or an integration engine would be.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import jwt
import pytest
from chalice.test import Client

from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.decisions.store import DecisionVersion, IdempotencyClaim
from chalicelib.settings import Settings
from tests.api.test_cds_routes import decision_ids, national_pack
from tests.cds.conftest import hook_request, tavi_order
from tests.cds.test_http_fetch import CountingListener
from tests.support.api import KEYS, NHS_NUMBER, PACK_DIR, Clock, referral
from tests.support.tokens import (
    BASE_URL,
    EHR_CLIENT,
    EHR_ISS,
    NOW,
    OAUTH_AUDIENCE,
    bearer,
    cds_claims,
    cds_token,
    ec_signer,
    ehr_client,
    jwks,
    oauth_issuer,
    oauth_token,
    rsa_signer,
)

ORDER_SIGN = "/cds-services/pss-order-sign"
AUDITOR = ("auditor", "key-auditor-0123456789")
A, B = KEYS[0], KEYS[1]


class WatchedStore(InMemoryDecisionStore):
    """The in-memory store, counting decisions written (claims of a jti are not decisions)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def create(self, first: DecisionVersion, claim: IdempotencyClaim | None,
               now_epoch: int) -> None:
        self.writes += 1
        super().create(first, claim, now_epoch)

    def append(self, version: DecisionVersion, claim: IdempotencyClaim | None = None,
               now_epoch: int = 0) -> None:
        self.writes += 1
        super().append(version, claim, now_epoch)


def trust_settings(stage: str = "dev", **changes: Any) -> Settings:
    base = Settings(stage=stage, api_keys=(*KEYS, AUDITOR) if stage == "dev" else (),
                    policy_dir=PACK_DIR, pseudonym_key=b"test-pseudonym-key",
                    public_base_url=BASE_URL, cds_clients=(ehr_client(),),
                    audit_clients=frozenset({AUDITOR[0], "auditor-app"}),
                    oauth_issuers=(oauth_issuer(),))
    return replace(base, **changes)


@pytest.fixture
def watched() -> WatchedStore:
    return WatchedStore()


@pytest.fixture
def dev(make_client: Callable[..., Client], watched: WatchedStore) -> Client:
    return make_client(watched, settings=trust_settings("dev"), policy_set=national_pack())


@pytest.fixture
def prod(make_client: Callable[..., Client], watched: WatchedStore) -> Client:
    return make_client(watched, settings=trust_settings("prod"), policy_set=national_pack())


def call(client: Client, headers: dict[str, str], body: Any = None,
         path: str = ORDER_SIGN) -> Any:
    data = json.dumps(hook_request(orders=[tavi_order()]) if body is None else body)
    return client.http.post(path, headers=headers, body=data)


def key(pair: tuple[str, str]) -> dict[str, str]:
    return {"x-api-key": pair[1], "content-type": "application/json"}


# --- a real JWT round trip --------------------------------------------------------------------


@pytest.mark.parametrize("signer", [rsa_signer, ec_signer], ids=["RS384", "ES384"])
def test_a_signed_cds_call_gets_cards_and_records_as_the_ehr(
        prod: Client, watched: WatchedStore, signer: Callable[[], Any]) -> None:
    response = call(prod, bearer(cds_token(signer())))
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert answer["cards"] and answer["cards"][0]["summary"]
    decision_id = decision_ids(answer)[0]
    recorded = watched.latest(decision_id)
    assert recorded is not None and recorded.client_id == EHR_CLIENT
    # The card's link is built on PSS_PUBLIC_BASE_URL, never on the Host header.
    links = [link["url"] for card in answer["cards"] for link in card.get("links", [])]
    assert all(url.startswith(BASE_URL) for url in links)


def test_the_jwks_can_come_from_a_url_and_is_refetched_for_a_new_kid(
        make_client: Callable[..., Client], watched: WatchedStore, clock: Clock) -> None:
    # The test double serves the JWKS in place of an https URL (the fetcher is injected).
    served = {"jwks": jwks(rsa_signer())}
    asked: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        asked.append(url)
        return served["jwks"]

    settings = trust_settings("prod", cds_clients=(ehr_client(
        jwks=None, jwks_url="https://ehr-a.example.nhs.uk/.well-known/jwks.json"),))
    client = make_client(watched, settings=settings, policy_set=national_pack(),
                         jwks_fetch=fetch)
    assert call(client, bearer(cds_token())).status_code == 200
    assert call(client, bearer(cds_token())).status_code == 200
    assert asked == ["https://ehr-a.example.nhs.uk/.well-known/jwks.json"]  # cached
    served["jwks"] = jwks(rsa_signer(), ec_signer())  # the EHR rotates in its EC key
    # Unknown kids refetch at most once a minute, so made-up kids cannot hammer the EHR.
    assert call(client, bearer(cds_token(ec_signer()))).status_code == 401
    assert len(asked) == 1
    clock.advance(seconds=61)
    assert call(client, bearer(cds_token(ec_signer()))).status_code == 200
    assert len(asked) == 2


# --- every 401: the error body, and nothing recorded -------------------------------------------


def _hs256() -> str:
    # HMAC keyed with the published public key: the classic algorithm-confusion forgery
    # (built by hand, as an attacker would: PyJWT itself refuses to sign it).
    def part(data: Any) -> str:
        raw = json.dumps(data).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing = part({"alg": "HS256", "kid": rsa_signer().kid}) + "." + part(cds_claims())
    secret = rsa_signer().public_jwk()["n"].encode()
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _alg_none() -> str:
    return jwt.encode(cds_claims(), None, algorithm="none", headers={"kid": rsa_signer().kid})


REJECTED: dict[str, Callable[[], dict[str, str]]] = {
    "malformed": lambda: bearer("not.a.jwt"),
    "garbage": lambda: bearer("eyJhbGciOiJSUzM4NCJ9"),
    "not bearer": lambda: {"Authorization": "Basic " + cds_token()},
    "empty bearer": lambda: {"Authorization": "Bearer "},
    "expired": lambda: bearer(cds_token(exp=NOW - 120, iat=NOW - 400)),
    "not yet valid (nbf)": lambda: bearer(cds_token(nbf=NOW + 120)),
    "not yet valid (iat)": lambda: bearer(cds_token(iat=NOW + 120, exp=NOW + 200)),
    "exp over 5 minutes ahead": lambda: bearer(cds_token(exp=NOW + 3600)),
    "wrong audience": lambda: bearer(cds_token(aud=BASE_URL + "/cds-services/other")),
    "audience on another host": lambda: bearer(cds_token(
        aud="https://evil.example/cds-services/pss-order-sign")),
    "wrong issuer": lambda: bearer(cds_token(iss="https://ehr-b.example.nhs.uk")),
    "unknown kid": lambda: bearer(rsa_signer("not-published").sign(cds_claims())),
    "alg none": lambda: bearer(_alg_none()),
    "HS256": lambda: bearer(_hs256()),
    "no jti": lambda: bearer(cds_token(jti=None)),
    "no exp": lambda: bearer(cds_token(exp=None)),
    "no iat": lambda: bearer(cds_token(iat=None)),
    "missing Authorization": lambda: {"content-type": "application/json"},
    "doubled Authorization": lambda: {"Authorization": "Bearer {0}, Bearer {0}".format(
        cds_token())},
    "an OAuth token on CDS": lambda: bearer(oauth_token()),
}


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("case", list(REJECTED))
def test_every_bad_credential_is_401_and_records_nothing(
        case: str, stage: str, request: pytest.FixtureRequest, watched: WatchedStore) -> None:
    client: Client = request.getfixturevalue(stage)
    response = call(client, REJECTED[case]())
    assert response.status_code == 401, (case, response.body)
    error = json.loads(response.body)["error"]
    assert error["code"] == "unauthorized" and error["details"][0]["field"] == "Authorization"
    assert watched.writes == 0


def test_a_replayed_jti_is_401_and_records_nothing(prod: Client, watched: WatchedStore) -> None:
    token = cds_token()
    assert call(prod, bearer(token)).status_code == 200
    written = watched.writes
    again = call(prod, bearer(token))
    assert again.status_code == 401
    assert json.loads(again.body)["error"]["code"] == "unauthorized"
    assert watched.writes == written


def test_a_signature_from_another_key_with_a_published_kid_is_401(prod: Client) -> None:
    impostor = replace(rsa_signer("forger"), kid=rsa_signer().kid)
    assert call(prod, bearer(impostor.sign(cds_claims()))).status_code == 401


def test_api_keys_do_not_work_in_prod(prod: Client) -> None:
    assert call(prod, key(A)).status_code == 401
    assert prod.http.get("/v1/policies", headers=key(A)).status_code == 401


def test_api_keys_work_on_cds_in_dev(dev: Client) -> None:
    assert call(dev, key(A)).status_code == 200
    assert call(dev, key(("epr", "wrong-key"))).status_code == 401
    # A doubled key is refused, not guessed at.
    assert call(dev, {"x-api-key": f"{A[1]}, {B[1]}"}).status_code == 401


# --- the REST API in production: OAuth 2.0 bearer tokens and scopes ---------------------------


def test_prod_rest_api_takes_oauth_bearer_tokens_with_scopes(prod: Client) -> None:
    body = json.dumps(referral())
    assert prod.http.post("/v1/decisions", headers=key(A), body=body).status_code == 401
    writer = bearer(oauth_token("decisions:write decisions:read"))
    created = prod.http.post("/v1/decisions", headers=writer, body=body)
    assert created.status_code == 201, created.body
    decision_id = json.loads(created.body)["decision_id"]
    # The same access token is reused for its lifetime, as OAuth intends.
    assert prod.http.get(f"/v1/decisions/{decision_id}", headers=writer).status_code == 200
    reader = bearer(oauth_token("decisions:read"))
    refused = prod.http.post("/v1/decisions", headers=reader, body=body)
    assert refused.status_code == 403
    assert json.loads(refused.body)["error"]["code"] == "insufficient_scope"
    assert prod.http.get(f"/v1/decisions/{decision_id}", headers=reader).status_code == 200


def test_what_if_compiles_caller_text_so_it_needs_the_deciding_scope(prod: Client) -> None:
    body = json.dumps({"files": {"policies/note.pss": "# a what-if adds a comment\n"},
                       "cases": [referral()]})
    for scopes in ("decisions:read", "audit:read"):
        refused = prod.http.post("/v1/what-if", headers=bearer(oauth_token(scopes)), body=body)
        assert refused.status_code == 403, refused.body
        assert json.loads(refused.body)["error"]["code"] == "insufficient_scope"
    allowed = prod.http.post("/v1/what-if", headers=bearer(oauth_token("decisions:write")),
                             body=body)
    assert allowed.status_code == 200, allowed.body


@pytest.mark.parametrize("changes", [
    {"aud": "https://other.example"}, {"iss": "https://auth-b.example"},
    {"exp": NOW - 60}, {"client_id": None},
])
def test_prod_rest_api_refuses_bad_oauth_tokens(prod: Client, watched: WatchedStore,
                                                changes: dict[str, Any]) -> None:
    response = prod.http.post("/v1/decisions", headers=bearer(oauth_token(**changes)),
                              body=json.dumps(referral()))
    assert response.status_code == 401
    assert watched.writes == 0


# --- who may read -------------------------------------------------------------------------------


def test_only_the_owner_reads_or_redecides_and_auditors_read_with_a_log_line(
        dev: Client, log_lines: list[str]) -> None:
    created = dev.http.post("/v1/decisions", headers=key(A), body=json.dumps(referral()))
    decision_id = json.loads(created.body)["decision_id"]
    reads = [f"/v1/decisions/{decision_id}", f"/v1/decisions/{decision_id}/versions",
             f"/v1/decisions/{decision_id}/versions/1"]
    redecide = f"/v1/decisions/{decision_id}/versions"
    facts = json.dumps({"facts": {"who_performance_status": 1}})
    unknown = "01JD0000000000000000000009"
    for path in reads:
        other = dev.http.get(path, headers=key(B))
        missing = dev.http.get(path.replace(decision_id, unknown), headers=key(B))
        assert other.status_code == 404
        # Exactly the answer for an id that does not exist: existence is not revealed.
        assert json.loads(other.body) == json.loads(missing.body.replace(
            unknown.encode(), decision_id.encode()))
    assert dev.http.post(redecide, headers=key(B), body=facts).status_code == 404
    assert dev.http.post(redecide, headers=key(AUDITOR), body=facts).status_code == 404
    assert json.loads(dev.http.get(reads[1], headers=key(A)).body)["versions"][0][
        "version"] == 1  # B recorded nothing
    log_lines.clear()
    for path in reads:
        assert dev.http.get(path, headers=key(AUDITOR)).status_code == 200
        assert dev.http.get(path, headers=key(A)).status_code == 200
    audits = [json.loads(line) for line in log_lines if '"audit_read"' in line]
    assert [(a["auditor"], a["decision_id"]) for a in audits] == [("auditor", decision_id)] * 3
    assert dev.http.post(redecide, headers=key(A), body=facts).status_code == 201


def test_an_oauth_client_with_audit_read_reads_everything(dev: Client) -> None:
    created = dev.http.post("/v1/decisions", headers=key(A), body=json.dumps(referral()))
    decision_id = json.loads(created.body)["decision_id"]
    path = f"/v1/decisions/{decision_id}"
    reader = bearer(oauth_token("decisions:read", client="someone-else"))
    assert dev.http.get(path, headers=reader).status_code == 404
    auditor = bearer(oauth_token("audit:read", client="regulator"))
    assert dev.http.get(path, headers=auditor).status_code == 200


def test_redecide_with_an_idempotency_key_records_one_version(dev: Client) -> None:
    created = dev.http.post("/v1/decisions", headers=key(A), body=json.dumps(referral()))
    decision_id = json.loads(created.body)["decision_id"]
    path = f"/v1/decisions/{decision_id}/versions"
    facts = json.dumps({"facts": {"who_performance_status": 1}})
    headers = {**key(A), "Idempotency-Key": "redo-1"}
    first = dev.http.post(path, headers=headers, body=facts)
    # The answer was lost; the client retries with the same key.
    again = dev.http.post(path, headers=headers, body=facts)
    assert (first.status_code, again.status_code) == (201, 200)
    assert json.loads(again.body) == json.loads(first.body)
    assert again.headers.get("Idempotent-Replayed") == "true"
    versions = json.loads(dev.http.get(path, headers=key(A)).body)["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    other = dev.http.post(path, headers=headers, body=json.dumps({"attestations": []}))
    assert other.status_code == 409
    # Another client's identical key is its own (and it does not own the decision anyway).
    assert dev.http.post(path, headers={**key(B), "Idempotency-Key": "redo-1"},
                         body=facts).status_code == 404


# --- where we may fetch -------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    found = CountingListener()
    yield found
    found.close()


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("configured", [False, True])
def test_a_cds_call_naming_a_loopback_fhir_server_never_reaches_it(
        stage: str, configured: bool, listener: CountingListener,
        make_client: Callable[..., Client], watched: WatchedStore) -> None:
    servers = [f"http://127.0.0.1:{listener.port}/fhir", f"http://localhost:{listener.port}",
               f"https://127.0.0.1:{listener.port}/fhir", f"https://127.1:{listener.port}/fhir",
               f"https://0x7f000001:{listener.port}/fhir",
               f"https://[::ffff:127.0.0.1]:{listener.port}/fhir"]
    # Configured: an operator even listed them (https ones) for this EHR; still refused.
    listed = tuple(s for s in servers if s.startswith("https")) if configured else ()
    settings = trust_settings(stage, cds_clients=(ehr_client(
        fhir_servers=[*listed, "https://fhir.ehr-a.example.nhs.uk/r4"]),))
    client = make_client(watched, settings=settings, policy_set=national_pack())
    for server in servers:
        body = hook_request(orders=[tavi_order()], prefetch={}, with_server=True)
        body["fhirServer"] = server
        response = call(client, bearer(cds_token()), body)
        assert response.status_code == 200, response.body
        text = json.dumps(json.loads(response.body)["cards"])
        assert "birth date" in text  # the card says the data was missing
    assert listener.accepted == 0


def test_an_api_key_caller_has_no_fhir_server_to_fetch_from(
        dev: Client, listener: CountingListener) -> None:
    body = hook_request(orders=[tavi_order()], prefetch={}, with_server=True)
    body["fhirServer"] = f"http://127.0.0.1:{listener.port}/fhir"
    assert call(dev, key(A), body).status_code == 200
    assert listener.accepted == 0


# --- what we keep -------------------------------------------------------------------------------


def test_birth_dates_are_not_stored_but_the_age_used_is(dev: Client,
                                                      watched: WatchedStore) -> None:
    body = referral(patient={"birth_date": "1944-03-12", "sex": "female",
                             "nhs_number": NHS_NUMBER, "region": "London"})
    created = dev.http.post("/v1/decisions", headers=key(A), body=json.dumps(body))
    assert created.status_code == 201, created.body
    decision_id = json.loads(created.body)["decision_id"]
    stored = watched.latest(decision_id)
    assert stored is not None
    patient = stored.inputs["patient"]
    assert "birth_date" not in patient and "nhs_number" not in patient
    assert (patient["age"], patient["age_months"]) == (81, 81 * 12 + 2)  # on 2025-06-01
    # Re-deciding still works from what is kept, and keeps the months.
    redo = dev.http.post(f"/v1/decisions/{decision_id}/versions", headers=key(A),
                         body=json.dumps({"facts": {"who_performance_status": 1}}))
    assert redo.status_code == 201, redo.body
    latest = watched.latest(decision_id)
    assert latest is not None and latest.inputs["patient"]["age_months"] == 81 * 12 + 2


def test_an_ehr_issuer_is_matched_exactly(prod: Client) -> None:
    assert call(prod, bearer(cds_token(iss=EHR_ISS + "/"))).status_code == 401


# --- review of issue 9: one client id, one owner ------------------------------------------------


def test_an_oauth_token_naming_an_ehrs_client_id_cannot_read_its_decisions(
        prod: Client) -> None:
    # `epr-a` is bound to the EHR's own `iss` in PSS_CDS_CLIENTS; a token from the OAuth
    # issuer claiming that client id must not become the owner of the EHR's decisions.
    answer = json.loads(call(prod, bearer(cds_token())).body)
    decision_id = decision_ids(answer)[0]
    impostor = bearer(oauth_token("decisions:read decisions:write", client=EHR_CLIENT))
    path = f"/v1/decisions/{decision_id}"
    assert prod.http.get(path, headers=impostor).status_code == 401
    assert prod.http.post(path + "/versions", headers=impostor,
                          body=json.dumps({"attestations": []})).status_code == 401


@pytest.mark.parametrize("client", ["trust-tie#redecide", "a b", "", "x" * 65, "tie\n"])
def test_oauth_client_ids_that_could_collide_in_store_keys_are_refused(
        prod: Client, watched: WatchedStore, client: str) -> None:
    # Store keys join client ids with `#` (IDEMPOTENCY#<client>#<key>, REFERRAL#...).
    response = prod.http.post("/v1/decisions", headers=bearer(oauth_token(client=client)),
                              body=json.dumps(referral()))
    assert response.status_code == 401
    assert watched.writes == 0


def test_with_two_oauth_issuers_neither_speaks_for_the_others_clients(
        make_client: Callable[..., Client], watched: WatchedStore) -> None:
    # Issuer B minting a token for issuer A's client (or for an auditor) would own A's
    # decisions; each issuer lists the clients it speaks for.
    other = rsa_signer("auth-b-rsa-1")
    issuers = (oauth_issuer(clients=["trust-tie", "auditor-app"]),
               oauth_issuer(iss="https://auth-b.example.nhs.uk", jwks=jwks(other),
                            clients=["trust-b"]))
    client = make_client(watched, settings=trust_settings("prod", oauth_issuers=issuers),
                         policy_set=national_pack())
    body = json.dumps(referral())
    created = client.http.post("/v1/decisions", headers=bearer(oauth_token()), body=body)
    assert created.status_code == 201, created.body
    path = f"/v1/decisions/{json.loads(created.body)['decision_id']}"

    def from_b(client_id: str, scope: str = "decisions:read decisions:write") -> dict[str, str]:
        claims = {"iss": "https://auth-b.example.nhs.uk", "aud": OAUTH_AUDIENCE,
                  "exp": NOW + 600, "client_id": client_id, "scope": scope}
        return bearer(other.sign(claims))

    assert client.http.get(path, headers=from_b("trust-b")).status_code == 404
    assert client.http.get(path, headers=from_b("trust-tie")).status_code == 401
    assert client.http.get(path, headers=from_b("auditor-app", "audit:read")).status_code == 401


def test_each_refusal_writes_one_token_free_log_line(prod: Client, log_lines: list[str]) -> None:
    token = cds_token(aud=BASE_URL + "/cds-services/other")
    assert call(prod, bearer(token)).status_code == 401
    refusals = [json.loads(line) for line in log_lines if '"auth_refused"' in line]
    assert refusals == [{"event": "auth_refused", "method": "POST", "api": "cds_hooks",
                         "reason": "wrong audience"}]
    assert all(token not in line and token.split(".")[1] not in line for line in log_lines)
