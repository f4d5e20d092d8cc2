"""HTTP-level fuzzing of every route: hostile bodies and path parameters never get a 5xx.

For every route the app registers (and every method on it), hypothesis sends raw bodies —
JSON nested deep, numbers of thousands of digits, odd Unicode (lone surrogates, NUL, BOM,
zero-width and right-to-left marks), byte soup — and hostile path parameters, with the API
key. Every answer must be below 500, JSON with the design's error body when it is an error,
and free of traceback text. `make fuzz` runs it longer (`PSS_HTTP_FUZZ_EXAMPLES`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as app_module
from chalicelib.api.schemas import ErrorBody
from tests.support.http import headers

EXAMPLES = int(os.environ.get("PSS_HTTP_FUZZ_EXAMPLES", "40"))
ROUTES = sorted((path, method) for path, entries in app_module.app.routes.items()
                for method in entries)
ODD = ["\ud800", "\udfff", "\0", "\ufeff", "\u200b", "\u202e", "\u00e9", "\U0001f600", "\\",
       '"', "\n", "\r", "/", "..", "%00", "é́", "\u0000\u0001"]


def _deep(opener: str, closer: str, n: int, leaf: str = "1") -> str:
    return opener * n + leaf + closer * n


odd_text = st.lists(st.sampled_from(ODD) | st.text(max_size=8), max_size=6).map("".join)
huge_number = st.integers(1, 6000).map(lambda n: "9" * n)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=20,
)


def _dumps(value: Any) -> str:
    return json.dumps(value)


bodies = st.one_of(
    json_values.map(_dumps),
    st.builds(_deep, st.sampled_from(["[", '{"a":', '{"files":{"policies/x.pss":', '{"date":[']),
              st.just("]"), st.integers(1, 3000)),
    huge_number.map(lambda n: '{"date": "2025-06-01", "patient": {"age": ' + n + "}}"),
    st.builds(lambda name, text: json.dumps({"files": {name: text}, "cases": [{}]}),
              odd_text | st.sampled_from(["policies/a.pss/b.pss", "policies/" + "a" * 300 + ".pss",
                                          "policies/../x.pss", "policies/codes/x.csv"]),
              odd_text | st.integers(1, 3000).map(lambda n: "not " * n)),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
)
path_values = st.one_of(odd_text.filter(bool), huge_number, st.just("01JAAAAAAAAAAAAAAAAAAAAAAA"))


def _balanced(text: str) -> str:
    # `_deep` closes objects with `]`; close each `{` with `}` so depth, not syntax, is tested.
    opened = [c for c in text if c in "[{"]
    return text.rstrip("]") + "".join("}" if c == "{" else "]" for c in reversed(opened))


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: quote(value.encode("utf-8", "surrogatepass"), safe="") or "x", path)


@pytest.fixture
def fuzz_client(make_client: Callable[..., Client], store: Any) -> Client:
    return make_client(store)


@pytest.mark.parametrize(("path", "method"), ROUTES, ids=[f"{m} {p}" for p, m in ROUTES])
def test_no_route_answers_5xx_or_a_traceback(fuzz_client: Client, path: str, method: str) -> None:
    @given(body=bodies, value=path_values)
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def answers_without_crashing(body: str, value: str) -> None:
        raw = _balanced(body).encode("utf-8", errors="surrogatepass")
        response = fuzz_client.http.request(method, _fill(path, value), headers=headers(),
                                            body=raw if method in ("POST", "PUT", "PATCH") else b"")
        text = response.body.decode("utf-8", errors="replace")
        assert response.status_code < 500, (response.status_code, text[:500])
        assert "Traceback" not in text and "RecursionError" not in text
        if response.status_code >= 400:
            ErrorBody.model_validate(json.loads(text))

    answers_without_crashing()
