"""The studio's HTTP layer: the page and its headers, static files, and the guards on every
endpoint (loopback host, page token, same origin, JSON only, size, methods)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.logs import AccessLog
from chalicelib.studio.http import STATIC_DIR, TOKEN_HEADER, StudioApp
from chalicelib.studio.service import StudioService

HOST = "127.0.0.1:8000"
TOKEN = "test-token-0123456789"


@pytest.fixture
def built() -> None:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail("the studio page is not built: run `make studio` (make test does)")


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def app(studio: StudioService, log: list[str]) -> StudioApp:
    return StudioApp(studio, token=TOKEN, log=AccessLog(log.append))


def call(app: StudioApp, method: str, path: str, body: Any = None,
         **headers: str) -> tuple[int, dict[str, str], bytes]:
    sent = {"host": HOST, TOKEN_HEADER: TOKEN, "content-type": "application/json"}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    answer = app.answer(method, path, {k: v for k, v in sent.items() if v != "-"}, raw)
    return answer.status, {k.lower(): v for k, v in answer.headers}, answer.body


def error(body: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(body)["error"]
    return data


@pytest.mark.usefixtures("built")
def test_the_page_is_served_with_the_csp_and_its_token(app: StudioApp) -> None:
    status, headers, body = call(app, "GET", "/studio", **{TOKEN_HEADER: "-"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["content-security-policy"].split(";")[0] == "default-src 'self'"
    page = body.decode()
    assert f'content="{TOKEN}"' in page and "__PSS_STUDIO_TOKEN__" not in page
    # Nothing on the page comes from elsewhere: every script and style is under /studio/static.
    assert "http://" not in page and "https://" not in page and "<style" not in page


@pytest.mark.usefixtures("built")
def test_static_files_are_served_and_nothing_else(app: StudioApp) -> None:
    status, headers, body = call(app, "GET", "/studio/static/studio.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert body == (STATIC_DIR / "studio.js").read_bytes()
    for path in ("/studio/static/../http.py", "/studio/static/%2e%2e/http.py",
                 "/studio/static/nothing.js", "/studio/static/"):
        assert call(app, "GET", path)[0] == 404, path


def test_the_page_says_how_to_build_it_when_missing(studio: StudioService,
                                                    tmp_path: Path) -> None:
    app = StudioApp(studio, token=TOKEN, static_dir=tmp_path)
    status, headers, body = call(app, "GET", "/studio")
    assert status == 503 and "make studio" in error(body)["message"]
    assert "content-security-policy" in headers


def test_an_endpoint_answers_with_the_token(app: StudioApp, log: list[str]) -> None:
    status, headers, body = call(app, "POST", "/studio/api/check", {"files": {}})
    assert status == 200 and json.loads(body)["ok"] is True
    assert headers["cache-control"] == "no-store"
    assert json.loads(log[-1])["route"] == "POST /studio/api/check"


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({TOKEN_HEADER: "-"}, 403, "studio_token"),
    ({TOKEN_HEADER: "wrong"}, 403, "studio_token"),
    ({"host": "evil.example:8000"}, 403, "not_loopback"),  # DNS rebinding
    ({"host": "-"}, 403, "not_loopback"),
    ({"origin": "http://evil.example"}, 403, "cross_origin"),
    ({"content_type": "text/plain"}, 415, "unsupported_media_type"),  # a cross-site form
])
def test_requests_from_elsewhere_are_refused(app: StudioApp, headers: dict[str, str],
                                             status: int, code: str) -> None:
    got, answer_headers, body = call(app, "POST", "/studio/api/check", {"files": {}}, **headers)
    assert (got, error(body)["code"]) == (status, code)
    assert "content-security-policy" in answer_headers


def test_the_same_origin_is_accepted(app: StudioApp) -> None:
    assert call(app, "POST", "/studio/api/check", {"files": {}}, origin=f"http://{HOST}")[0] == 200


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/studio/api/check", 405), ("POST", "/studio/api/files", 405),
    ("POST", "/studio", 405), ("GET", "/studio/api/nothing", 404), ("GET", "/studio/x", 404),
])
def test_wrong_methods_and_paths(app: StudioApp, method: str, path: str, status: int) -> None:
    assert call(app, method, path, {"files": {}} if method == "POST" else None)[0] == status


@pytest.mark.parametrize(("raw", "problem"), [
    (b"", "is required"), (b"{not json", "not valid JSON"), (b'{"files": NaN}', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bodies_that_are_not_json_are_400(app: StudioApp, raw: bytes, problem: str) -> None:
    status, _, body = call(app, "POST", "/studio/api/check", raw)
    assert status == 400
    [detail] = error(body)["details"]
    assert detail["field"] == "body" and problem in detail["problem"]


def test_a_body_over_the_limit_is_413(app: StudioApp) -> None:
    app.max_body = 1024
    status, _, body = call(app, "POST", "/studio/api/check", b"{" + b" " * 2000 + b"}")
    assert status == 413 and error(body)["details"][0]["field"] == "body"


def test_an_unexpected_failure_is_a_500_without_a_traceback(studio: StudioService) -> None:
    class Broken(StudioService):
        def check(self, raw: Any) -> Any:
            raise RuntimeError("secret detail")

    app = StudioApp(Broken(studio.workspace), token=TOKEN)
    status, _, body = call(app, "POST", "/studio/api/check", {"files": {}})
    assert status == 500 and b"secret" not in body and error(body)["code"] == "internal_error"


def test_downloads_are_attachments(app: StudioApp, studio: StudioService) -> None:
    text = studio.workspace.texts["policies/pack.pss"] + "# a comment\n"
    status, headers, body = call(app, "POST", "/studio/api/export",
                                 {"files": {"policies/pack.pss": text}, "format": "diff"})
    assert status == 200 and headers["content-type"].startswith("text/x-diff")
    assert headers["content-disposition"] == 'attachment; filename="pss-studio.diff"'
    assert b"+# a comment\n" in body


def test_files_needs_the_token_too(app: StudioApp) -> None:
    assert call(app, "GET", "/studio/api/files", **{TOKEN_HEADER: "-"})[0] == 403
    status, _, body = call(app, "GET", "/studio/api/files")
    assert status == 200 and json.loads(body)["pack"]["folder"] == "policies"
