"""The studio over HTTP: `GET /studio`, its static files and JSON endpoints, and the hook
that mounts them on `pss serve`.

In: method, path, lower-cased headers and body of one request (any transport), the use cases
(`StudioService`) and a per-process token. Out: an `Answer` (status, headers, body). Every
answer carries `Content-Security-Policy: default-src 'self'`. The endpoints answer only
requests addressed to a loopback host (against DNS rebinding), carrying the token the page
was served with (another site's page cannot read it), as JSON (a cross-site form cannot send
that) and, when the browser says where they come from, from the page's own origin.

Routes: `GET /studio` (the page), `GET /studio/static/<file>`, `GET /studio/api/files`,
`POST /studio/api/{check,test,decide,what-if,export,save}`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chalicelib.api.http import HttpRequest
from chalicelib.api.logs import AccessLog
from chalicelib.api.replies import ApiError, Reply
from chalicelib.errors import Problem, PssError
from chalicelib.studio.schemas import MAX_BODY_BYTES
from chalicelib.studio.service import Download, StudioService

STATIC_DIR = Path(__file__).resolve().parent / "static"
PREFIX = "/studio"
TOKEN_HEADER = "x-pss-studio-token"
TOKEN_PLACEHOLDER = "__PSS_STUDIO_TOKEN__"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                  ".css": "text/css; charset=utf-8", ".json": "application/json",
                  ".map": "application/json", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Answer:
    """One HTTP answer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def _answer(status: int, content_type: str, body: bytes,
            extra: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, (("Content-Type", content_type), *_SECURITY_HEADERS, *extra), body)


def _json(status: int, data: Any, extra: tuple[tuple[str, str], ...] = ()) -> Answer:
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return _answer(status, "application/json", body, (("Cache-Control", "no-store"), *extra))


def _error(exc: PssError) -> Answer:
    headers = exc.headers if isinstance(exc, ApiError) else {}
    return _json(exc.status, exc.body(), tuple(headers.items()))


