"""`chalice package` with the merge template, offline: table, IAM and error bodies as designed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.decisions.table import ATTRIBUTES, GSI1, KEY_SCHEMA, TTL_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    # Package a copy: chalice caches build output under the project's .chalice/.
    project = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "deployments", "*.pyc")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=ignore)
    shutil.copy(ROOT / "app.py", project / "app.py")
    out = project / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-2"}
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run([str(chalice), "package", str(out), "--stage", "prod", "--merge-template",
                    ".chalice/decisions-table.json"], cwd=project, env=env, check=True,
                   capture_output=True, timeout=300)
    return json.loads((out / "sam.json").read_text()), out / "deployment.zip"


def test_table_is_on_demand_recoverable_encrypted_with_ttl_and_gsi(
        packaged: tuple[dict[str, Any], Path]) -> None:
    table = packaged[0]["Resources"]["DecisionsTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    # The same layout the tests and `pss serve` create (chalicelib/decisions/table.py).
    assert props["KeySchema"] == KEY_SCHEMA
    assert props["AttributeDefinitions"] == ATTRIBUTES
    assert props["GlobalSecondaryIndexes"] == [GSI1]


def test_only_the_api_function_may_touch_the_table_and_only_as_needed(
        packaged: tuple[dict[str, Any], Path]) -> None:
    resources = packaged[0]["Resources"]
    access = resources["DecisionsTableAccess"]["Properties"]
    assert access["Roles"] == [{"Ref": "ApiHandlerRole"}]
    actions = {a for s in access["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert actions == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                       "dynamodb:ConditionCheckItem", "dynamodb:Query"}
    for statement in access["PolicyDocument"]["Statement"]:
        assert "*" not in json.dumps(statement["Resource"])
    for role in ("ApiHandlerRole", "ApiKeyRole"):
        inline = json.dumps(resources[role]["Properties"]["Policies"])
        assert "dynamodb" not in inline


def test_functions_get_table_name_and_secrets(packaged: tuple[dict[str, Any], Path]) -> None:
    resources = packaged[0]["Resources"]
    handler = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert handler["PSS_STAGE"] == "prod"
    assert handler["PSS_DECISIONS_TABLE"] == {"Ref": "DecisionsTable"}
    assert handler["PSS_PSEUDONYM_KEY"].startswith("{{resolve:secretsmanager:")
    authorizer = resources["ApiKey"]["Properties"]["Environment"]["Variables"]
    assert authorizer["PSS_API_KEYS"].startswith("{{resolve:secretsmanager:")


def test_gateway_errors_use_the_design_error_body(packaged: tuple[dict[str, Any], Path]) -> None:
    resources = packaged[0]["Resources"]
    unauthorized = resources["GatewayResponseUnauthorized"]["Properties"]
    assert unauthorized["StatusCode"] == "401"
    body = json.loads(unauthorized["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "unauthorized"


def test_zip_holds_the_app_and_the_library(packaged: tuple[dict[str, Any], Path]) -> None:
    names = set(zipfile.ZipFile(packaged[1]).namelist())
    for needed in ("app.py", "chalicelib/api/wiring.py", "chalicelib/decisions/dynamodb.py",
                   "chalicelib/settings.py"):
        assert needed in names
