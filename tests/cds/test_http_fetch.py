"""`http_fetch` against a small FHIR server on loopback (http.server in a thread, free port).

Reaching that server at all needs a fetcher widened on purpose (`LOOPBACK_FOR_TESTS`: http
allowed, any address allowed): the default refuses both, which the allow-list tests show with a
listener that counts every connection it is offered.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.cds import http_fetch
from chalicelib.cds.http_fetch import FhirFetcher, SafeGet, public_address
from chalicelib.cds.service import ORDER_SIGN, handle
from tests.cds.conftest import (
    TODAY,
    TOKEN,
    Recorder,
    cetuximab_order,
    condition,
    conditions_bundle,
    hook_request,
    patient,
)

RESOURCES: dict[str, Any] = {
    "/fhir/Patient/example": patient("1961-08-02", "male"),
    "/fhir/Condition?patient=example": conditions_bundle(condition("C20", "Rectum")),
}


class QuietServer(ThreadingHTTPServer):
    """The test FHIR server; a client that timed out and hung up is expected, not an error."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class FhirHandler(BaseHTTPRequestHandler):
    """Answers GETs from RESOURCES for the right bearer token; a few paths misbehave."""

    seen: list[tuple[str, str | None, str | None]] = []  # noqa: RUF012  # shared by design

    def do_GET(self) -> None:
        FhirHandler.seen.append((self.path, self.headers.get("Authorization"),
                                 self.headers.get("Accept")))
        if self.path == "/fhir/slow/Patient/example":
            time.sleep(1.0)
        if self.path.startswith("/fhir/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/fhir/Patient/example")
            self.end_headers()
            return
        if self.path == "/fhir/large/Patient/example":
            self._send(200, json.dumps({"resourceType": "Patient",
                                        "text": "x" * 400_000}).encode())
            return
        if self.path == "/fhir/deep/Patient/example":
            self._send(200, b"[" * 200_000)  # deeper than any JSON parser recurses
            return
        if self.path == "/fhir/notjson/Patient/example":
            self._send(200, b"<html>login</html>", "text/html")
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, b'{"resourceType":"OperationOutcome"}')
            return
        resource = RESOURCES.get(self.path)
        if resource is None:
            self._send(404, b'{"resourceType":"OperationOutcome"}')
            return
        self._send(200, json.dumps(resource).encode())

    def _send(self, status: int, body: bytes, kind: str = "application/fhir+json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), FhirHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _fresh_log() -> None:
    FhirHandler.seen.clear()


# Set explicitly, here only: plain http, and loopback addresses, to reach the test server.
LOOPBACK_FOR_TESTS = SafeGet(schemes=("http", "https"), address_ok=lambda address: True,
                             timeout=2)


def loopback_fetch(server: str, **options: object) -> FhirFetcher:
    http = SafeGet(**{"schemes": ("http", "https"), "address_ok": lambda address: True,
                      "timeout": 2, **options})  # type: ignore[arg-type]
    return FhirFetcher((server,), http)


def test_the_hook_fetches_the_missing_patient_with_the_bearer_token(
    fhir_server: str, recorder: Recorder
) -> None:
    body = hook_request(orders=[cetuximab_order()], prefetch={}, with_server=True)
    body["fhirServer"] = fhir_server
    status, answer = handle(ORDER_SIGN, body, decide=recorder.decide,
                            fetch=loopback_fetch(fhir_server), today=TODAY)
    assert status == 200
    assert [(path, auth) for path, auth, _ in FhirHandler.seen] == [
        ("/fhir/Patient/example", f"Bearer {TOKEN}"),
        ("/fhir/Condition?patient=example", f"Bearer {TOKEN}"),
    ]
    assert "application/fhir+json" in (FhirHandler.seen[0][2] or "")
    request = recorder.calls[0][0]
    assert request["patient"]["birth_date"] == "1961-08-02"
    assert request["diagnoses"] == ["C18.7", "C20"]
    assert answer["cards"][0]["summary"].endswith("Prior approval via Blueteq CET5")


def test_fetch_returns_the_resource(fhir_server: str) -> None:
    found = loopback_fetch(fhir_server)(fhir_server + "/", TOKEN, "/Patient/example")
    assert found is not None and found["birthDate"] == "1961-08-02"


@pytest.mark.parametrize(
    ("server_suffix", "token", "relative"),
    [
        ("", "wrong-token", "Patient/example"),  # 401
        ("", TOKEN, "Patient/nobody"),  # 404
        ("/notjson", TOKEN, "Patient/example"),  # an HTML login page
        ("/redirect", TOKEN, "Patient/example"),  # not followed: it would carry the token
        ("/deep", TOKEN, "Patient/example"),  # nested too deep to parse: None, not a crash
    ],
)
def test_fetch_failures_are_none(
    fhir_server: str, server_suffix: str, token: str, relative: str
) -> None:
    assert loopback_fetch(fhir_server)(fhir_server + server_suffix, token, relative) is None


def test_redirects_are_not_followed(fhir_server: str) -> None:
    loopback_fetch(fhir_server)(fhir_server + "/redirect", TOKEN, "Patient/example")
    assert [path for path, _, _ in FhirHandler.seen] == ["/fhir/redirect/Patient/example"]


def test_a_slow_server_times_out_to_none(fhir_server: str) -> None:
    started = time.perf_counter()
    fetch = loopback_fetch(fhir_server, timeout=0.2)
    assert fetch(fhir_server + "/slow", TOKEN, "Patient/example") is None
    assert time.perf_counter() - started < 0.9


def test_the_whole_body_must_arrive_within_the_timeout(fhir_server: str) -> None:
    # A clock that moves a second per look: the 400 KB body takes several reads, so the
    # 2.5 s deadline passes before it is all in, however fast the server really is. (The
    # timeout applied to each read alone would let a server drip bytes for ever.)
    ticks = iter(range(10**6))
    dripping = loopback_fetch(fhir_server, timeout=2.5, clock=lambda: float(next(ticks)))
    assert dripping(fhir_server + "/large", TOKEN, "Patient/example") is None
    fetched = loopback_fetch(fhir_server)(fhir_server + "/large", TOKEN, "Patient/example")
    assert fetched is not None and len(fetched["text"]) == 400_000


def test_unreachable_or_odd_servers_are_none() -> None:
    widened = FhirFetcher(("http://127.0.0.1:1/fhir", "file:///etc", "not a url"),
                          LOOPBACK_FOR_TESTS)
    assert widened("http://127.0.0.1:1/fhir", TOKEN, "Patient/x") is None
    assert widened("file:///etc", TOKEN, "passwd") is None
    assert widened("not a url", TOKEN, "Patient/x") is None


# --- the allow-list: only configured servers, https, public addresses -------------------------


class CountingListener:
    """A TCP listener on loopback that counts every connection it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    found = CountingListener()
    yield found
    found.close()


def test_the_allow_list_limits_which_servers_are_called(fhir_server: str) -> None:
    assert loopback_fetch(fhir_server)(fhir_server, TOKEN, "Patient/example") is not None
    blocked = FhirFetcher(("https://epr.example.nhs.uk/fhir",), LOOPBACK_FOR_TESTS)
    assert blocked(fhir_server, TOKEN, "Patient/example") is None
    assert len(FhirHandler.seen) == 1


@pytest.mark.parametrize("asked", [
    "https://epr.example.nhs.uk/fhir-other",  # a sibling path, not under the prefix
    "https://epr.example.nhs.uk.evil.example/fhir",
    "https://epr.example.nhs.uk@evil.example/fhir",  # userinfo
    "https://epr.example.nhs.uk:8443/fhir",  # another port
    "http://epr.example.nhs.uk/fhir",  # not https
    "https://epr.example.nhs.uk/fhir?x=1",
    # Dot segments: under the prefix as text, outside it once the server normalises them.
    "https://epr.example.nhs.uk/fhir/../admin",
    "https://epr.example.nhs.uk/fhir/%2e%2e/admin",
    "https://epr.example.nhs.uk/fhir/%252E%252E/admin",
    "https://epr.example.nhs.uk/fhir/..%5cadmin",
    "https://epr.example.nhs.uk/fhir/./../admin",
])
def test_servers_outside_the_allow_list_are_never_resolved(asked: str) -> None:
    looked_up: list[str] = []
    fetch = FhirFetcher(("https://epr.example.nhs.uk/fhir",),
                        SafeGet(resolver=lambda host, port: looked_up.append(host) or []))
    assert fetch(asked, TOKEN, "Patient/x") is None
    assert looked_up == []


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fe80::1",
    "10.0.0.8", "172.16.4.4", "192.168.1.1", "100.64.0.1", "0.0.0.0", "fc00::1",
    "2002:7f00:0001::1",  # 6to4 wrapping 127.0.0.1
])
def test_a_configured_name_resolving_inward_is_never_contacted(
        address: str, listener: CountingListener) -> None:
    # The configured server's name resolves to an internal address: refused after
    # resolution. Were it contacted, it would reach the listener (loopback, its port).
    fetch = FhirFetcher((f"https://fhir.epr.example.nhs.uk:{listener.port}/r4",),
                        SafeGet(resolver=lambda host, port: ["203.0.113.9", address]))
    assert fetch(f"https://fhir.epr.example.nhs.uk:{listener.port}/r4", TOKEN,
                 "Patient/x") is None
    time.sleep(0.05)
    assert listener.accepted == 0


@pytest.mark.parametrize("host", ["localhost", "127.1", "0x7f000001", "[::ffff:127.0.0.1]",
                                  "127.0.0.1"])
def test_loopback_spellings_are_refused_after_real_resolution(
        host: str, listener: CountingListener) -> None:
    # Even configured (an operator's mistake), loopback is refused: the system resolver turns
    # each spelling into 127.0.0.1 / ::1 (no network needed), and that is checked.
    server = f"https://{host}:{listener.port}/fhir"
    resolved = http_fetch.system_resolver(host.strip("[]"), listener.port)
    assert resolved and not any(public_address(ipaddress.ip_address(a)) for a in resolved)
    assert FhirFetcher((server,))(server, TOKEN, "Patient/x") is None
    time.sleep(0.05)
    assert listener.accepted == 0


@pytest.mark.parametrize("address", [
    "64:ff9b::7f00:1", "64:ff9b::a00:1",  # NAT64 (RFC 6052) to 127.0.0.1, 10.0.0.1
    "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix (RFC 8215) to 169.254.169.254
    "::ffff:0:a00:1",  # IPv4-translated (SIIT) 10.0.0.1
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "fec0::1",  # site-local
])
def test_ipv6_forms_reaching_inward_are_never_connected_to(
        address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # `is_global` calls each of these global; through a translator they reach inside.
    connected: list[object] = []

    def connect(*args: object, **kwargs: object) -> socket.socket:
        connected.append(args)
        raise OSError("the test refuses every connection")

    monkeypatch.setattr(http_fetch.socket, "create_connection", connect)
    assert not public_address(ipaddress.ip_address(address))
    fetch = FhirFetcher(("https://fhir.epr.example.nhs.uk/r4",),
                        SafeGet(resolver=lambda host, port: [address]))
    assert fetch("https://fhir.epr.example.nhs.uk/r4", TOKEN, "Patient/x") is None
    assert connected == []


def test_public_addresses_are_public() -> None:
    assert public_address(ipaddress.ip_address("8.8.8.8"))
    assert public_address(ipaddress.ip_address("2a00:1450:4009:81f::200e"))
    assert not public_address(ipaddress.ip_address("224.0.0.1"))
    assert not public_address(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert public_address(ipaddress.ip_address("64:ff9b::808:808"))  # NAT64 to 8.8.8.8


def test_safe_get_fetches_an_absolute_url_only_over_https(fhir_server: str) -> None:
    assert SafeGet().url(fhir_server + "/Patient/example") is None  # http refused by default
    # Widened, it is sent, with its query and without any token (so this server says 401).
    assert LOOPBACK_FOR_TESTS.url(fhir_server + "/Patient/example?_format=json") is None
    assert [(path, auth) for path, auth, _ in FhirHandler.seen] == [
        ("/fhir/Patient/example?_format=json", None)]
