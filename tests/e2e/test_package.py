"""`make package` offline: the bundle step, then `chalice package` with the merge template.

One build serves every test here. A copy of the project gets the bundle (`pss bundle --output`),
then loses `grammar/` and `policies/`, as Lambda would: Chalice ships only `app.py`,
`chalicelib/` and `vendor/`. The deployment zip is unzipped into an empty folder and a fresh,
isolated interpreter imports the app from there alone and answers a referral, proving the
grammar and the pack travel inside the zip. The template must hold the table, IAM and error
bodies as designed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.decisions.table import ATTRIBUTES, GSI1, KEY_SCHEMA, TTL_ATTRIBUTE
from chalicelib.dsl.loader import load_pack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Package:
    sam: dict[str, Any]
    zip: Path


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Package:
    # Package a copy: chalice caches build output under the project's .chalice/, and the copy
    # can lose grammar/ and policies/ after bundling, as the deployed function does.
    project = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "deployments", "venv", "*.pyc", "_bundle")
    for folder in ("chalicelib", ".chalice", "grammar", "policies"):
        shutil.copytree(ROOT / folder, project / folder, ignore=ignore)
    shutil.copy(ROOT / "app.py", project / "app.py")
    # No wheels to fetch: the test venv has lark and pydantic, and chalice would otherwise go
    # to PyPI for the root requirements.txt. What is proven is that grammar and pack travel.
    (project / "requirements.txt").write_text("", encoding="utf-8")
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-2"}
    env.pop("PSS_POLICY_DIR", None)
    # `python -m chalicelib.cli` run in the copy is `pss` of the copy (grammar from the copy).
    _run([sys.executable, "-m", "chalicelib.cli", "bundle", "policies",
          "--output", str(project / "chalicelib" / "_bundle")], project, env)
    shutil.rmtree(project / "grammar")
    shutil.rmtree(project / "policies")
    out = project / "out"
    _run([str(Path(sys.executable).parent / "chalice"), "package", str(out), "--stage", "prod",
          "--merge-template", ".chalice/decisions-table.json"], project, env)
    # `make package`'s last step: development-only code (the studio) leaves the zip.
    before = set(zipfile.ZipFile(out / "deployment.zip").namelist())
    assert "chalicelib/studio/__init__.py" in before  # chalice packs all of chalicelib/
    _run([sys.executable, str(ROOT / "tools" / "lambda_zip.py"), str(out / "deployment.zip")],
         project, env)
    return Package(json.loads((out / "sam.json").read_text()), out / "deployment.zip")


def test_make_package_strips_development_only_code() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert "tools/lambda_zip.py build/package/deployment.zip" in recipe


def test_the_studio_is_not_in_the_lambda_zip(packaged: Package) -> None:
    names = zipfile.ZipFile(packaged.zip).namelist()
    assert not [n for n in names if n.startswith("chalicelib/studio")]
    assert not [n for n in names if n.startswith("chalicelib/") and "/__pycache__/" in n]
    assert "chalicelib/api/wiring.py" in names


def test_no_deployed_module_needs_pyarrow_or_pyspark(packaged: Package) -> None:
    """The extras are never in the package: a module importing them at its top could only
    fail there (`pss batch`'s guarded probe for pyarrow, inside a function, is fine)."""
    archive = zipfile.ZipFile(packaged.zip)
    ours = [n for n in archive.namelist() if n.endswith(".py") and n.startswith(
        ("chalicelib/", "app.py"))]
    needing = [n for n in ours if re.search(rb"^(import|from) (pyarrow|pyspark)\b",
                                            archive.read(n), re.M)]
    assert needing == []
    assert "chalicelib/batch/s3_handler.py" in ours  # the row path stays
    assert not any(n.startswith(("pyarrow/", "pyspark/")) for n in archive.namelist())


def test_table_is_on_demand_recoverable_encrypted_with_ttl_and_gsi(
        packaged: Package) -> None:
    table = packaged.sam["Resources"]["DecisionsTable"]
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
        packaged: Package) -> None:
    resources = packaged.sam["Resources"]
    access = resources["DecisionsTableAccess"]["Properties"]
    assert access["Roles"] == [{"Ref": "ApiHandlerRole"}]
    actions = {a for s in access["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert actions == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                       "dynamodb:ConditionCheckItem", "dynamodb:Query"}
    for statement in access["PolicyDocument"]["Statement"]:
        assert "*" not in json.dumps(statement["Resource"])
    for role in ("ApiHandlerRole", "CallerRole"):
        inline = json.dumps(resources[role]["Properties"]["Policies"])
        assert "dynamodb" not in inline
    # The authorizer may only spend JWT ids: PutItem on `ONCE#` keys, nothing else.
    once = resources["OnceClaimsAccess"]["Properties"]
    assert once["Roles"] == [{"Ref": "CallerRole"}]
    (statement,) = once["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["dynamodb:PutItem"]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ONCE#*"]}}


