"""The S3 handler end to end on moto: incoming/<name>.csv → classified/<name>.*"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.batch.s3_handler import classify_s3_object
from chalicelib.engine.policy_set import PolicySet
from tests.batch.conftest import synth_text

BUCKET = "pss-activity-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        yield client


def _get(s3: Any, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def test_incoming_csv_is_classified_with_rejects_and_summary(s3: Any, pack: PolicySet) -> None:
    data = synth_text(1200, 4, bad_share=0.05)
    s3.put_object(Bucket=BUCKET, Key="incoming/2024/june.csv", Body=data.encode())
    summary = classify_s3_object(s3, BUCKET, "incoming/2024/june.csv", pack)
    classified = list(csv.reader(io.StringIO(_get(s3, "classified/2024/june.csv").decode())))
    rejects = list(csv.reader(io.StringIO(_get(s3, "classified/2024/june.rejects.csv").decode())))
    stored = json.loads(_get(s3, "classified/2024/june.summary.json"))
    rows_in = len(list(csv.reader(io.StringIO(data)))) - 1
    assert rows_in == 1200 == (len(classified) - 1) + (len(rejects) - 1)
    assert stored == summary
    assert (summary["rows_in"], summary["rows_out"], summary["rejects"]) == (1200, len(classified) - 1, len(rejects) - 1)
    assert summary["rejects"] > 0
    assert summary["evaluator"].startswith("row")  # pyarrow is not in the Lambda package
    assert classified[0][-9:] == ["commissioner", "service_id", "service_line", "policy_id", "policy_version", "eligibility", "route", "missing", "verified"]


def test_unusable_file_gets_a_summary_with_the_error(s3: Any, pack: PolicySet) -> None:
    s3.put_object(Bucket=BUCKET, Key="incoming/bad.csv", Body=b"a,b\n1,2\n")
    summary = classify_s3_object(s3, BUCKET, "incoming/bad.csv", pack)
    assert "missing column(s)" in summary["error"]
    assert json.loads(_get(s3, "classified/bad.summary.json"))["error"] == summary["error"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "classified/bad.csv" not in keys


def test_other_keys_are_skipped(s3: Any, pack: PolicySet) -> None:
    assert "skipped" in classify_s3_object(s3, BUCKET, "classified/x.csv", pack)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
