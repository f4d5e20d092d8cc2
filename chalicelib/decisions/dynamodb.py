"""The DynamoDB `DecisionStore`: one table, the layout of design section 5.

In: a boto3 DynamoDB client (created lazily by `api.wiring`, injectable in tests) and the table
name. Out: as `store.DecisionStore`. The only module that talks to DynamoDB.

| item            | PK                             | SK         |
|-----------------|--------------------------------|------------|
| decision version| DECISION#<id>                  | V#000001   |
| latest pointer  | DECISION#<id>                  | LATEST     |
| idempotency     | IDEMPOTENCY#<client>#<key>     | -          |
| single use      | ONCE#<key>                     | -          |
| (GSI1) referral | GSI1PK REFERRAL#<client>#<ref> | GSI1SK created_at |

JSON documents (`inputs`, `result`) are stored as JSON strings: DynamoDB numbers would turn the
request's floats into Decimals and its nulls into a different type, and neither is queried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.decisions.store import (
    DecisionVersion,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    StoreUnavailable,
    VersionConflict,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

Item = dict[str, "AttributeValueTypeDef"]

LATEST = "LATEST"
GSI1 = "GSI1"

# Errors worth retrying soon; anything else still maps to 503 (never 500) but later.
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException",
              "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
              "TransactionInProgressException"}


# A claim is live while `expires_at > now` (`IdempotencyClaim.live`), so at `expires_at == now`
# it is already free to take over.
_FREE_OR_EXPIRED = "attribute_not_exists(PK) OR expires_at <= :now"


def decision_pk(decision_id: str) -> str:
    """The partition key of a decision's items."""
    return f"DECISION#{decision_id}"


def version_sk(version: int) -> str:
    """The sort key of a version item; zero-padded so versions sort as numbers."""
    return f"V#{version:06d}"


def idempotency_pk(client_id: str, key: str) -> str:
    """The partition key of an idempotency claim, scoped by client."""
    return f"IDEMPOTENCY#{client_id}#{key}"


