"""Verify signed JWTs: CDS Hooks 2.0 calls from EHRs and OAuth 2.0 bearer tokens.

In: the compact token, the issuers we trust (`settings.JwtIssuer`), the audience this request
must carry, the current time and a `KeySet` that finds keys by `kid`. Out: the verified claims,
or `TokenRejected` saying why (for tests and metrics; never sent to the caller, never logged
with the token).

Signatures are checked by PyJWT on `cryptography`: no cryptography is written here. We only
choose the key (by `iss` and `kid`, never from a URL the token names) and compare times, so
the injected clock is the one that counts. Only RS384 and ES384 are accepted, as CDS Hooks 2.0
requires: `none`, HMAC (whose "key" would be our public JWKS) and every other algorithm fail
before a key is even looked up.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.settings import JwtIssuer

if TYPE_CHECKING:
    from jwt import PyJWK

# PyJWT (and `cryptography` behind it) is imported by the functions that verify, not here:
# an API-key caller (dev) never needs it, and on Lambda the import (~30 ms) would otherwise
# be paid by every cold start of the API function, which never sees a token itself.

ALGORITHMS = ("RS384", "ES384")
# The key type and curve each algorithm must be used with.
_KEY_TYPES = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}
CLOCK_SKEW = 30  # seconds either way between the signer's clock and ours
MAX_TOKEN_CHARS = 8192
CDS_MAX_LIFETIME = 300  # CDS Hooks: `exp` at most 5 minutes ahead
# JWK members only a private (or symmetric) key has (RFC 7518 section 6).
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

IssuerT = TypeVar("IssuerT", bound=JwtIssuer)
FetchJson = Callable[[str], Mapping[str, Any] | None]


class TokenRejected(Exception):
    """The token is not acceptable; `reason` is a short, token-free phrase."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Profile:
    """What a kind of token must carry beyond a good signature, issuer and audience."""

    required: tuple[str, ...]
    max_lifetime: int | None  # seconds `exp` may be ahead of now; None = no limit


# CDS Hooks 2.0: iss, aud, exp, iat, jti; short-lived. The jti is made single-use by the caller.
CDS_HOOKS = Profile(("iss", "aud", "exp", "iat", "jti"), CDS_MAX_LIFETIME)
# OAuth 2.0 access tokens are reused for their lifetime, so jti is not required or spent.
OAUTH = Profile(("iss", "aud", "exp"), None)


class KeySet:
    """Public keys of the trusted issuers, by `kid`: inline JWKS, or an https URL cached.

    A URL's JWKS is fetched on first use and again when a token names a `kid` it lacks (keys
    rotate), or when the copy is older than `max_age`; refetches are at most one per
    `min_refetch` seconds per URL, so tokens with made-up `kid`s cannot make us hammer it.
    """

    def __init__(self, fetch_json: FetchJson, clock: Callable[[], dt.datetime], *,
                 max_age: int = 3600, min_refetch: int = 60) -> None:
        self._fetch = fetch_json
        self._clock = clock
        self._max_age = max_age
        self._min_refetch = min_refetch
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, Mapping[str, Any]]] = {}
        # Parsed keys by (JWKS object, kid, alg): parsing a JWK costs about 50 µs a call.
        # The JWKS is kept in the value so its id cannot be reused while the entry lives.
        self._parsed: dict[tuple[int, str, str], tuple[Mapping[str, Any], PyJWK | None]] = {}

    def key(self, issuer: JwtIssuer, kid: str, alg: str) -> PyJWK | None:
        """The issuer's key `kid` made for `alg`, or None when it has none that fits."""
        if issuer.jwks is not None:
            return self._pick(issuer.jwks, kid, alg)
        assert issuer.jwks_url is not None  # settings require one of the two
        found = self._pick(self._jwks(issuer.jwks_url, refresh=False), kid, alg)
        if found is None:
            found = self._pick(self._jwks(issuer.jwks_url, refresh=True), kid, alg)
        return found

    def _pick(self, jwks: Mapping[str, Any], kid: str, alg: str) -> PyJWK | None:
        slot = (id(jwks), kid, alg)
        held = self._parsed.get(slot)
        if held is not None and held[0] is jwks:
            return held[1]
        found = _pick(jwks, kid, alg)
        if found is not None or len(self._parsed) < 1024:  # unknown kids cannot fill memory
            with self._lock:
                self._parsed[slot] = (jwks, found)
        return found

    def _jwks(self, url: str, *, refresh: bool) -> Mapping[str, Any]:
        now = self._clock().timestamp()
        with self._lock:
            fetched_at, jwks = self._cached.get(url, (float("-inf"), {}))
            age = now - fetched_at
            stale = age > self._max_age or (refresh and age > self._min_refetch)
            if not stale:
                return jwks
            # Mark the attempt first: a failing JWKS endpoint is also asked only so often.
            self._cached[url] = (now, jwks)
        fresh = self._fetch(url)
        if fresh is not None and isinstance(fresh.get("keys"), list):
            with self._lock:
                self._cached[url] = (now, fresh)
            return fresh
        return jwks


