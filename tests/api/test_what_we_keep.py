"""What we keep: after every recording route has run against DynamoDB (moto), a scan of the
whole table finds no NHS number and no birth date, and no log line holds either."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.test import Client

from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from tests.api.test_cds_routes import national_pack
from tests.api.test_trust import trust_settings
from tests.cds.conftest import cetuximab_order, hook_request, tavi_order
from tests.decisions.conftest import aws_env, dynamodb  # noqa: F401  (fixtures)
from tests.support.api import KEYS, NHS_NUMBER, TABLE, referral
from tests.support.tokens import bearer, cds_token

BIRTH_DATE = "1944-03-12"  # the CDS fixtures' Patient.birthDate too
SPELLINGS = (NHS_NUMBER, "943 476 5919", "943-476-5919", BIRTH_DATE, "19440312", "12/03/1944")


def _everything_recorded(client: Client) -> None:
    api_key = {"x-api-key": KEYS[0][1], "content-type": "application/json"}
    body = referral(patient={"birth_date": BIRTH_DATE, "sex": "female",
                             "nhs_number": "943 476 5919", "region": "London"})
    created = client.http.post("/v1/decisions", headers={**api_key, "Idempotency-Key": "k1"},
                               body=json.dumps(body))
    assert created.status_code == 201, created.body
    decision_id = json.loads(created.body)["decision_id"]
    redo = client.http.post(f"/v1/decisions/{decision_id}/versions",
                            headers={**api_key, "Idempotency-Key": "k2"},
                            body=json.dumps({"facts": {"who_performance_status": 1}}))
    assert redo.status_code == 201, redo.body
    for headers in (api_key, bearer(cds_token())):
        hook = client.http.post("/cds-services/pss-order-sign", headers=headers, body=json.dumps(
            hook_request(orders=[tavi_order(), cetuximab_order()])))
        assert hook.status_code == 200, hook.body
        assert json.loads(hook.body)["systemActions"]


def test_no_stored_item_or_log_line_holds_an_nhs_number_or_birth_date(
        dynamodb: Any, make_client: Callable[..., Client], log_lines: list[str]) -> None:  # noqa: F811
    store = DynamoDBDecisionStore(dynamodb, TABLE)
    client = make_client(store, settings=trust_settings("dev"), policy_set=national_pack())
    _everything_recorded(client)
    items = [item for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE)
             for item in page["Items"]]
    kinds = {item["entity"]["S"] for item in items}
    assert {"decision_version", "latest_pointer", "idempotency", "once"} <= kinds
    text = json.dumps(items)
    assert [s for s in SPELLINGS if s in text] == []
    versions = [item for item in items if item["entity"]["S"] == "decision_version"]
    assert len(versions) >= 4 and all("nhs_number_hash" in v for v in versions)
    logged = "\n".join(log_lines)
    assert log_lines and [s for s in SPELLINGS if s in logged] == []
