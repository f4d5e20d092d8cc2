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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

DEFAULT_TIMEOUT = 2.0  # two fetches stay well inside CRD's 5 s budget
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


def public_address(address: IpAddress) -> bool:
    """True for a globally routable unicast address; False for loopback, private, etc."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return public_address(mapped)
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
                or parts.password is not None or parts.query or parts.fragment):
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

    def url(self, url: str) -> dict[str, Any] | None:
        """GET an absolute URL (e.g. a configured `jwks_url`); None on any failure."""
        parts = urlsplit(url)
        server = _Server.parse(parts._replace(query="").geturl(), self.schemes)
        if server is None:
            return None
        return self.get(server, server.path + (f"?{parts.query}" if parts.query else ""), {})

    def get(self, server: _Server, path: str, headers: dict[str, str]) -> dict[str, Any] | None:
        """GET `path` from `server`; the parsed JSON object or None."""
        address = self._address(server)
        if address is None:
            return None
        connection = self._connection(server, address)
        try:
            connection.request("GET", path or "/", headers={
                **headers, "Host": _host_header(server),
                "Accept": "application/fhir+json, application/json"})
            response = connection.getresponse()
            if not 200 <= response.status < 300:
                return None  # 3xx included: a redirect is never followed
            raw = response.read(MAX_BYTES + 1)
        except (http.client.HTTPException, OSError, ValueError):
            return None  # timeouts, refused connections and TLS failures are OSErrors
        finally:
            connection.close()
        if len(raw) > MAX_BYTES:
            return None
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return parsed if isinstance(parsed, dict) else None

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
