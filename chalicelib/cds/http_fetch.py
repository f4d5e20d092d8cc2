"""A real `fetch` for missing prefetch: GET from the EHR's FHIR server with its bearer token.

In: the call's `fhirServer`, the `fhirAuthorization.access_token`, a relative URL
(`Patient/123`, `Condition?patient=123`). Out: the parsed JSON object, or None on any failure
(not allowed, unreachable, timeout, non-2xx, not JSON, too large, a redirect): missing data is
reported on the cards, never raised, because a slow or broken EHR endpoint must not break the
hook.

`fhirServer` comes from the caller, so it could aim us at internal hosts and collect our
token-bearing requests there. A `FhirFetcher` therefore contacts a server only when:

* it is one of the `fhir_servers` configured for the calling EHR (scheme, host, port, path
  prefix compared after parsing, never as raw strings), over https;
* every address its name resolves to is public: loopback, link-local, private, shared and
  reserved ranges (IPv4-mapped IPv6 included) are refused *after* DNS resolution, and the
  connection goes to the address that was checked, so a second lookup cannot swap it;
* the answer is not a redirect: `http.client` never follows one, so the token goes nowhere
  else.

The resolver is injected (tests need no network); so is the address rule, which only tests
relax, explicitly, to reach a loopback test server.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

DEFAULT_TIMEOUT = 2.0  # per fetch, all of it: two fetches stay well inside CRD's 5 s budget
MAX_BYTES = 5 * 1024 * 1024

Fetch = Callable[[str, str, str], dict[str, Any] | None]
Resolver = Callable[[str, int], Sequence[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (empty when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in found))


# IPv6 prefixes that carry an IPv4 address in their last 32 bits, reaching it through a
# translator (NAT64, SIIT) or by old convention: `is_global` calls some of them global, yet
# 64:ff9b::a00:1 reaches 10.0.0.1 through a VPC's NAT64 gateway.
_EMBEDS_IPV4 = tuple(ipaddress.IPv6Network(n) for n in (
    "64:ff9b::/96",      # NAT64 well-known prefix (RFC 6052)
    "64:ff9b:1::/48",    # NAT64 local-use prefix (RFC 8215)
    "::ffff:0:0:0/96",   # IPv4-translated (RFC 2765, SIIT)
    "::/96",             # IPv4-compatible (deprecated, RFC 4291)
))
# Site-local (deprecated, RFC 3879) is still routed inward by some networks.
_NOT_GLOBAL_V6 = (ipaddress.IPv6Network("fec0::/10"),)


def public_address(address: IpAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private, etc."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is None and any(address in net for net in _EMBEDS_IPV4):
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if mapped is not None:
            return public_address(mapped)
        if any(address in net for net in _NOT_GLOBAL_V6):
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class _Server:
    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash

    @classmethod
    def parse(cls, url: str, schemes: Sequence[str]) -> _Server | None:
        try:
            parts: SplitResult = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        if (parts.scheme not in schemes or not parts.hostname or parts.username is not None
                or parts.password is not None or parts.query or parts.fragment
                or _climbs(parts.path)):
            return None
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname.lower(), port or default,
                   parts.path.rstrip("/"))

    def within(self, prefix: _Server) -> bool:
        return ((self.scheme, self.host, self.port) == (prefix.scheme, prefix.host, prefix.port)
                and (self.path + "/").startswith(prefix.path + "/"))


@dataclass(frozen=True)
class SafeGet:
    """GETs JSON over https from public addresses only, to the address checked, no redirects."""

    resolver: Resolver = system_resolver
    timeout: float = DEFAULT_TIMEOUT
    # Only tests widen these two, to reach a plain-http server on loopback.
    schemes: tuple[str, ...] = ("https",)
    address_ok: Callable[[IpAddress], bool] = public_address
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context, repr=False)
    # The body is read against a deadline (`timeout` after the start), not per read, so a
    # server sending a byte at a time cannot hold the call (or the authorizer) for long.
    clock: Callable[[], float] = time.monotonic

    def url(self, url: str) -> dict[str, Any] | None:
        """GET an absolute URL (e.g. a configured `jwks_url`); None on any failure."""
        parts = urlsplit(url)
        server = _Server.parse(parts._replace(query="").geturl(), self.schemes)
        if server is None:
            return None
        return self.get(server, server.path + (f"?{parts.query}" if parts.query else ""), {})

    def get(self, server: _Server, path: str, headers: dict[str, str]) -> dict[str, Any] | None:
        """GET `path` from `server`; the parsed JSON object or None."""
        deadline = self.clock() + self.timeout
        address = self._address(server)
        if address is None:
            return None
        connection = self._connection(server, address)
        try:
            connection.request("GET", path or "/", headers={
                **headers, "Host": _host_header(server),
                "Accept": "application/fhir+json, application/json"})
            sock = connection.sock  # kept: getresponse() may drop the connection's reference
            response = connection.getresponse()
            if not 200 <= response.status < 300:
                return None  # 3xx included: a redirect is never followed
            raw = self._body(response, sock, deadline)
        except (http.client.HTTPException, OSError, ValueError):
            return None  # timeouts, refused connections and TLS failures are OSErrors
        finally:
            connection.close()
        if raw is None:
            return None
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None  # RecursionError: nested deeper than the parser goes
        return parsed if isinstance(parsed, dict) else None

    def _body(self, response: http.client.HTTPResponse, sock: socket.socket | None,
              deadline: float) -> bytes | None:
        """The body, or None when it is over `MAX_BYTES` or not all in by `deadline`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            if sock is not None:
                sock.settimeout(remaining)
            chunk = response.read1(64 * 1024)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BYTES:
                return None
            chunks.append(chunk)

    def _address(self, server: _Server) -> str | None:
        """The address to connect to, when every address of the host may be contacted."""
        found = []
        for text in self.resolver(server.host, server.port):
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                return None
            if not self.address_ok(address):
                return None  # one internal address is enough to refuse the name
            found.append(str(address))
        return found[0] if found else None

    def _connection(self, server: _Server, address: str) -> http.client.HTTPConnection:
        if server.scheme == "https":
            return _PinnedHttps(server.host, server.port, address, self.timeout, self.tls)
        return _PinnedHttp(server.host, server.port, address, self.timeout)


