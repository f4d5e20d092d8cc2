"""The OpenAPI document is as strict as the CDS Hooks 2.0 text, and openapi-spec-validator
accepts it (the validator runs in `make test` through this file)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from chalicelib.api.openapi import document

BASE = "https://pss.example.nhs.uk"
# Schemas the document names; optional members' models (Coding, FhirAuthorization…) are inlined.
CDS_SCHEMAS = ("HookResponse", "Card", "Link", "Source", "DisplayedCoding", "Action",
               "Suggestion", "Discovery", "ServiceDescription", "FeedbackAnswer",
               "FeedbackResult", "HookRequest", "OrderContext", "FeedbackRequest",
               "FeedbackEntry")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return document(BASE)


def test_openapi_spec_validator_accepts_the_document(doc: dict[str, Any]) -> None:
    validate(doc)  # raises OpenAPIValidationError listing the first problem


def test_servers_entry_is_the_public_base_url(doc: dict[str, Any]) -> None:
    assert [s["url"] for s in doc["servers"]] == [BASE]


def test_every_operation_has_a_summary_description_and_a_declared_tag(
    doc: dict[str, Any],
) -> None:
    declared = {t["name"] for t in doc["tags"]}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op["summary"] and op["description"], where
            assert op["tags"] and set(op["tags"]) <= declared, where


def test_cds_schemas_never_allow_null(doc: dict[str, Any]) -> None:
    # "Use of JSON": JSON elements SHALL NOT be null; optional ones are omitted.
    schemas = doc["components"]["schemas"]
    for name in CDS_SCHEMAS:
        text = json.dumps(schemas[name])
        assert '"null"' not in text and '"default": null' not in text, name


def test_cds_required_members_follow_the_specification(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "cards" in schemas["HookResponse"]["required"]
    assert {"label", "url", "type"} <= set(schemas["Link"]["required"])
    topic = schemas["Source"]["properties"]["topic"]
    assert topic["title"] == "Coding" and {"code", "system"} <= set(topic["required"])
    assert {"code", "system", "display"} <= set(schemas["DisplayedCoding"]["required"])
    assert {"summary", "indicator", "source", "uuid"} <= set(schemas["Card"]["required"])
    assert schemas["Card"]["properties"]["summary"]["maxLength"] == 139  # "<140-character"
    # optional arrays may be left out but never sent empty
    assert schemas["HookResponse"]["properties"]["systemActions"]["minItems"] == 1
    for name in ("links", "suggestions", "overrideReasons"):
        assert schemas["Card"]["properties"][name]["minItems"] == 1
    assert {"card", "outcome", "outcomeTimestamp"} <= set(schemas["FeedbackEntry"]["required"])


def test_feedback_operation_is_documented(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/cds-services/{service_id}/feedback"]["post"]
    assert op["operationId"] == "cdsFeedback" and op["tags"] == ["cds-hooks"]
    assert {"200", "400", "401", "404"} <= set(op["responses"])


def test_every_response_of_every_operation_declares_the_request_id(doc: dict[str, Any]) -> None:
    header = doc["components"]["headers"]["X-Request-Id"]
    assert header["required"] is True and header["schema"]["type"] == "string"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert "500" in op["responses"], where
            assert "X-Request-Id" in op["responses"]["500"]["description"], where
            for status, response in op["responses"].items():
                assert response["headers"]["X-Request-Id"] == {
                    "$ref": "#/components/headers/X-Request-Id"}, f"{where} {status}"


def test_the_other_declared_headers_are_kept_beside_the_request_id(doc: dict[str, Any]) -> None:
    created = doc["paths"]["/v1/decisions"]["post"]["responses"]
    assert set(created["201"]["headers"]) == {"X-Request-Id", "Location"}
    assert set(created["503"]["headers"]) == {"X-Request-Id", "Retry-After"}