class StudioApp:
    """Routes studio requests to the use cases; transport-free (see `mount`)."""

    max_body = MAX_BODY_BYTES

    def __init__(self, service: StudioService, token: str | None = None,
                 static_dir: Path = STATIC_DIR, log: AccessLog | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.service = service
        self.token = token or secrets.token_urlsafe(24)
        self.static_dir = static_dir
        self.log = log
        self.timer = timer
        self._posts: dict[str, Callable[[Any], Reply | Download]] = {
            "check": service.check, "test": service.test, "decide": service.decide,
            "what-if": service.what_if, "export": service.export, "save": service.save,
        }

    @staticmethod
    def handles(target: str) -> bool:
        """True for the paths the studio answers (everything else goes to the API)."""
        path = urlsplit(target).path
        return path == PREFIX or path.startswith(PREFIX + "/")

    def answer(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes) -> Answer:
        """Answer one request; `headers` are lower-cased."""
        started = self.timer()
        path = urlsplit(target).path
        try:
            found = self._route(method, path, headers, body)
        except PssError as exc:  # ApiError and the engine's own errors carry their status
            found = _error(exc)
        except Exception as exc:  # never a traceback to the page
            found = _error(ApiError(500, "internal_error", f"unexpected {type(exc).__name__}"))
        if self.log is not None and path.startswith(PREFIX + "/api/"):
            code = None
            if found.status >= 400:
                code = json.loads(found.body).get("error", {}).get("code")
            self.log.request(route=f"{method} {path}", method=method, status=found.status,
                             latency_ms=(self.timer() - started) * 1000, decision_id=None,
                             client="studio", error_code=code)
        return found

    def _route(self, method: str, path: str, headers: Mapping[str, str],
               body: bytes) -> Answer:
        _loopback_only(headers)
        if path in (PREFIX, PREFIX + "/"):
            _allow(method, "GET")
            return self._page()
        if path.startswith(PREFIX + "/static/"):
            _allow(method, "GET")
            return self._static(path.removeprefix(PREFIX + "/static/"))
        if not path.startswith(PREFIX + "/api/"):
            raise ApiError(404, "not_found", f"no studio route {path}")
        name = path.removeprefix(PREFIX + "/api/")
        if name == "files":
            _allow(method, "GET")
            self._trusted(headers, post=False)
            return _json(200, self.service.files().body.model_dump(mode="json"))
        use_case = self._posts.get(name)
        if use_case is None:
            raise ApiError(404, "not_found", f"no studio route {path}")
        _allow(method, "POST")
        self._trusted(headers, post=True)
        if len(body) > self.max_body:
            raise ApiError(413, "payload_too_large", "the body is too large",
                           [Problem("body", f"must be at most {self.max_body} bytes")])
        result = use_case(HttpRequest("POST", body, headers).json())
        if isinstance(result, Download):
            disposition = f'attachment; filename="{result.filename}"'
            return _answer(200, result.content_type, result.body,
                           (("Content-Disposition", disposition), ("Cache-Control", "no-store")))
        return _json(result.status, result.body.model_dump(mode="json"))

    def _trusted(self, headers: Mapping[str, str], *, post: bool) -> None:
        given = headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            raise ApiError(403, "studio_token", "missing or wrong studio token: reload the page",
                           [Problem(TOKEN_HEADER, "must be the token of the served page")])
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{headers.get('host', '')}":
            raise ApiError(403, "cross_origin", "the studio answers only its own page",
                           [Problem("origin", "must be the studio's own origin")])
        if post and not headers.get("content-type", "").startswith("application/json"):
            raise ApiError(415, "unsupported_media_type", "send JSON",
                           [Problem("content-type", "must be application/json")])

    def _page(self) -> Answer:
        page = self.static_dir / "index.html"
        if not page.is_file():
            raise ApiError(503, "studio_not_built", "the studio page is not built: run "
                           "`make studio` (or `make serve`)")
        html = page.read_text(encoding="utf-8").replace(TOKEN_PLACEHOLDER, self.token)
        return _answer(200, "text/html; charset=utf-8", html.encode("utf-8"),
                       (("Cache-Control", "no-store"),))

    def _static(self, name: str) -> Answer:
        # Only files the build put directly in static/: no sub-paths, no dot files.
        built = {p.name: p for p in self.static_dir.glob("*") if p.is_file()}
        file = built.get(name)
        if file is None or name.startswith(".") or file.suffix not in _CONTENT_TYPES:
            raise ApiError(404, "not_found", f"no studio file {name}")
        return _answer(200, _CONTENT_TYPES[file.suffix], file.read_bytes(),
                       (("Cache-Control", "no-cache"),))


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(405, "method_not_allowed", f"this route allows {allowed}",
                       headers={"Allow": allowed})


def _loopback_only(headers: Mapping[str, str]) -> None:
    host = urlsplit("//" + headers.get("host", "")).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise ApiError(403, "not_loopback", "the studio answers only on this machine's "
                       "loopback address", [Problem("host", "must be 127.0.0.1 or localhost")])


def build_studio(policy_dir: Path, served: Any, *, stage: str, examples_dir: Path | None,
                 log: AccessLog | None = None) -> StudioApp:
    """The studio over the served pack in `policy_dir`; saving is on only in the dev stage,
    from a pack folder outside the installed package (never the Lambda bundle)."""
    from chalicelib.studio.service import read_examples
    from chalicelib.studio.workspace import Workspace

    package = Path(__file__).resolve().parent.parent
    in_package = package == policy_dir.resolve() or package in policy_dir.resolve().parents
    save_dir = policy_dir if stage == "dev" and not in_package else None
    service = StudioService(Workspace.snapshot(served, policy_dir),
                            read_examples(examples_dir) if examples_dir else (), save_dir)
    return StudioApp(service, log=log)


def mount_on_serve(local_server: Any) -> StudioApp:
    """`pss serve`'s one hook: the studio over the pack the API serves, on the same port.
    Example referrals come from `examples/` beside the pack folder, when there is one."""
    from chalicelib.api import wiring

    current = wiring.current()
    policy_dir = current.settings.policy_dir
    studio = build_studio(policy_dir, current.policy_set, stage=current.settings.stage,
                          examples_dir=policy_dir.parent / "examples", log=current.endpoint.log)
    mount(local_server, studio)
    return studio


def mount(local_server: Any, studio: StudioApp) -> None:
    """Serve `studio` from chalice's local server (`pss serve`): its request handler answers
    `/studio` paths from the studio and every other path as before."""
    import functools

    wrapped = local_server.server.RequestHandlerClass  # functools.partial(handler, ...)
    handler_class = wrapped.func

    class StudioHandler(handler_class):  # type: ignore[misc, valid-type]
        def _generic_handle(self) -> None:
            if not studio.handles(self.path):
                super()._generic_handle()
                return
            declared = self.headers.get("content-length", "0") or "0"
            length = int(declared) if declared.isdigit() else -1
            if not 0 <= length <= studio.max_body:
                self.close_connection = True  # the body is not read: drop the connection
                found = _error(ApiError(
                    413 if length > 0 else 400, "payload_too_large" if length > 0 else
                    "invalid_request", "the body is too large or its length is unreadable",
                    [Problem("content-length", f"must be 0 to {studio.max_body} bytes")]))
            else:
                body = self.rfile.read(length) if length > 0 else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                found = studio.answer(self.command, self.path, headers, body)
            self.send_response(found.status)
            for key, value in found.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(found.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(found.body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = (
            _generic_handle)

    local_server.server.RequestHandlerClass = functools.partial(
        StudioHandler, *wrapped.args, **wrapped.keywords)