def test_the_authorizer_sees_every_header_and_is_never_cached(packaged: Package) -> None:
    api = packaged.sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    authorizer = api["securityDefinitions"]["caller"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    assert authorizer["authorizerResultTtlInSeconds"] == 0
    assert "Fn::Sub" in json.dumps(authorizer["authorizerUri"])


def test_functions_get_table_name_and_secrets(packaged: Package) -> None:
    resources = packaged.sam["Resources"]
    handler = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert handler["PSS_STAGE"] == "prod"
    assert handler["PSS_DECISIONS_TABLE"] == {"Ref": "DecisionsTable"}
    assert handler["PSS_PSEUDONYM_KEY"].startswith("{{resolve:secretsmanager:")
    authorizer = resources["Caller"]["Properties"]["Environment"]["Variables"]
    # API keys are for the dev stage only: prod's authorizer gets none.
    assert "PSS_API_KEYS" not in authorizer
    for name in ("PSS_PUBLIC_BASE_URL", "PSS_CDS_CLIENTS", "PSS_OAUTH_ISSUERS",
                 "PSS_AUDIT_CLIENTS"):
        assert authorizer[name] == handler[name] and "Ref" in authorizer[name]
    assert authorizer["PSS_DECISIONS_TABLE"] == {"Ref": "DecisionsTable"}


def test_gateway_errors_use_the_design_error_body(packaged: Package) -> None:
    resources = packaged.sam["Resources"]
    unauthorized = resources["GatewayResponseUnauthorized"]["Properties"]
    assert unauthorized["StatusCode"] == "401"
    body = json.loads(unauthorized["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "unauthorized"
    # Every answer carries X-Request-Id, the gateway's own answers too (API Gateway's id).
    gateway = [r["Properties"] for r in resources.values()
               if r["Type"] == "AWS::ApiGateway::GatewayResponse"]
    assert len(gateway) >= 6
    for response in gateway:
        mapped = response["ResponseParameters"]["gatewayresponse.header.X-Request-Id"]
        assert mapped == "context.requestId", response["ResponseType"]


def test_zip_holds_the_app_and_the_library(packaged: Package) -> None:
    names = set(zipfile.ZipFile(packaged.zip).namelist())
    for needed in ("app.py", "chalicelib/api/wiring.py", "chalicelib/decisions/dynamodb.py",
                   "chalicelib/settings.py"):
        assert needed in names
    assert names >= {"chalicelib/_bundle/pss.lark", "chalicelib/_bundle/DIGEST"}
    packed = {n for n in names if n.startswith("chalicelib/_bundle/policies/")}
    assert list((ROOT / "policies").glob("*.pss"))
    assert {f"chalicelib/_bundle/policies/{p.name}" for p in (ROOT / "policies").glob("*.pss")
            } <= packed
    # The zip is all Lambda gets: nothing may point back at grammar/ or policies/ at the root.
    assert not {n for n in names if n.startswith(("grammar/", "policies/"))}


def test_zip_leaves_out_the_development_tools(packaged: Package) -> None:
    archive = zipfile.ZipFile(packaged.zip)
    names = set(archive.namelist())
    # `pss serve`'s moto stack and `pss synth` live in pss_dev/, which Chalice never ships;
    # so does `pss diff`'s `git archive` extraction; the reference interpreter is a test
    # oracle; the generated-code evaluator is gone.
    assert not {n for n in names if n.startswith(("pss_dev/", "tests/"))}
    for gone in ("chalicelib/local_stack.py", "chalicelib/batch/synth.py",
                 "chalicelib/batch/gitbase.py", "chalicelib/dsl/interpreter.py",
                 "chalicelib/dsl/codegen.py"):
        assert gone not in names
    # No deployed module starts a process (the git extraction was the last that did).
    assert not [n for n in names if n.startswith("chalicelib/") and n.endswith(".py")
                and b"subprocess" in archive.read(n)]
    for kept in ("local_stack.py", "gitbase.py"):
        assert (ROOT / "pss_dev" / kept).exists()  # still in the repository


def test_bundle_digest_is_the_repository_pack(packaged: Package) -> None:
    digest = zipfile.ZipFile(packaged.zip).read("chalicelib/_bundle/DIGEST").decode().strip()
    assert digest == load_pack(ROOT / "policies").digest


# Run by a fresh `python -I` (no PYTHONPATH, no user site, no script or working directory on
# sys.path) in an unrelated directory: the venv's site-packages give chalice, lark and pydantic;
# everything of the project must come from the unzipped folder. chalice's test client is taken
# from the venv before the folder goes on sys.path, because the zip carries only chalice's
# runtime module (`chalice/app.py`), which the app then shares.
CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    from chalice.test import Client

    unzipped, repo, referral = (Path(a).resolve() for a in sys.argv[1:4])
    # Drop the repository from sys.path, but keep a virtualenv that lives inside it (`.venv`).
    sys.path[:] = [p for p in sys.path if "site-packages" in p
                   or not Path(p or ".").resolve().is_relative_to(repo)]
    # An editable install (`pip install -e .`) maps chalicelib to the repository: drop it.
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path.insert(0, str(unzipped))

    import app
    from chalicelib.api import wiring
    from chalicelib.dsl.parser import grammar_path

    with Client(app.app) as client:
        reply = client.http.post(
            "/v1/decisions?dry_run=true", body=referral.read_text(),
            headers={"x-api-key": "key-pkg-0123456789", "content-type": "application/json"})
    project = [m for name, m in sys.modules.items()
               if name == "app" or name.split(".")[0] == "chalicelib"]
    print(json.dumps({
        "status": reply.status_code, "body": json.loads(reply.body),
        "grammar": str(grammar_path()),
        "policy_dir": str(wiring.current().settings.policy_dir),
        "modules": sorted({str(Path(m.__file__).resolve()) for m in project
                           if getattr(m, "__file__", None)}),
    }))
""")


def _decide_in_repo(referral: Path) -> dict[str, Any]:
    from chalice.test import Client

    import app as app_module
    from chalicelib.api import wiring
    from chalicelib.settings import Settings

    settings = Settings(policy_dir=ROOT / "policies", api_keys=(("pkg", "key-pkg-0123456789"),))
    wiring.install(wiring.Wiring({}, settings=settings, emit=lambda _line: None))
    try:
        with Client(app_module.app) as client:
            reply = client.http.post(
                "/v1/decisions?dry_run=true", body=referral.read_text(),
                headers={"x-api-key": "key-pkg-0123456789", "content-type": "application/json"})
    finally:
        wiring.install(None)
    assert reply.status_code == 200, reply.body
    body: dict[str, Any] = json.loads(reply.body)
    return body


def test_unzipped_package_alone_answers_a_referral(packaged: Package,
                                                  tmp_path: Path) -> None:
    unzipped = tmp_path / "lambda"
    unzipped.mkdir()
    zipfile.ZipFile(packaged.zip).extractall(unzipped)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    referral = ROOT / "examples" / "cet5_cetuximab.json"
    env = {"PATH": os.environ.get("PATH", ""), "PSS_STAGE": "dev",
           "PSS_API_KEYS": "pkg:key-pkg-0123456789", "AWS_DEFAULT_REGION": "eu-west-2"}
    done = subprocess.run([sys.executable, "-I", "-c", CHILD, str(unzipped), str(ROOT),
                           str(referral)], cwd=elsewhere, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    root = unzipped.resolve()
    assert seen["modules"] and all(Path(m).is_relative_to(root) for m in seen["modules"]), \
        [m for m in seen["modules"] if not Path(m).is_relative_to(root)]
    assert Path(seen["grammar"]) == root / "chalicelib" / "_bundle" / "pss.lark"
    assert Path(seen["policy_dir"]) == root / "chalicelib" / "_bundle" / "policies"

    assert seen["status"] == 200, seen["body"]
    decision = seen["body"]
    assert decision["service"]["line"] == "NCBPS02B"
    assert decision["policy"]["id"] == "CET5"
    assert decision["eligibility"] == "prior_approval"
    assert decision["recorded"] is False
    assert decision["policy_set"]["digest"] == load_pack(ROOT / "policies").digest
    # The same answer, reason for reason, as the repository's pack gives in process.
    expected = _decide_in_repo(referral)
    assert {**decision, "evaluated_at": None} == {**expected, "evaluated_at": None}
