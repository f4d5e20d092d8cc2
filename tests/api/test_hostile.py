"""Hostile HTTP input: every case of issue 10 is a 4xx naming the field, never a 500.

Deep JSON on every JSON route and the CDS services, a 5,000-digit version, hostile what-if
file names and texts, a pack of 800 same-rank rules. Unexpected errors are a 500 with a
request id that is also in a header and in one structured log line (type and traceback, never
the message or the body).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import load_policy_set
from chalicelib.api.schemas import ErrorBody
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.engine.policy_set import PolicySet
from chalicelib.limits import MAX_JSON_DEPTH, PACK_FILE_RULE
from chalicelib.settings import Settings
from tests.support.api import KEYS, NHS_NUMBER, referral
from tests.support.http import get, post
from tests.support.pack_names import HOSTILE_PACK_FILE_NAMES

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
ACHD = {"date": "2025-06-01", "patient": {"age": 17}, "diagnoses": ["Q21.1"]}
JSON_ROUTES = ["/v1/decisions", "/v1/decisions/01JAAAAAAAAAAAAAAAAAAAAAAA/versions",
               "/v1/services/assess", "/v1/what-if", "/cds-services/pss-order-sign",
               "/cds-services/pss-order-select"]


def _error(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.body
    text = response.body.decode("utf-8", errors="replace")
    assert "Traceback" not in text and "Error:" not in text
    ErrorBody.model_validate(response.json_body)
    return response.json_body["error"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def national_pack() -> PolicySet:
    return load_policy_set(POLICIES)


@pytest.fixture
def national(make_client: Callable[..., Client], national_pack: PolicySet) -> Client:
    settings = Settings(api_keys=KEYS, policy_dir=POLICIES, pseudonym_key=b"k")
    return make_client(InMemoryDecisionStore(), settings=settings, policy_set=national_pack)


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_1000_deep_is_a_400_on_every_json_route(client: Client, route: str,
                                                            opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    error = _error(post(client, route, opener * 1000 + "1" + closer * 1000))
    assert error["details"][0]["field"] == "body"
    assert f"nests deeper than {MAX_JSON_DEPTH} levels" in error["details"][0]["problem"]


def test_json_just_inside_the_depth_limit_is_judged_on_its_content(client: Client) -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH - 2):
        deep = [deep]
    error = _error(post(client, "/v1/decisions", referral(facts={"who": deep})))
    assert error["details"][0]["field"] == "facts.who"  # parsed, then refused as ill-typed


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_5000_digit_number_is_a_400(client: Client, route: str) -> None:
    body = json.dumps(referral()).replace('"age": 81', '"age": ' + "9" * 5000)
    error = _error(post(client, route, body))
    # Named where it is, as every other problem is.
    assert error["details"][0] == {"field": "patient.age",
                                   "problem": "a whole number of more than 18 digits"}
    nested = json.dumps({"cases": [referral(), referral(facts={"n": [1, 2]})]})
    error = _error(post(client, route, nested.replace("[1, 2]", "[1, -" + "9" * 19 + "]")))
    assert error["details"][0]["field"] == "cases[1].facts.n[1]"
    assert _error(post(client, route, "9" * 30))["details"][0]["field"] == "body"


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_member_given_twice_is_a_400_naming_it(client: Client, route: str) -> None:
    # Parsers disagree on which `date` wins; a request that says two things is not read one
    # way. Nested objects too.
    body = json.dumps(referral()).replace('"date":', '"date": "2024-01-01", "date":', 1)
    error = _error(post(client, route, body))
    assert error["details"][0] == {"field": "body",
                                   "problem": "the member `date` is given twice in one object"}
    nested = json.dumps(referral()).replace('"age": 81', '"age": 81, "age": 82', 1)
    assert "`age` is given twice" in _error(post(client, route, nested))["details"][0]["problem"]


def test_a_lone_surrogate_in_a_body_string_is_a_400(client: Client) -> None:
    body = json.dumps(referral(referral_id="REF-\ud800"))
    assert "\\ud800" in body
    error = _error(post(client, "/v1/decisions", body))
    assert "lone UTF-16 surrogate" in error["details"][0]["problem"]


def test_a_5000_digit_version_is_a_400(client: Client) -> None:
    response = get(client, "/v1/decisions/01JAAAAAAAAAAAAAAAAAAAAAAA/versions/" + "9" * 5000)
    assert _error(response)["details"] == [{"field": "version",
                                            "problem": "must be a whole number from 1"}]


@pytest.mark.parametrize("case", list(HOSTILE_PACK_FILE_NAMES))
def test_what_if_file_names_outside_the_allow_list_are_a_400(national: Client, case: str) -> None:
    name = HOSTILE_PACK_FILE_NAMES[case]
    error = _error(post(national, "/v1/what-if", {"files": {name: "x"}, "cases": [ACHD]}))
    [detail] = error["details"]
    assert detail["field"].startswith("files.") and "\0" not in detail["field"]
    assert len(detail["field"]) < 100
    assert detail["problem"] == PACK_FILE_RULE


@pytest.mark.parametrize("name", ["policies/cardiac.pss", "policies/tests/cardiac.pss",
                                  "policies/codes/sact_drugs.csv", "policies/new-file_2.pss"])
def test_what_if_takes_every_name_of_the_packs_layout(national: Client, name: str) -> None:
    text = (POLICIES / name.removeprefix("policies/")).read_text() if "new" not in name else ""
    response = post(national, "/v1/what-if", {"files": {name: text}, "cases": [ACHD]})
    assert response.status_code == 200, response.body
    assert response.json_body["cases"] == 1


def test_a_name_used_as_a_file_and_a_folder_is_a_400(national: Client) -> None:
    files = {"policies/x.pss": "", "policies/x.pss/y.pss": ""}
    error = _error(post(national, "/v1/what-if", {"files": files, "cases": [ACHD]}))
    assert [d["field"] for d in error["details"]] == ["files.policies/x.pss/y.pss"]


def test_a_lone_surrogate_in_a_what_if_text_is_a_400(national: Client) -> None:
    body = {"files": {"policies/cardiac.pss": "# \ud800\n"}, "cases": [ACHD]}
    error = _error(post(national, "/v1/what-if", json.dumps(body)))
    assert "lone UTF-16 surrogate" in error["details"][0]["problem"]


def test_a_nul_in_a_what_if_text_is_a_400(national: Client) -> None:
    body = {"files": {"policies/cardiac.pss": "# \0\n"}, "cases": [ACHD]}
    error = _error(post(national, "/v1/what-if", body))
    assert error["details"][0] == {"field": "files.policies/cardiac.pss",
                                   "problem": "is not valid UTF-8 text: it holds a NUL character "
                                   "at character 2"}


@pytest.mark.parametrize(("text", "message"), [
    ('rule deep "d" { line NCBPS13A rank 9 when ' + "not " * 10_000 + "age >= 1 }\n",
     "nesting deeper than 100"),
    ('rule big "b" { line NCBPS13A rank ' + "9" * 5000 + " when age >= 1 }\n",
     "a number of 5,000 digits is too long"),
])
def test_hostile_what_if_policy_text_is_a_located_400(national: Client, text: str,
                                                      message: str) -> None:
    body = {"files": {"policies/hostile.pss": text}, "cases": [ACHD]}
    error = _error(post(national, "/v1/what-if", body))
    assert error["details"][0]["field"] == "files"
    assert error["details"][0]["problem"].startswith("policies/hostile.pss:1:")
    assert message in error["details"][0]["problem"]


def test_800_same_rank_rules_in_a_what_if_are_one_small_400(national: Client) -> None:
    text = "codeset SAME: opcs4 = K26.2\n" + "".join(
        f'rule r{i} "r" {{ line NCBPS13A rank 1 when dominant procedure in SAME }}\n'
        for i in range(800))
    body = {"files": {"policies/same.pss": text}, "cases": [ACHD]}
    response = post(national, "/v1/what-if", body)
    error = _error(response)
    assert len(response.body) < 10_000
    problems = [d["problem"] for d in error["details"]]
    assert len(problems) == 1 and "rules can match the same activity" in problems[0]
    assert "`r0`, `r1`" in problems[0] and " and 79" in problems[0]  # 800 named by count


def test_an_unexpected_error_is_a_500_with_a_request_id_logged_once(
        make_client: Callable[..., Client], log_lines: list[str]) -> None:
    detail = "store fell over holding " + NHS_NUMBER  # an exception message quoting data

    class Broken(InMemoryDecisionStore):
        def create(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(detail)

    client = make_client(Broken())
    response = post(client, "/v1/decisions", referral())
    error = _error(response, 500)
    request_id = response.headers["X-Request-Id"]
    assert request_id and request_id in error["message"]
    unexpected = [json.loads(x) for x in log_lines if '"unexpected_error"' in x]
    assert len(unexpected) == 1
    line = unexpected[0]
    assert line["request_id"] == request_id and line["type"] == "RuntimeError"
    assert line["route"] == "POST /v1/decisions"
    assert "Traceback (most recent call last)" in line["traceback"]
    assert "in create" in line["traceback"]  # the frame that raised
    everything = "\n".join(log_lines)
    assert NHS_NUMBER not in everything and "fell over" not in everything
    assert "REF-1" not in everything  # nothing of the body


def test_every_answer_carries_a_request_id(client: Client) -> None:
    first = get(client, "/v1/health")
    second = get(client, "/v1/health")
    assert first.headers["X-Request-Id"] and first.headers["X-Request-Id"] != (
        second.headers["X-Request-Id"])


def test_refusals_before_any_use_case_carry_a_request_id_too(client: Client) -> None:
    # The authorizer's 401 (no key, a wrong key) and a 405 from the method table: the OpenAPI
    # document declares X-Request-Id on every response, these included.
    answers = [client.http.post("/v1/decisions", body=b"{}"),
               client.http.get("/v1/policies", headers={"x-api-key": "wrong"}),
               client.http.put("/v1/health", body=b"{}")]
    assert [a.status_code for a in answers] == [401, 401, 405]
    ids = [a.headers.get("X-Request-Id") for a in answers]
    assert all(ids) and len(set(ids)) == 3, ids


def test_what_if_errors_echo_at_most_a_few_hundred_characters_of_the_request(
        national: Client) -> None:
    long_name = "A" + "B" * 100_000
    text = f'rule r "r" {{ line {long_name} rank 1 when age >= 1 }}\n'
    for body in ({"files": {"policies/long.pss": text}, "cases": [ACHD]},
                 {"files": {"policies/" + "x" * 100_000 + ".pss": 5}, "cases": [ACHD]}):
        response = post(national, "/v1/what-if", body)
        error = _error(response)
        assert len(response.body) < 5_000
        assert all(len(d["field"]) <= 510 and len(d["problem"]) <= 510 for d in error["details"])


def test_cds_handle_given_raw_bytes_bounds_them_too() -> None:
    import datetime as dt

    from chalicelib.cds.service import HookRequestError, handle

    with pytest.raises(HookRequestError) as raised:
        handle("pss-order-sign", b"[" * 5000 + b"]" * 5000, decide=lambda *_: {},
               fetch=None, today=dt.date(2025, 6, 1), base_url="https://pss.example.nhs.uk")
    assert raised.value.status == 400 and raised.value.code == "invalid_request"
