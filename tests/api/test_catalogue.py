"""Policies, the policy set, the four-factor assessment, health and the OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chalice.test import Client
from openapi_spec_validator import validate

import app as app_module
from chalicelib.api.openapi import OPERATIONS, document
from chalicelib.api.schemas import (
    AssessmentOut,
    HealthOut,
    PolicyListOut,
    PolicySetOut,
    PolicyVersionsOut,
)
from chalicelib.settings import DEV_PUBLIC_BASE_URL
from tests.support.http import get, post

ROOT = Path(__file__).resolve().parents[2]


def test_policies_lists_every_version(client: Client) -> None:
    body = get(client, "/v1/policies").json_body
    PolicyListOut.model_validate(body)
    assert [(p["id"], p["version"]) for p in body["policies"]] == [
        ("NHSCB/A01/P/b", 2), ("NHSCB/A09/P/a", 3)]
    cetux = body["policies"][1]
    assert cetux["when_met"] == {"eligibility": "prior_approval", "route": "Blueteq CET5"}
    assert (cetux["effective_from"], cetux["governs"]) == ("2020-01-01", ["NCBPS13A"])


def test_policy_by_url_encoded_id(client: Client) -> None:
    response = get(client, "/v1/policies/NHSCB%2FA09%2FP%2Fa")
    assert response.status_code == 200
    PolicyVersionsOut.model_validate(response.json_body)
    assert response.json_body["id"] == "NHSCB/A09/P/a"
    assert [v["version"] for v in response.json_body["versions"]] == [3]


def test_unknown_policy_is_404(client: Client) -> None:
    response = get(client, "/v1/policies/NHSCB%2FZ99")
    assert response.status_code == 404
    assert response.json_body["error"]["message"] == "no policy `NHSCB/Z99`"


def test_policy_set(client: Client, pack: object) -> None:
    body = get(client, "/v1/policy-set").json_body
    PolicySetOut.model_validate(body)
    assert body["version"] == "2025.1" and body["covers_from"] == "2013-04-01"
    assert body["digest"] == pack.digest


def test_health(client: Client) -> None:
    body = client.http.get("/v1/health").json_body
    HealthOut.model_validate(body)
    assert body["status"] == "ok" and body["policy_set"]["version"] == "2025.1"


def test_four_factor_assessment(client: Client) -> None:
    response = post(client, "/v1/services/assess", {"patients_nationally": 120})
    assert response.status_code == 200
    body = AssessmentOut.model_validate(response.json_body)
    assert body.prescribed is True
    assert body.factors[0].name == "individuals" and body.factors[0].met is True
    over = post(client, "/v1/services/assess", {"patients_nationally": 5000}).json_body
    assert over["prescribed"] is False


def test_assessment_rejects_unknown_and_ill_typed_inputs(client: Client) -> None:
    for body, field in (({"patients": 3}, "patients"),
                        ({"patients_nationally": "many"}, "patients_nationally")):
        response = post(client, "/v1/services/assess", body)
        assert response.status_code == 400
        assert response.json_body["error"]["details"][0]["field"].endswith(field)
    assert post(client, "/v1/services/assess", [1]).status_code == 400


def test_openapi_document_is_valid_and_complete(client: Client) -> None:
    served = client.http.get("/openapi.json").json_body
    assert served == document(DEV_PUBLIC_BASE_URL)
    validate(served)
    ops = {(m.upper(), p) for p, item in served["paths"].items() for m in item}
    assert len(ops) == len(OPERATIONS) == 15
    post_decision = served["paths"]["/v1/decisions"]["post"]
    assert set(post_decision["responses"]) == {"200", "201", "400", "401", "403", "409",
                                               "413", "422", "500", "503"}
    schema = post_decision["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DecisionRequest"}
    assert served["paths"]["/v1/health"]["get"]["security"] == []


def test_openapi_lists_exactly_the_routes_app_serves() -> None:
    served = {(method, path) for path, methods in app_module.app.routes.items()
              for method, entry in methods.items()
              if not entry.view_name.startswith("not_allowed_")}
    assert served == {(op.method, op.path) for op in OPERATIONS}


def test_authenticated_routes_are_exactly_the_documented_ones() -> None:
    for op in OPERATIONS:
        entry = app_module.app.routes[op.path][op.method]
        assert (entry.authorizer is not None) == op.authenticated, op.path


def test_import_app_needs_no_credentials_and_no_network(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "PSS_POLICY_DIR": str(ROOT / "tests" / "fixtures" / "pack"),
                "PSS_API_KEYS": "epr:k"})
    script = (
        "import json, socket\n"
        "def refuse(*a, **k): raise RuntimeError('network used')\n"
        "socket.socket.connect = refuse\n"
        "import app\n"
        "from chalice.test import Client\n"
        "body = json.dumps({'date': '2025-06-01', 'patient': {'age': 81},"
        " 'procedures': ['K26.2', 'Y53.1']}).encode()\n"
        "with Client(app.app) as c:\n"
        "    r = c.http.post('/v1/decisions?dry_run=true', body=body,"
        " headers={'x-api-key': 'k', 'content-type': 'application/json'})\n"
        "print(r.status_code, r.json_body['eligibility'])\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "200 incomplete"
