"""Real keys and signed JWTs for the trust tests: an EHR (RSA and EC keys) and an OAuth issuer.

Keys are generated once per test session with `cryptography`; tokens are signed with PyJWT,
exactly as an EHR or an authorization server would sign them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from chalicelib.settings import CdsClient, OAuthIssuer
from tests.support.api import START

BASE_URL = "https://pss.example.nhs.uk/api"
EHR_ISS = "https://ehr-a.example.nhs.uk"
EHR_CLIENT = "epr-a"
EHR_FHIR = "https://fhir.ehr-a.example.nhs.uk/r4"
OAUTH_ISS = "https://auth.example.nhs.uk"
OAUTH_AUDIENCE = "https://pss.example.nhs.uk/api"
NOW = int(START.timestamp())


@dataclass(frozen=True)
class Signer:
    """One private key, its `kid` and algorithm."""

    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS384" else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": self.kid, "typ": "JWT", **header})


@cache
def rsa_signer(kid: str = "ehr-rsa-1") -> Signer:
    return Signer(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@cache
def ec_signer(kid: str = "ehr-ec-1") -> Signer:
    return Signer(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


def jwks(*signers: Signer) -> dict[str, Any]:
    return {"keys": [s.public_jwk() for s in signers]}


def ehr_client(**changes: Any) -> CdsClient:
    """The trusted EHR as `PSS_CDS_CLIENTS` would configure it (inline JWKS)."""
    data: dict[str, Any] = {"client_id": EHR_CLIENT, "iss": EHR_ISS,
                            "jwks": jwks(rsa_signer(), ec_signer()), "fhir_servers": [EHR_FHIR]}
    data.update(changes)
    return CdsClient.model_validate(data)


def oauth_issuer(**changes: Any) -> OAuthIssuer:
    data: dict[str, Any] = {"iss": OAUTH_ISS, "jwks": jwks(rsa_signer("auth-rsa-1")),
                            "audience": OAUTH_AUDIENCE}
    data.update(changes)
    return OAuthIssuer.model_validate(data)


def cds_claims(path: str = "/cds-services/pss-order-sign", **changes: Any) -> dict[str, Any]:
    """The claims CDS Hooks 2.0 requires of an EHR's call to one service."""
    claims: dict[str, Any] = {"iss": EHR_ISS, "sub": EHR_CLIENT, "aud": BASE_URL + path,
                              "exp": NOW + 240, "iat": NOW, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def cds_token(signer: Signer | None = None, **changes: Any) -> str:
    return (signer or rsa_signer()).sign(cds_claims(**changes))


def oauth_token(scope: str = "decisions:write decisions:read", client: str = "trust-tie",
                **changes: Any) -> str:
    claims: dict[str, Any] = {"iss": OAUTH_ISS, "aud": OAUTH_AUDIENCE, "exp": NOW + 3600,
                              "iat": NOW, "client_id": client, "scope": scope,
                              "jti": str(uuid.uuid4())}
    claims.update(changes)
    return rsa_signer("auth-rsa-1").sign({k: v for k, v in claims.items() if v is not None})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "content-type": "application/json"}
