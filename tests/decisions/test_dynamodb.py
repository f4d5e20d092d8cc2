"""DynamoDB specifics: the item layout of design section 5 and the mapping of failures."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from chalicelib.decisions.store import StoreUnavailable
from tests.decisions.test_store_contract import ID, NOW, claim, version
from tests.support.api import TABLE


def _items(dynamodb: Any) -> dict[tuple[str, str], dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return {(i["PK"]["S"], i["SK"]["S"]): i for i in items}


def test_item_layout(dynamodb: Any) -> None:
    store = DynamoDBDecisionStore(dynamodb, TABLE)
    store.create(version(1), claim(), NOW)
    store.append(version(2))
    items = _items(dynamodb)
    assert set(items) == {(f"DECISION#{ID}", "V#000001"), (f"DECISION#{ID}", "V#000002"),
                          (f"DECISION#{ID}", "LATEST"), ("IDEMPOTENCY#epr#k", "-")}
    first = items[(f"DECISION#{ID}", "V#000001")]
    assert first["GSI1PK"] == {"S": "REFERRAL#epr#REF-1"}
    assert first["GSI1SK"] == {"S": "2025-06-01T10:00:01.000000Z"}
    assert first["client_id"] == {"S": "epr"}
    assert first["request_digest"] == {"S": "hmac-sha256:1"}
    assert first["nhs_number_hash"] == {"S": "hmac-sha256:abc"}
    assert (first["policy_id"], first["policy_version"]) == ({"S": "P"}, {"N": "2"})
    assert (first["policy_set_version"], first["outcome"]) == ({"S": "2025.1"},
                                                                {"S": "eligible"})
    assert json.loads(first["inputs"]["S"])["facts"] == {"ratio": 0.5}
    assert items[(f"DECISION#{ID}", "LATEST")]["version"] == {"N": "2"}
    idem = items[("IDEMPOTENCY#epr#k", "-")]
    assert idem["expires_at"] == {"N": str(NOW + 10)}
    assert idem["decision_id"] == {"S": ID}


def test_ttl_is_enabled_on_expires_at(dynamodb: Any) -> None:
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


@pytest.mark.parametrize(("method", "code", "retry_after"), [
    ("get_item", "ProvisionedThroughputExceededException", 1),
    ("get_item", "ResourceNotFoundException", 5),
    ("query", "ThrottlingException", 1),
    ("transact_write_items", "InternalServerError", 1),
])
def test_client_errors_become_store_unavailable(method: str, code: str,
                                                retry_after: int) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-2", aws_access_key_id="x",
                          aws_secret_access_key="x")
    store = DynamoDBDecisionStore(client, TABLE)
    calls = {"get_item": lambda: store.latest(ID), "query": lambda: store.versions(ID),
             "transact_write_items": lambda: store.append(version(2))}
    with Stubber(client) as stubber:
        stubber.add_client_error(method, service_error_code=code, http_status_code=400)
        with pytest.raises(StoreUnavailable) as caught:
            calls[method]()
    assert caught.value.retry_after == retry_after


def test_unreachable_endpoint_is_store_unavailable() -> None:
    from botocore.config import Config

    client = boto3.client("dynamodb", region_name="eu-west-2", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="http://127.0.0.1:9",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(StoreUnavailable) as caught:
        DynamoDBDecisionStore(client, TABLE).latest(ID)
    assert isinstance(caught.value.__context__, EndpointConnectionError)
