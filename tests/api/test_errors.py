"""Every kind of bad request gets a 4xx with the design's error body; store failures get 503."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber
from chalice.test import Client

from chalicelib.api.schemas import ErrorBody
from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from tests.support.api import NHS_NUMBER, FaultyStore, referral
from tests.support.http import get, headers, post


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    ErrorBody.model_validate(response.json_body)
    return response.json_body["error"]  # type: ignore[no-any-return]


def _patient(**changes: Any) -> dict[str, Any]:
    patient = dict(referral()["patient"])
    patient.update(changes)
    return {k: v for k, v in patient.items() if v is not ...}


BAD_REQUESTS = [
    ("invalid JSON", b'{"date": "2025-06-01",', "body"),
    ("not UTF-8", b'{"date": "\xff"}', "body"),
    ("NaN literal", b'{"date": NaN}', "body"),
    ("empty body", b"", "body"),
    ("array body", b"[1, 2]", "body"),
    ("wrong type", referral(procedures="K26.2"), "procedures"),
    ("wrong item type", referral(procedures=[262]), "procedures[0]"),
    ("unknown top-level field", referral(colour="red"), "colour"),
    ("unknown nested field", referral(patient=_patient(height=180)), "patient.height"),
    ("unknown fact", referral(facts={"whoo": 1}), "facts.whoo"),
    ("ill-typed fact", referral(facts={"who": "one"}), "facts.who"),
    ("ill-typed enum fact", referral(facts={"ras_status": "maybe"}), "facts.ras_status"),
    ("unknown attestation", referral(attestations=["mdtt"]), "attestations[0]"),
    ("malformed code", referral(procedures=["K26.2", "XX"]), "procedures[1]"),
    ("malformed diagnosis", referral(diagnoses=["9999"]), "diagnoses[0]"),
    ("missing date", {k: v for k, v in referral().items() if k != "date"}, "date"),
    ("impossible date", referral(date="2025-02-30"), "date"),
    ("date as a number", referral(date=20250601), "date"),
    ("age and birth date disagree",
     referral(patient=_patient(birth_date="1990-01-01")), "patient.age"),
    ("neither age nor birth date", referral(patient=_patient(age=...)), "patient"),
    ("invalid NHS number", referral(patient=_patient(nhs_number="9434765918")),
     "patient.nhs_number"),
    ("unknown region", referral(patient=_patient(region="Atlantis")), "patient.region"),
    ("negative age", referral(patient=_patient(age=-1)), "patient.age"),
]


@pytest.mark.parametrize(("name", "body", "field"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_are_400_with_the_field_path(client: Client, name: str, body: Any,
                                                  field: str) -> None:
    for path in ("/v1/decisions", "/v1/decisions?dry_run=true"):
        error = _error(post(client, path, body), 400)
        assert error["code"] == "invalid_request"
        assert field in [d["field"] for d in error["details"]], error


def test_invalid_nhs_number_is_not_echoed(client: Client) -> None:
    bad = "9434765918"
    response = post(client, "/v1/decisions", referral(patient=_patient(nhs_number=bad)))
    assert bad not in response.body.decode()


def test_date_before_the_pack_is_422(client: Client) -> None:
    error = _error(post(client, "/v1/decisions", referral(date="2010-01-01")), 422)
    assert error["code"] == "not_covered"
    assert error["details"][0]["field"] == "date"


def test_body_over_256_kib_is_413(client: Client) -> None:
    big = json.dumps(referral(referral_id="x" * (256 * 1024)))
    error = _error(post(client, "/v1/decisions", big), 413)
    assert error["code"] == "payload_too_large"
    assert _error(post(client, "/v1/decisions/01JD0000000000000000000000/versions", big),
                  413)["code"] == "payload_too_large"


def test_body_of_exactly_256_kib_is_not_413(client: Client) -> None:
    raw = json.dumps(referral())
    padded = raw[:-1] + " " * (256 * 1024 - len(raw)) + "}"
    assert len(padded.encode()) == 256 * 1024
    assert post(client, "/v1/decisions", padded).status_code == 201


@pytest.mark.parametrize("key", [None, "", "wrong-key", "key-epr-012345678"])
def test_missing_or_invalid_key_is_401(client: Client, key: str | None) -> None:
    sent = {"content-type": "application/json"} | ({"x-api-key": key} if key is not None else {})
    for method, path in (("POST", "/v1/decisions"), ("GET", "/v1/policies"),
                         ("GET", "/v1/decisions/01JD0000000000000000000000")):
        response = client.http.request(method, path, headers=sent,
                                       body=json.dumps(referral()).encode())
        assert _error(response, 401)["code"] == "unauthorized"


def test_health_and_openapi_need_no_key(client: Client) -> None:
    assert client.http.get("/v1/health").status_code == 200
    assert client.http.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("path", ["/v1/decisions/01JD0000000000000000000000",
                                  "/v1/decisions/not-a-ulid",
                                  "/v1/decisions/01JD0000000000000000000000/versions",
                                  "/v1/decisions/01JD0000000000000000000000/versions/1"])
def test_unknown_decision_is_404(client: Client, path: str) -> None:
    assert _error(get(client, path), 404)["code"] == "not_found"


def test_unknown_version_is_404_and_bad_version_400(client: Client) -> None:
    decision_id = post(client, "/v1/decisions", referral()).json_body["decision_id"]
    assert _error(get(client, f"/v1/decisions/{decision_id}/versions/2"), 404)
    for bad in ("0", "abc", "-1", "1.5", "٣"):
        error = _error(get(client, f"/v1/decisions/{decision_id}/versions/{bad}"), 400)
        assert error["details"][0]["field"] == "version"


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/v1/decisions", "POST"),
    ("DELETE", "/v1/decisions", "POST"),
    ("PUT", "/v1/decisions/01JD0000000000000000000000", "GET"),
    ("DELETE", "/v1/decisions/01JD0000000000000000000000/versions", "GET, POST"),
    ("POST", "/v1/health", "GET"),
    ("PATCH", "/v1/policies", "GET"),
])
def test_wrong_method_is_405_with_allow(client: Client, method: str, path: str,
                                        allow: str) -> None:
    response = client.http.request(method, path, headers=headers(), body=b"{}")
    assert _error(response, 405)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == allow


def test_store_failure_is_503_with_retry_after_and_never_recorded(make_client: Any) -> None:
    client = make_client(FaultyStore())
    for response in (post(client, "/v1/decisions", referral()),
                     post(client, "/v1/decisions", referral(), **{"Idempotency-Key": "k"}),
                     get(client, "/v1/decisions/01JD0000000000000000000000"),
                     post(client, "/v1/decisions/01JD0000000000000000000000/versions", {})):
        assert _error(response, 503)["code"] == "store_unavailable"
        assert response.headers["Retry-After"] == "2"
        assert "recorded" not in response.body.decode()


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException",
                                  "ThrottlingException", "InternalServerError",
                                  "ResourceNotFoundException", "AccessDeniedException"])
def test_dynamodb_errors_are_503(make_client: Any, code: str) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name="eu-west-2", aws_access_key_id="x",
                            aws_secret_access_key="x")
    stubber = Stubber(dynamodb)
    stubber.add_client_error("transact_write_items", service_error_code=code,
                             http_status_code=400)
    with stubber:
        client = make_client(DynamoDBDecisionStore(dynamodb, "t"))
        response = post(client, "/v1/decisions", referral())
    error = _error(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert code in error["message"]


def test_broken_pack_is_503_not_500(make_client: Any, settings: Any, tmp_path: Any,
                                    log_lines: list[str]) -> None:
    from dataclasses import replace

    (tmp_path / "bad.pss").write_text("this is not a pack\n")
    client = make_client(None, settings=replace(settings, policy_dir=tmp_path), policy_set=None)
    assert _error(client.http.get("/v1/health"), 503)["code"] == "policy_set_unavailable"
    response = post(client, "/v1/decisions", referral())
    error = _error(response, 503)
    assert error["code"] == "policy_set_unavailable"
    # Why is the operator's: the caller is not told the pack's file and line.
    assert "bad.pss" not in response.body.decode()
    assert error["message"] == "the policy set does not load; the operator's log says why"
    causes = [json.loads(line) for line in log_lines if '"unavailable"' in line]
    assert len(causes) == 1 and "bad.pss" in causes[0]["why"]  # once, not once per request


def test_bad_settings_are_503_naming_no_variable(make_client: Any, log_lines: list[str]) -> None:
    from chalicelib.api import wiring

    client = make_client(None, settings=None)
    wiring.install(wiring.Wiring({"PSS_STAGE": "staging"}, emit=log_lines.append))
    for _ in range(2):  # the health check: routes behind the authorizer answer 401 here
        response = client.http.get("/v1/health")
        error = _error(response, 503)
        assert error["code"] == "misconfigured"
        assert "PSS_" not in response.body.decode() and "staging" not in response.body.decode()
    causes = [json.loads(line) for line in log_lines if '"unavailable"' in line]
    assert len(causes) == 1 and "PSS_STAGE" in causes[0]["why"]


def test_one_log_line_per_request_without_personal_data(client: Client,
                                                        log_lines: list[str]) -> None:
    created = post(client, "/v1/decisions", referral()).json_body
    post(client, "/v1/decisions", referral(patient=_patient(nhs_number="9434765918")))
    client.http.get("/v1/policies")  # 401: no key
    lines = [json.loads(line) for line in log_lines]
    # The 401 is answered by the gateway, before any route: no request line, a refusal line.
    assert [line["event"] for line in lines] == ["request", "request", "auth_refused"]
    first, second, _ = lines
    assert first["route"] == "POST /v1/decisions" and first["status"] == 201
    assert first["decision_id"] == created["decision_id"] and first["client"] == "epr"
    assert isinstance(first["latency_ms"], float)
    assert (second["status"], second["error_code"]) == (400, "invalid_request")
    joined = "\n".join(log_lines)
    for secret in (NHS_NUMBER, "9434765918", "key-epr", "REF-1", "K26.2"):
        assert secret not in joined
