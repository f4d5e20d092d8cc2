"""What the JWT check adds per call: the authorizer's decision for an API key, a CDS Hooks JWT
(RS384 and ES384, with the `jti` spent in the in-memory store) and an OAuth bearer token.

Keys are generated here, tokens signed ahead of timing (each call needs a fresh `jti`), and
`Authenticator.authorize` timed alone: median and p95 over 1000 calls. Printed, never asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
import uuid
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from chalicelib.api.auth import Authenticator, Credentials
from chalicelib.api.jwt_check import KeySet
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.settings import CdsClient, OAuthIssuer, Settings

CALLS = 1000
NOW = dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)
BASE = "https://pss.example.nhs.uk"
PATH = "/cds-services/pss-order-sign"
EHR = "https://ehr.example.nhs.uk"
AUTH = "https://auth.example.nhs.uk"


def _jwk(private: object, kid: str, alg: str) -> dict[str, object]:
    kind = RSAAlgorithm if alg == "RS384" else ECAlgorithm
    public = private.public_key()  # type: ignore[attr-defined]
    return {**json.loads(kind.to_jwk(public)), "kid": kid, "alg": alg}


def _timed(calls: list[Callable[[], object]]) -> tuple[float, float]:
    spent = []
    for one in calls:
        started = time.perf_counter()
        one()
        spent.append((time.perf_counter() - started) * 1e6)
    spent.sort()
    return statistics.median(spent), spent[int(len(spent) * 0.95)]


def main() -> list[str]:
    """Median / p95 microseconds per authorizer decision, and what JWTs add over a key."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    keys = {"keys": [_jwk(rsa_key, "r", "RS384"), _jwk(ec_key, "e", "ES384")]}
    settings = Settings(
        stage="dev", public_base_url=BASE, api_keys=(("epr", "k" * 32),),
        cds_clients=(CdsClient(client_id="epr", iss=EHR, jwks=keys),),
        oauth_issuers=(OAuthIssuer(iss=AUTH, jwks=keys, audience=BASE),))
    store = InMemoryDecisionStore()
    auth = Authenticator(settings, KeySet(lambda url: None, lambda: NOW), lambda: store,
                         lambda: NOW)
    epoch = int(NOW.timestamp())

    def cds(private: object, kid: str, alg: str) -> Credentials:
        claims = {"iss": EHR, "aud": BASE + PATH, "exp": epoch + 240, "iat": epoch,
                  "jti": str(uuid.uuid4())}
        token = jwt.encode(claims, private, algorithm=alg, headers={"kid": kid})  # type: ignore[arg-type]
        return Credentials("POST", PATH, (f"Bearer {token}",))

    oauth_token = jwt.encode({"iss": AUTH, "aud": BASE, "exp": epoch + 3600, "iat": epoch,
                              "client_id": "tie", "scope": "decisions:write"}, rsa_key,
                             algorithm="RS384", headers={"kid": "r"})
    cases: dict[str, list[Credentials]] = {
        "API key": [Credentials("POST", PATH, (), ("k" * 32,))] * CALLS,
        "CDS JWT RS384": [cds(rsa_key, "r", "RS384") for _ in range(CALLS)],
        "CDS JWT ES384": [cds(ec_key, "e", "ES384") for _ in range(CALLS)],
        "OAuth RS384": [Credentials("POST", "/v1/decisions", (f"Bearer {oauth_token}",))] * CALLS,
    }
    results = {name: _timed([lambda c=c: auth.authorize(c) for c in creds])
               for name, creds in cases.items()}
    base = results["API key"][0]
    lines = [f"{name:<14} p50 {p50:8.1f} µs  p95 {p95:8.1f} µs"
             for name, (p50, p95) in results.items()]
    for name in ("CDS JWT RS384", "CDS JWT ES384", "OAuth RS384"):
        lines.append(f"{name} adds {results[name][0] - base:.1f} µs per call over an API key "
                     f"({results[name][0] / base:.0f}×)")
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
