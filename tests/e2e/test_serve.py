"""End to end: `pss serve` on free loopback ports, driven over real HTTP, read back from DynamoDB.

The stack runs as a child process (as a developer runs it); its banner gives the URL, key and
DynamoDB endpoint. Lines are read by a thread into a queue, so waiting has a deadline but no
sleeps. SIGINT must stop it with status 0.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "tests" / "fixtures" / "pack"

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    process: subprocess.Popen[str]
    url: str
    key: str
    dynamodb: str
    curl_body: dict[str, Any]
    lines: list[str]


def _read_banner(process: subprocess.Popen[str], lines: list[str]) -> None:
    pending: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            pending.put(line)
        pending.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = pending.get(timeout=90)
        if line is None:
            raise AssertionError("pss serve exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Ctrl-C"):
            return


def _field(lines: list[str], pattern: str) -> str:
    for line in lines:
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError(f"no {pattern!r} in banner:\n" + "".join(lines))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PSS_"))}
    code = "import sys; from pss_dev.local_stack import serve_main; " \
           "sys.exit(serve_main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--policies", str(PACK)], cwd=ROOT,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        _read_banner(process, lines)
        body = json.loads(_field(lines, r"^  -d '(.*)'$"))
        yield Stack(process, _field(lines, r"PSS rules API:\s+(\S+)"),
                    _field(lines, r"API key:\s+(\S+)"), _field(lines, r"DynamoDB:\s+(\S+)"),
                    body, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _call(stack: Stack, method: str, path: str, body: Any = None,
          key: str | None = "default") -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = stack.key if key == "default" else key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.url + path, data=data, headers=headers,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_printed_curl_records_a_decision_readable_over_http_and_in_dynamodb(
        stack: Stack) -> None:
    status, created = _call(stack, "POST", "/v1/decisions", stack.curl_body)
    assert status == 201 and created["recorded"] is True
    decision_id = created["decision_id"]
    assert _call(stack, "GET", f"/v1/decisions/{decision_id}") == (200, created)

    dynamodb = boto3.client("dynamodb", endpoint_url=stack.dynamodb, region_name="eu-west-2",
                            aws_access_key_id="local", aws_secret_access_key="local")
    item = dynamodb.get_item(TableName="pss-decisions-dev", Key={
        "PK": {"S": f"DECISION#{decision_id}"}, "SK": {"S": "V#000001"}})["Item"]
    assert item["client_id"] == {"S": "local"}
    assert item["outcome"] == {"S": created["eligibility"]}
    assert json.loads(item["result"]["S"])["reasons"] == created["reasons"]
    assert "9434765919" not in json.dumps(item)
    assert item["nhs_number_hash"]["S"].startswith("hmac-sha256:")


def test_versions_over_http(stack: Stack) -> None:
    _, created = _call(stack, "POST", "/v1/decisions", stack.curl_body)
    path = f"/v1/decisions/{created['decision_id']}/versions"
    status, second = _call(stack, "POST", path, {"attestations": ["mdt"], "facts": {"who": 1}})
    assert (status, second["version"], second["eligibility"]) == (201, 2, "eligible")
    status, history = _call(stack, "GET", path)
    assert [v["version"] for v in history["versions"]] == [1, 2]


def test_auth_and_open_routes_over_http(stack: Stack) -> None:
    status, body = _call(stack, "POST", "/v1/decisions", stack.curl_body, key=None)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert _call(stack, "GET", "/v1/policies", key="wrong")[0] == 401
    assert _call(stack, "GET", "/v1/health", key=None)[0] == 200
    status, document = _call(stack, "GET", "/openapi.json", key=None)
    assert status == 200 and document["openapi"] == "3.1.0"


def test_ctrl_c_stops_everything_cleanly(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=30) == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(stack.url + "/v1/health", timeout=5)
