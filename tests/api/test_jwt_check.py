"""`jwt_check.verify` and the authorizer's reading of events, each refusal for its own reason."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from chalicelib.api import jwt_check
from chalicelib.api.auth import Authenticator, Credentials, Unauthorized, credentials_from_event
from chalicelib.api.jwt_check import CDS_HOOKS, KeySet, TokenRejected, scopes_of, verify
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.settings import Settings
from tests.support.api import START
from tests.support.tokens import (
    BASE_URL,
    EHR_ISS,
    NOW,
    cds_claims,
    cds_token,
    ec_signer,
    ehr_client,
    rsa_signer,
)

AUD = BASE_URL + "/cds-services/pss-order-sign"
ARN = "arn:aws:execute-api:eu-west-2:123456789012:abc123/api/POST/cds-services/pss-order-sign"


def check(token: str, now: dt.datetime = START) -> dict[str, Any]:
    issuers = {EHR_ISS: ehr_client()}
    _, claims = verify(token, issuers=issuers, audience=lambda _: AUD,
                       keys=KeySet(lambda url: None, lambda: now), now=now, profile=CDS_HOOKS)
    return claims


def test_good_tokens_pass_with_either_algorithm() -> None:
    assert check(cds_token(rsa_signer()))["iss"] == EHR_ISS
    assert check(cds_token(ec_signer()))["aud"] == AUD


@pytest.mark.parametrize(("token", "reason"), [
    (lambda: "a.b", "malformed"),
    (lambda: "x" * 9000, "malformed"),
    (lambda: "a.b.c", "malformed"),
    (lambda: cds_token(exp=NOW - 31, iat=NOW - 200), "expired"),
    (lambda: cds_token(exp=NOW + 331), "expires too far ahead"),
    (lambda: cds_token(nbf=NOW + 31), "not yet valid"),
    (lambda: cds_token(iat=NOW + 31, exp=NOW + 100), "not yet valid"),
    (lambda: cds_token(iat="yesterday"), "`iat` is not a time"),
    (lambda: cds_token(aud="https://elsewhere.example"), "wrong audience"),
    (lambda: cds_token(iss="https://ehr-b.example"), "issuer not trusted"),
    (lambda: rsa_signer("nope").sign(cds_claims()), "unknown kid"),
    (lambda: jwt.encode(cds_claims(), rsa_signer().private, algorithm="RS384"), "no kid"),
    (lambda: cds_token(jti=None), "signature or claims invalid"),
    # An EC key published under the RSA key's kid does not verify an RS384 token, nor the
    # reverse: the key type must fit the algorithm.
    (lambda: ec_signer().__class__("ehr-rsa-1", "ES384", ec_signer().private).sign(
        cds_claims()), "unknown kid"),
])
def test_each_refusal_has_its_reason(token: Any, reason: str) -> None:
    with pytest.raises(TokenRejected) as caught:
        check(token())
    assert caught.value.reason == reason


def test_skew_is_small_and_symmetric() -> None:
    assert check(cds_token(exp=NOW - 29, iat=NOW - 200))  # within 30 s of skew
    assert check(cds_token(iat=NOW + 29, exp=NOW + 200))


def test_scopes_from_scope_or_scp() -> None:
    assert scopes_of({"scope": "a b"}) == {"a", "b"}
    assert scopes_of({"scp": ["a", 3]}) == {"a"}
    assert scopes_of({}) == frozenset()


def test_request_events_show_every_copy_of_a_header() -> None:
    event = {"type": "REQUEST", "methodArn": ARN,
             "headers": {"Authorization": "Bearer b"},
             "multiValueHeaders": {"Authorization": ["Bearer a", "Bearer b"],
                                   "X-Api-Key": ["k"]}}
    assert credentials_from_event(event) == Credentials(
        "POST", "/cds-services/pss-order-sign", ("Bearer a", "Bearer b"), ("k",))
    token = credentials_from_event({"type": "TOKEN", "authorizationToken": "Bearer t",
                                    "methodArn": ARN})
    assert token.authorization == ("Bearer t",) and token.api_key == ()


def authenticator(store: InMemoryDecisionStore, **changes: Any) -> Authenticator:
    settings = Settings(stage="prod", public_base_url=BASE_URL, cds_clients=(ehr_client(),),
                        **changes)
    return Authenticator(settings, KeySet(lambda url: None, lambda: START), lambda: store,
                         lambda: START)


def test_a_jti_is_spent_once_per_issuer() -> None:
    store = InMemoryDecisionStore()
    auth = authenticator(store)
    token = cds_token(jti="one")
    credentials = Credentials("POST", "/cds-services/pss-order-sign", (f"Bearer {token}",))
    assert auth.authorize(credentials).client_id == "epr-a"
    with pytest.raises(Unauthorized) as caught:
        auth.authorize(credentials)
    assert caught.value.reason == "jti replayed" and str(caught.value) == "Unauthorized"
    assert store.claim_once(f"jti#{EHR_ISS}#one", NOW + 999, NOW) is False


def test_an_unavailable_replay_check_refuses_the_token() -> None:
    class Down(InMemoryDecisionStore):
        def claim_once(self, key: str, expires_at: int, now_epoch: int) -> bool:
            from chalicelib.decisions.store import StoreUnavailable

            raise StoreUnavailable("down")

    auth = authenticator(Down())
    credentials = Credentials("POST", "/cds-services/pss-order-sign",
                              (f"Bearer {cds_token()}",))
    with pytest.raises(Unauthorized):
        auth.authorize(credentials)


def test_the_jwks_cache_refetches_after_max_age() -> None:
    now = {"t": START}
    calls: list[str] = []
    keys = KeySet(lambda url: calls.append(url) or {"keys": []}, lambda: now["t"], max_age=100)
    issuer = ehr_client(jwks=None, jwks_url="https://ehr-a.example.nhs.uk/jwks")
    assert keys.key(issuer, "k", "RS384") is None
    assert keys.key(issuer, "k", "RS384") is None
    assert len(calls) == 1
    now["t"] = START + dt.timedelta(seconds=101)
    keys.key(issuer, "k", "RS384")
    assert len(calls) == 2
    assert jwt_check.ALGORITHMS == ("RS384", "ES384")


# --- review of issue 9: header tricks, odd claims, keys of the wrong kind ---------------------


@pytest.mark.parametrize("changes", [
    {"exp": float("inf")}, {"exp": float("nan")}, {"iat": float("nan")},
    {"nbf": float("-inf")},
])
def test_non_finite_times_are_refused_not_crashed_on(changes: dict[str, Any]) -> None:
    # JSON parsers accept NaN and Infinity; int() of them raises, which was a 500.
    with pytest.raises(TokenRejected) as caught:
        check(cds_token(**changes))
    assert caught.value.reason.endswith("is not a time")


def test_headers_naming_other_keys_are_ignored() -> None:
    # `jku`, `x5u` and `jwk` would let the token choose its own key: an attacker's key
    # embedded under the real kid does not verify, and no URL the token names is fetched.
    fetched: list[str] = []
    forger = rsa_signer("forger")
    forged = forger.sign(cds_claims(), kid=rsa_signer().kid, jwk=forger.public_jwk(),
                         jku="https://evil.example/jwks", x5u="https://evil.example/cert")
    issuer = ehr_client()
    keys = KeySet(lambda url: fetched.append(url) or None, lambda: START)
    with pytest.raises(TokenRejected):
        verify(forged, issuers={EHR_ISS: issuer}, audience=lambda _: AUD, keys=keys,
               now=START, profile=CDS_HOOKS)
    honest = rsa_signer().sign(cds_claims(), jku="https://evil.example/jwks")
    _, claims = verify(honest, issuers={EHR_ISS: issuer}, audience=lambda _: AUD, keys=keys,
                       now=START, profile=CDS_HOOKS)
    assert claims["iss"] == EHR_ISS and fetched == []


def test_an_ec_key_on_another_curve_or_a_private_key_is_not_used() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    wrong_curve = {**json.loads(ECAlgorithm.to_jwk(p256.public_key())), "kid": "ehr-ec-1"}
    keys = KeySet(lambda url: None, lambda: START)
    assert keys.key(ehr_client(jwks={"keys": [wrong_curve]}), "ehr-ec-1", "ES384") is None
    # A private key published by mistake verified nothing and crashed PyJWT (a 500).
    private = {**json.loads(RSAAlgorithm.to_jwk(rsa_signer().private)), "kid": "ehr-rsa-1"}
    with pytest.raises(TokenRejected) as caught:
        check_with(cds_token(), ehr_client(jwks={"keys": [private]}))
    assert caught.value.reason == "unknown kid"


def check_with(token: str, issuer: Any) -> dict[str, Any]:
    _, claims = verify(token, issuers={EHR_ISS: issuer}, audience=lambda _: AUD,
                       keys=KeySet(lambda url: None, lambda: START), now=START,
                       profile=CDS_HOOKS)
    return claims


@pytest.mark.parametrize("aud", [AUD + "/", AUD.upper(), AUD.replace("https", "http"),
                                 AUD + "?x", BASE_URL])
def test_the_audience_is_matched_exactly(aud: str) -> None:
    with pytest.raises(TokenRejected) as caught:
        check(cds_token(aud=aud))
    assert caught.value.reason == "wrong audience"


def test_a_header_doubled_in_two_spellings_is_seen_twice() -> None:
    # API Gateway keys multiValueHeaders by the name as sent; both spellings are one header.
    event = {"type": "REQUEST", "methodArn": ARN,
             "headers": {"Authorization": "Bearer a", "authorization": "Bearer b"},
             "multiValueHeaders": {"Authorization": ["Bearer a"], "authorization": ["Bearer b"],
                                   "x-api-key": ["k1"], "X-API-KEY": ["k2"]}}
    seen = credentials_from_event(event)
    assert sorted(seen.authorization) == ["Bearer a", "Bearer b"]
    assert sorted(seen.api_key) == ["k1", "k2"]
    single = credentials_from_event({**event, "multiValueHeaders": None})
    assert sorted(single.authorization) == ["Bearer a", "Bearer b"]
    with pytest.raises(Unauthorized):
        authenticator(InMemoryDecisionStore()).authorize(seen)


@pytest.mark.parametrize("failure", [RuntimeError("no region"), KeyError("Item")])
def test_any_failure_of_the_replay_check_refuses_the_token(failure: Exception) -> None:
    # A store that cannot be built, or a claim failing in an unforeseen way: 401, not 500.
    def broken() -> InMemoryDecisionStore:
        raise failure

    auth = Authenticator(Settings(stage="prod", public_base_url=BASE_URL,
                                  cds_clients=(ehr_client(),)),
                         KeySet(lambda url: None, lambda: START), broken, lambda: START)
    credentials = Credentials("POST", "/cds-services/pss-order-sign",
                              (f"Bearer {cds_token()}",))
    with pytest.raises(Unauthorized) as caught:
        auth.authorize(credentials)
    assert caught.value.reason == "the replay check is unavailable"