class DynamoDBDecisionStore:
    """Decisions in one DynamoDB table; every write that must be atomic is one transaction."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- writes ---------------------------------------------------------------------------

    def create(self, first: DecisionVersion, claim: IdempotencyClaim | None,
               now_epoch: int) -> None:
        """Put version 1, the pointer and the claim in one transaction."""
        items: list[TransactWriteItemTypeDef] = [
            self._put(_version_item(first), "attribute_not_exists(PK)"),
            self._put(_pointer_item(first), "attribute_not_exists(PK)"),
        ]
        reasons = self._transact_claiming(items, claim, now_epoch)
        if reasons is None:
            return
        if "ConditionalCheckFailed" in reasons[:2]:
            raise VersionConflict(f"decision `{first.decision_id}` already exists")
        # TransactionConflict: a concurrent transaction touched the same claim; the client's
        # retry (same key) will then find the winner's claim and replay it.
        raise StoreUnavailable("the decision store was busy; retry", retry_after=1)

    def append(self, version: DecisionVersion, claim: IdempotencyClaim | None = None,
               now_epoch: int = 0) -> None:
        """Put version n and move the pointer from n - 1 (and the claim), in one transaction."""
        pointer: TransactWriteItemTypeDef = {"Update": {
            "TableName": self._table,
            "Key": {"PK": {"S": decision_pk(version.decision_id)}, "SK": {"S": LATEST}},
            "UpdateExpression": "SET version = :new, updated_at = :at",
            "ConditionExpression": "version = :previous",
            "ExpressionAttributeValues": {
                ":new": {"N": str(version.version)},
                ":previous": {"N": str(version.version - 1)},
                ":at": {"S": version.created_at},
            },
        }}
        items = [self._put(_version_item(version), "attribute_not_exists(PK)"), pointer]
        if self._transact_claiming(items, claim, now_epoch) is None:
            return
        # A failed condition or a concurrent transaction: either way, someone moved first.
        raise VersionConflict(f"decision `{version.decision_id}` moved on")

    def claim_once(self, key: str, expires_at: int, now_epoch: int) -> bool:
        """A conditional put of `ONCE#<key>`: True when no live claim was there."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={"PK": {"S": f"ONCE#{key}"}, "SK": {"S": "-"}, "entity": {"S": "once"},
                      "expires_at": {"N": str(expires_at)}},
                # An expired claim that TTL has not yet deleted may be taken over.
                ConditionExpression=_FREE_OR_EXPIRED,
                ExpressionAttributeValues={":now": {"N": str(now_epoch)}})
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise _unavailable(exc) from None
        except BotoCoreError as exc:
            raise _unavailable(exc) from None
        return True

    def _transact_claiming(self, items: list[TransactWriteItemTypeDef],
                           claim: IdempotencyClaim | None, now_epoch: int) -> list[str] | None:
        """Run two writes plus the claim (third) in one transaction, as `_transact` does;
        `IdempotencyKeyTaken` when the claim's condition failed."""
        if claim is not None:
            # An expired claim that TTL has not yet deleted may be taken over.
            put = self._put(_claim_item(claim), _FREE_OR_EXPIRED)
            put["Put"]["ExpressionAttributeValues"] = {":now": {"N": str(now_epoch)}}
            items = [*items, put]
        reasons = self._transact(items)
        if reasons is not None and claim is not None and reasons[2] == "ConditionalCheckFailed":
            raise IdempotencyKeyTaken(f"idempotency key `{claim.key}` is already used")
        return reasons

    def _put(self, item: Item, condition: str) -> TransactWriteItemTypeDef:
        return {"Put": {"TableName": self._table, "Item": item,
                        "ConditionExpression": condition}}

    def _transact(self, items: list[TransactWriteItemTypeDef]) -> list[str] | None:
        """Run a transaction; None on success, else the cancellation reason of each item."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise _unavailable(exc) from None
            found = exc.response.get("CancellationReasons", [])
            codes = [str(r.get("Code", "None")) for r in found]
            return codes + ["None"] * (len(items) - len(codes))
        except BotoCoreError as exc:
            raise _unavailable(exc) from None
        return None

    # --- reads ----------------------------------------------------------------------------

    def latest(self, decision_id: str) -> DecisionVersion | None:
        """Follow the pointer to the latest version."""
        pointer = self._get(decision_pk(decision_id), LATEST)
        if pointer is None:
            return None
        return self.get(decision_id, int(pointer["version"]["N"]))

    def get(self, decision_id: str, version: int) -> DecisionVersion | None:
        """One version item, read consistently."""
        item = self._get(decision_pk(decision_id), version_sk(version))
        return _version_from(item) if item is not None else None

    def versions(self, decision_id: str) -> list[DecisionVersion]:
        """Every version item of a decision, oldest first."""
        query = {"KeyConditionExpression": "PK = :pk AND begins_with(SK, :v)",
                 "ExpressionAttributeValues": {":pk": {"S": decision_pk(decision_id)},
                                               ":v": {"S": "V#"}},
                 "ConsistentRead": True}
        return [_version_from(item) for item in self._query(query)]

    def claim(self, client_id: str, key: str, now_epoch: int) -> IdempotencyClaim | None:
        """The live idempotency claim, or None."""
        item = self._get(idempotency_pk(client_id, key), "-")
        if item is None:
            return None
        found = IdempotencyClaim(client_id, key, item["request_digest"]["S"],
                                 item["decision_id"]["S"], int(item["expires_at"]["N"]),
                                 int(item.get("version", {"N": "1"})["N"]))
        return found if found.live(now_epoch) else None

    def by_referral(self, client_id: str, referral_id: str) -> list[DecisionVersion]:
        """Versions recorded by a client for a referral (GSI1, eventually consistent)."""
        query = {"IndexName": GSI1, "KeyConditionExpression": "GSI1PK = :pk",
                 "ExpressionAttributeValues": {":pk": {"S": _referral_pk(client_id,
                                                                         referral_id)}}}
        return [_version_from(item) for item in self._query(query)]

    def _get(self, pk: str, sk: str) -> Item | None:
        try:
            response = self._client.get_item(TableName=self._table, ConsistentRead=True,
                                             Key={"PK": {"S": pk}, "SK": {"S": sk}})
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from None
        return response.get("Item")

    def _query(self, query: dict[str, Any]) -> Iterator[Item]:
        start: dict[str, Any] | None = None
        while True:
            page_args = {**query, **({"ExclusiveStartKey": start} if start else {})}
            try:
                page = self._client.query(TableName=self._table, **page_args)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable(exc) from None
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


def _referral_pk(client_id: str, referral_id: str) -> str:
    return f"REFERRAL#{client_id}#{referral_id}"


def _version_item(v: DecisionVersion) -> Item:
    result = v.result
    policy = result.get("policy") or {}
    policy_set = result.get("policy_set") or {}
    item: Item = {
        "PK": {"S": decision_pk(v.decision_id)},
        "SK": {"S": version_sk(v.version)},
        "entity": {"S": "decision_version"},
        "decision_id": {"S": v.decision_id},
        "version": {"N": str(v.version)},
        "client_id": {"S": v.client_id},
        "created_at": {"S": v.created_at},
        "request_digest": {"S": v.request_digest},
        "inputs": {"S": json.dumps(v.inputs, sort_keys=True)},
        "result": {"S": json.dumps(result, sort_keys=True)},
        # Projections of `result` an auditor can filter on without parsing JSON.
        "outcome": {"S": str(result.get("eligibility"))},
        "commissioner": {"S": str(result.get("commissioner"))},
        "policy_set_version": {"S": str(policy_set.get("version"))},
        "policy_set_digest": {"S": str(policy_set.get("digest"))},
    }
    if policy:
        item["policy_id"] = {"S": str(policy["id"])}
        item["policy_version"] = {"N": str(policy["version"])}
    if v.nhs_number_hash:
        item["nhs_number_hash"] = {"S": v.nhs_number_hash}
    if v.hook_instance:
        item["hook_instance"] = {"S": v.hook_instance}
    if v.referral_id:
        item["referral_id"] = {"S": v.referral_id}
        item["GSI1PK"] = {"S": _referral_pk(v.client_id, v.referral_id)}
        item["GSI1SK"] = {"S": v.created_at}
    return item


def _pointer_item(v: DecisionVersion) -> Item:
    return {"PK": {"S": decision_pk(v.decision_id)}, "SK": {"S": LATEST},
            "entity": {"S": "latest_pointer"}, "version": {"N": str(v.version)},
            "updated_at": {"S": v.created_at}}


def _claim_item(c: IdempotencyClaim) -> Item:
    return {"PK": {"S": idempotency_pk(c.client_id, c.key)}, "SK": {"S": "-"},
            "entity": {"S": "idempotency"}, "client_id": {"S": c.client_id},
            "request_digest": {"S": c.request_digest}, "decision_id": {"S": c.decision_id},
            "expires_at": {"N": str(c.expires_at)}, "version": {"N": str(c.version)}}


def _version_from(item: Item) -> DecisionVersion:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if value is not None else None

    return DecisionVersion(
        decision_id=item["decision_id"]["S"],
        version=int(item["version"]["N"]),
        client_id=item["client_id"]["S"],
        created_at=item["created_at"]["S"],
        request_digest=item["request_digest"]["S"],
        inputs=json.loads(item["inputs"]["S"]),
        result=json.loads(item["result"]["S"]),
        referral_id=text("referral_id"),
        nhs_number_hash=text("nhs_number_hash"),
        hook_instance=text("hook_instance"),
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(exc: ClientError | BotoCoreError) -> StoreUnavailable:
    if isinstance(exc, ClientError):
        code = _code(exc)
        return StoreUnavailable(f"the decision store failed ({code})",
                                retry_after=1 if code in _THROTTLED else 5)
    return StoreUnavailable(f"the decision store is unreachable ({type(exc).__name__})",
                            retry_after=5)
