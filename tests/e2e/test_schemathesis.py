"""schemathesis against the served OpenAPI document: no 5xx, every response as documented.

The local stack of `pss serve` runs in this process on loopback (`chalice local`, the national
pack, decisions recorded in the SQLite store the wiring picks for `PSS_LOCAL_STORE`). For every
operation of `GET /openapi.json`, schemathesis sends valid and invalid requests (with the API
key) and checks: no server error, a documented status code, content type and headers, and a
body that conforms to the documented schema. `make schemathesis` runs longer
(`PSS_SCHEMATHESIS_EXAMPLES`, random seeds); `make test` runs a short derandomized pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.api import wiring
from chalicelib.api.openapi import document
from chalicelib.settings import Settings
from pss_dev.local_stack import chalice_local

ROOT = Path(__file__).resolve().parents[2]
KEY = "schemathesis-key-0123456789"
EXAMPLES = int(os.environ.get("PSS_SCHEMATHESIS_EXAMPLES", "25"))
LONG_RUN = "PSS_SCHEMATHESIS_EXAMPLES" in os.environ
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API on a free loopback port, recording as `pss serve` does; its base URL."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("PSS_POLICY_DIR", raising=False)
        settings_ = Settings(local_store=tmp_path_factory.mktemp("data") / "decisions.sqlite3",
                             policy_dir=ROOT / "policies", api_keys=(("st", KEY),),
                             pseudonym_key=b"schemathesis-pseudonym-key")
        wiring.install(wiring.Wiring({}, settings=settings_, emit=lambda _line: None))
        try:
            with chalice_local("127.0.0.1", 0) as url:
                yield url
        finally:
            wiring.install(None)


def _cases() -> list[Any]:
    """(method, path, mode) per operation of the document `GET /openapi.json` serves; negative
    cases only where there is an input to break (a parameter or a body)."""
    cases = []
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            modes = [GenerationMode.POSITIVE]
            if operation.get("parameters") or operation.get("requestBody") or "{" in path:
                modes.append(GenerationMode.NEGATIVE)
            cases += [pytest.param(method.upper(), path, mode,
                                   id=f"{method.upper()} {path} {mode.value}") for mode in modes]
    return cases


@pytest.fixture(scope="module")
def served_schema(live_api: str) -> Any:
    """The document as served over HTTP, loaded by schemathesis."""
    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    schema.config.update(base_url=live_api)
    return schema


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_operation_answers_as_documented(served_schema: Any, method: str, path: str,
                                               mode: GenerationMode) -> None:
    # schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`) reads a private
    # pytest attribute gone in pytest 9, so the operation's strategy is driven here.
    operation = served_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG_RUN,
              suppress_health_check=list(HealthCheck))
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(headers={"x-api-key": KEY}, checks=CHECKS, timeout=30)

    answers_as_documented()
