"""The decisions table definition for tests and `pss serve` (CloudFormation has its own copy).

In: a DynamoDB client and a table name. Out: the table, created on demand with its GSI and the
TTL attribute of idempotency claims. `.chalice/decisions-table.json` defines the same table for
AWS; `tests/decisions/test_table.py` checks the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeDefinitionTypeDef,
        GlobalSecondaryIndexTypeDef,
        KeySchemaElementTypeDef,
    )

TTL_ATTRIBUTE = "expires_at"

KEY_SCHEMA: list[KeySchemaElementTypeDef] = [{"AttributeName": "PK", "KeyType": "HASH"},
              {"AttributeName": "SK", "KeyType": "RANGE"}]
ATTRIBUTES: list[AttributeDefinitionTypeDef] = [{"AttributeName": name, "AttributeType": "S"}
              for name in ("PK", "SK", "GSI1PK", "GSI1SK")]
GSI1_KEYS: list[KeySchemaElementTypeDef] = [{"AttributeName": "GSI1PK", "KeyType": "HASH"},
             {"AttributeName": "GSI1SK", "KeyType": "RANGE"}]
GSI1: GlobalSecondaryIndexTypeDef = {"IndexName": "GSI1", "KeySchema": GSI1_KEYS,
                                     "Projection": {"ProjectionType": "ALL"}}


def create_table(client: DynamoDBClient, name: str) -> None:
    """Create the table (pay per request) with GSI1 and TTL; do nothing if it exists."""
    if name in client.list_tables()["TableNames"]:
        return
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTES,
        GlobalSecondaryIndexes=[GSI1],
    )
    client.get_waiter("table_exists").wait(TableName=name)
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": TTL_ATTRIBUTE})