@dataclass(frozen=True)
class FhirFetcher:
    """Fetches FHIR resources from the servers one EHR is allowed to name, and nowhere else."""

    allowed_servers: tuple[str, ...]
    http: SafeGet = field(default_factory=SafeGet)

    def __call__(self, fhir_server: str, bearer_token: str,
                 relative_url: str) -> dict[str, Any] | None:
        """GET `relative_url` from `fhir_server` with the bearer token; None on any failure."""
        server = self._allowed(fhir_server)
        if server is None:
            return None
        return self.http.get(server, f"{server.path}/{relative_url.lstrip('/')}",
                             {"Authorization": f"Bearer {bearer_token}"})

    def _allowed(self, fhir_server: str) -> _Server | None:
        server = _Server.parse(fhir_server, self.http.schemes)
        if server is None:
            return None
        for prefix in self.allowed_servers:
            allowed = _Server.parse(prefix, self.http.schemes)
            if allowed is not None and server.within(allowed):
                return server
        return None


def _climbs(path: str) -> bool:
    """True when `path` has a `.` or `..` segment, also percent-encoded (even twice) or after
    a backslash: a server normalising it would answer from outside the allowed prefix."""
    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    segments = path.replace("\\", "/").split("/")
    return any(segment in (".", "..") for segment in segments)


def _host_header(server: _Server) -> str:
    default = 443 if server.scheme == "https" else 80
    return server.host if server.port == default else f"{server.host}:{server.port}"


class _PinnedHttp(http.client.HTTPConnection):
    """An HTTP connection to the checked address, whatever the name resolves to later."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHttps(http.client.HTTPSConnection):
    """TLS to the checked address, verifying the certificate for the server's name."""

    def __init__(self, host: str, port: int, address: str, timeout: float,
                 tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def no_fetch(fhir_server: str, bearer_token: str, relative_url: str) -> None:
    """The fetch of a caller with no FHIR server configured: nothing is ever contacted."""
    return None


__all__ = ["DEFAULT_TIMEOUT", "MAX_BYTES", "FhirFetcher", "SafeGet", "no_fetch",
           "public_address", "system_resolver"]
