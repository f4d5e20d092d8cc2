"""Store fixtures: the in-memory store, DynamoDB on moto and SQLite on disk, same contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.decisions.dynamodb import DynamoDBDecisionStore
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.decisions.sqlite import SqliteDecisionStore
from chalicelib.decisions.store import DecisionStore
from chalicelib.decisions.table import create_table
from tests.support.api import TABLE


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-2"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def dynamodb(aws_env: None) -> Iterator[Any]:
    import boto3

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-2")
        create_table(client, TABLE)
        yield client


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteDecisionStore]:
    store = SqliteDecisionStore(tmp_path / "decisions.sqlite3")
    yield store
    store.close()


@pytest.fixture(params=["memory", "dynamodb", "sqlite"])
def any_store(request: pytest.FixtureRequest) -> DecisionStore:
    if request.param == "memory":
        return InMemoryDecisionStore()
    if request.param == "sqlite":
        store: DecisionStore = request.getfixturevalue("sqlite_store")
        return store
    return DynamoDBDecisionStore(request.getfixturevalue("dynamodb"), TABLE)
