"""`http_fetch` against a small FHIR server on loopback (http.server in a thread, free port)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.cds import http_fetch
from chalicelib.cds.service import ORDER_SIGN
from tests.cds.conftest import (
    TOKEN,
    Recorder,
    cetuximab_order,
    condition,
    conditions_bundle,
    hook_request,
    patient,
    run,
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


def test_the_hook_fetches_the_missing_patient_with_the_bearer_token(
    fhir_server: str, recorder: Recorder
) -> None:
    body = hook_request(orders=[cetuximab_order()], prefetch={}, with_server=True)
    body["fhirServer"] = fhir_server
    status, answer = run(ORDER_SIGN, body, recorder, http_fetch.make_fetch(timeout=2))
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
    found = http_fetch.fetch(fhir_server + "/", TOKEN, "/Patient/example")
    assert found is not None and found["birthDate"] == "1961-08-02"


@pytest.mark.parametrize(
    ("server_suffix", "token", "relative"),
    [
        ("", "wrong-token", "Patient/example"),  # 401
        ("", TOKEN, "Patient/nobody"),  # 404
        ("/notjson", TOKEN, "Patient/example"),  # an HTML login page
        ("/redirect", TOKEN, "Patient/example"),  # not followed: it would carry the token
    ],
)
def test_fetch_failures_are_none(
    fhir_server: str, server_suffix: str, token: str, relative: str
) -> None:
    assert http_fetch.fetch(fhir_server + server_suffix, token, relative) is None


def test_redirects_are_not_followed(fhir_server: str) -> None:
    http_fetch.fetch(fhir_server + "/redirect", TOKEN, "Patient/example")
    assert [path for path, _, _ in FhirHandler.seen] == ["/fhir/redirect/Patient/example"]


def test_a_slow_server_times_out_to_none(fhir_server: str) -> None:
    started = time.perf_counter()
    assert http_fetch.fetch(fhir_server + "/slow", TOKEN, "Patient/example", timeout=0.2) is None
    assert time.perf_counter() - started < 0.9


def test_unreachable_or_odd_servers_are_none(fhir_server: str) -> None:
    assert http_fetch.fetch("http://127.0.0.1:1/fhir", TOKEN, "Patient/x", timeout=0.5) is None
    assert http_fetch.fetch("file:///etc", TOKEN, "passwd") is None
    assert http_fetch.fetch("not a url", TOKEN, "Patient/x") is None


def test_the_allow_list_limits_which_servers_are_called(fhir_server: str) -> None:
    allowed = http_fetch.make_fetch(allowed_servers=[fhir_server])
    assert allowed(fhir_server, TOKEN, "Patient/example") is not None
    blocked = http_fetch.make_fetch(allowed_servers=["https://epr.example.nhs.uk/fhir"])
    assert blocked(fhir_server, TOKEN, "Patient/example") is None
    assert FhirHandler.seen and len(FhirHandler.seen) == 1