def _pick(jwks: Mapping[str, Any], kid: str, alg: str) -> PyJWK | None:
    import jwt

    kty, crv = _KEY_TYPES[alg]
    for entry in jwks.get("keys", []):
        if not isinstance(entry, Mapping) or entry.get("kid") != kid:
            continue
        if entry.get("kty") != kty or (crv is not None and entry.get("crv") != crv):
            continue
        if entry.get("alg") not in (None, alg) or entry.get("use") not in (None, "sig"):
            continue
        if any(member in entry for member in _PRIVATE_MEMBERS):
            # A private key published by mistake: PyJWT cannot verify with one (it would
            # crash), and whoever published it has lost it anyway.
            continue
        try:
            return jwt.PyJWK(dict(entry), algorithm=alg)
        except jwt.PyJWTError:
            return None  # a key that does not parse verifies nothing
    return None


def verify(token: str, *, issuers: Mapping[str, IssuerT], audience: Callable[[IssuerT], str],
           keys: KeySet, now: dt.datetime, profile: Profile) -> tuple[IssuerT, dict[str, Any]]:
    """The trusted issuer and claims of `token` when it is acceptable; else `TokenRejected`.

    `audience` gives the `aud` required of tokens from an issuer (a CDS service's URL, or
    the audience configured for an OAuth issuer).
    """
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenRejected("malformed")
    import jwt

    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("malformed") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRejected("algorithm not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("no kid")
    iss = unverified.get("iss")
    issuer = issuers.get(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise TokenRejected("issuer not trusted")
    key = keys.key(issuer, kid, str(alg))
    if key is None:
        raise TokenRejected("unknown kid")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[str(alg)], audience=audience(issuer), issuer=issuer.iss,
            # Times are checked below against the injected clock, not PyJWT's time.time().
            options={"require": list(profile.required), "verify_exp": False,
                     "verify_nbf": False, "verify_iat": False})
    except jwt.InvalidAudienceError:
        raise TokenRejected("wrong audience") from None
    except jwt.PyJWTError:
        raise TokenRejected("signature or claims invalid") from None
    _check_times(claims, int(now.timestamp()), profile)
    return issuer, claims


def _check_times(claims: Mapping[str, Any], now: int, profile: Profile) -> None:
    exp = _epoch(claims, "exp")
    if exp is None:
        raise TokenRejected("`exp` is not a time")
    if exp <= now - CLOCK_SKEW:
        raise TokenRejected("expired")
    if profile.max_lifetime is not None and exp > now + profile.max_lifetime + CLOCK_SKEW:
        raise TokenRejected("expires too far ahead")
    for name in ("nbf", "iat"):
        moment = _epoch(claims, name)
        if name in claims and moment is None:
            raise TokenRejected(f"`{name}` is not a time")
        if moment is not None and moment > now + CLOCK_SKEW:
            raise TokenRejected("not yet valid")


def _epoch(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON's NaN / Infinity: not a time (and int() of one would raise)
    return int(value)


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth scopes: the space-separated `scope` claim (RFC 8693), or an `scp` list."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, Sequence) and not isinstance(scp, str):
        return frozenset(s for s in scp if isinstance(s, str))
    return frozenset()
