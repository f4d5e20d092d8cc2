"""`POST /v1/what-if` over HTTP, and the S3 upload handler end to end with moto S3."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from chalicelib import load_policy_set
from chalicelib.api import wiring
from chalicelib.decisions.memory import InMemoryDecisionStore
from chalicelib.settings import Settings
from tests.support.api import KEYS

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
HEADERS = {"x-api-key": KEYS[0][1], "content-type": "application/json"}
ACHD = {"date": "2025-06-01", "patient": {"age": 17}, "diagnoses": ["Q21.1"]}


@pytest.fixture
def national(make_client: Callable[..., Client]) -> Client:
    settings = Settings(api_keys=KEYS, policy_dir=POLICIES, pseudonym_key=b"k")
    return make_client(InMemoryDecisionStore(), settings=settings,
                       policy_set=load_policy_set(POLICIES))


def test_what_if_reports_what_a_changed_threshold_moves(national: Client) -> None:
    cardiac = (POLICIES / "cardiac.pss").read_text(encoding="utf-8")
    assert "age >= 16" in cardiac
    body = {"files": {"policies/cardiac.pss": cardiac.replace("age >= 16", "age >= 18")},
            "cases": [ACHD, {**ACHD, "patient": {"age": 40}}]}
    response = national.http.post("/v1/what-if", headers=HEADERS, body=json.dumps(body))
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert answer["base"]["digest"] != answer["head"]["digest"]
    assert answer["changed"] == 1  # the 17-year-old only; the 40-year-old stays ACHD
    # The served pack is untouched: the same referral still decides as before.
    again = national.http.post("/v1/decisions?dry_run=true", headers=HEADERS,
                               body=json.dumps(ACHD))
    assert json.loads(again.body)["service"] is not None


def test_what_if_with_a_broken_pack_is_a_400_with_diagnostics(national: Client) -> None:
    body = {"files": {"policies/cardiac.pss": "rule broken {"}, "cases": [ACHD]}
    response = national.http.post("/v1/what-if", headers=HEADERS, body=json.dumps(body))
    assert response.status_code == 400
    details = json.loads(response.body)["error"]["details"]
    assert details and details[0]["field"] == "files"
    assert "policies/cardiac.pss:1:" in details[0]["problem"]


def test_what_if_refuses_paths_outside_the_pack(national: Client) -> None:
    body = {"files": {"../app.py": "x"}, "cases": [ACHD]}
    response = national.http.post("/v1/what-if", headers=HEADERS, body=json.dumps(body))
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["details"][0]["field"] == "files.../app.py"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket="batch", CreateBucketConfiguration={
            "LocationConstraint": "eu-west-2"})
        yield client


def test_upload_event_classifies_into_classified(s3: Any) -> None:
    rows = (
        "record_id,setting,activity_date,provider_code,age,sex,region,icb,treatment_function,"
        "primary_diagnosis,secondary_diagnoses,dominant_procedure,other_procedures,drugs,facts,"
        "attestations\n"
        "r1,APC,2020-06-01,RBA,81,2,London,QWE,320,I35.0,,K26.2,Y53.1,,,\n"
        "r2,APC,2020-06-01,RBA,70,2,London,QWE,110,M16.1,,W37.1,,,,\n"
        "r3,APC,not-a-date,RBA,70,2,London,QWE,110,M16.1,,W37.1,,,,\n"
    )
    s3.put_object(Bucket="batch", Key="incoming/june%20list.csv".replace("%20", " "),
                  Body=rows.encode())
    wiring.install(wiring.Wiring({}, settings=Settings(policy_dir=POLICIES),
                                 emit=lambda line: None))
    current = wiring.current()
    current.__dict__["s3"] = s3  # the handler's client, here moto's
    try:
        event = {"Records": [{"s3": {"bucket": {"name": "batch"},
                                     "object": {"key": "incoming/june+list.csv"}}}]}
        assert app_module.classify_upload(event, None) == {"classified": 1}
    finally:
        wiring.install(None)
    summary = json.loads(s3.get_object(Bucket="batch", Key="classified/june list.summary.json")
                         ["Body"].read())
    out = s3.get_object(Bucket="batch", Key="classified/june list.csv")["Body"].read().decode()
    rejects = s3.get_object(Bucket="batch",
                            Key="classified/june list.rejects.csv")["Body"].read().decode()
    assert out.count("\n") == 3 and rejects.count("\n") == 2  # headers + 2 rows, + 1 reject
    assert "nhs_england,7,NCBPS13A" in out and "icb_core" in out
    assert "r3" in rejects
    assert summary["input"] == "incoming/june list.csv"


def test_template_declares_the_batch_bucket_with_least_privilege() -> None:
    template = json.loads((ROOT / ".chalice" / "decisions-table.json").read_text())
    resources = template["Resources"]
    bucket = resources["BatchBucket"]["Properties"]
    (notification,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Function"] == {"Fn::GetAtt": ["ClassifyUpload", "Arn"]}
    rules = {r["Name"]: r["Value"] for r in notification["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": "incoming/", "suffix": ".csv"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    statements = resources["BatchBucketAccess"]["Properties"]["PolicyDocument"]["Statement"]
    grants = {tuple(s["Action"]): s["Resource"][0]["Fn::Sub"].rsplit("/", 2)[-2]
              for s in statements}
    assert grants == {("s3:GetObject",): "incoming",
                      ("s3:PutObject", "s3:AbortMultipartUpload"): "classified"}
    assert resources["BatchBucketAccess"]["Properties"]["Roles"] == [{"Ref": "ClassifyUploadRole"}]
