"""API benchmarks: cold start of the Lambda module and per-request latency of POST /v1/decisions.

Cold start is timed in fresh interpreters (median of 5): `import app` alone, then `import app`
plus compiling the full national pack (what the first request of a Lambda container pays; the
design's target is ≤ 300 ms). Per-request latency is p50/p95 over 500 calls through
`chalice.test.Client` (routing, authorizer, pydantic in and out, the decision, the access log),
once as a dry run and once recorded in DynamoDB (moto's `mock_aws`). Printed, never asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cet5_cetuximab.json"
KEY = "bench-key-0123456789abcdef"
TABLE = "pss-decisions-bench"

IMPORT_ONLY = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
IMPORT_AND_COMPILE = (
    "import time; t = time.perf_counter(); import app; "
    "from chalicelib.api import wiring; wiring.current().policy_set; "
    "print(time.perf_counter() - t)"
)


def _fresh_ms(code: str, runs: int = 5) -> float | str:
    """Median wall time of `code` (which prints seconds) over `runs` fresh interpreters."""
    env = {**os.environ, "PSS_API_KEYS": f"bench:{KEY}"}
    timings = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return f"failed: {out.stderr.strip().splitlines()[-1:]}"
        timings.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(timings)


def cold_start() -> list[str]:
    """`import app`, and `import app` + compiling the pack, in fresh interpreters."""
    lines = ["cold start, fresh interpreter, median of 5:"]
    for label, code in (("import app", IMPORT_ONLY),
                        ("import app + compile the pack", IMPORT_AND_COMPILE)):
        ms = _fresh_ms(code)
        shown = f"{ms:8.0f} ms" if isinstance(ms, float) else ms
        lines.append(f"  {label:<32} {shown}")
    lines[-1] += " (target ≤ 300 ms)"
    return lines


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[max(0, round(len(ordered) * 0.95) - 1)]


def _latency(label: str, path: str, expected: int, requests: int) -> str:
    from chalice.test import Client

    import app

    body = EXAMPLE.read_text(encoding="utf-8")
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    timings = []
    with Client(app.app) as client:
        warm = client.http.post(path, headers=headers, body=body)  # compiles the pack
        assert warm.status_code == expected, warm.body
        for _ in range(requests):
            start = time.perf_counter()
            reply = client.http.post(path, headers=headers, body=body)
            timings.append((time.perf_counter() - start) * 1000)
        assert reply.status_code == expected, reply.body
    p50, p95 = _percentiles(timings)
    return f"  {label:<32} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms"


def per_request(requests: int = 500) -> list[str]:
    """p50/p95 of POST /v1/decisions, dry run and recorded in (moto) DynamoDB."""
    import boto3
    from moto import mock_aws

    from chalicelib.api import wiring
    from chalicelib.decisions.table import create_table
    from chalicelib.settings import Settings

    settings = Settings(api_keys=(("bench", KEY),), table_name=TABLE,
                        policy_dir=Settings().policy_dir)
    referral = json.loads(EXAMPLE.read_text(encoding="utf-8"))["referral_id"]
    lines = [f"POST /v1/decisions through chalice.test.Client ({requests} requests, "
             f"referral {referral}):"]
    try:
        wiring.install(wiring.Wiring({}, settings=settings, emit=lambda _line: None))
        lines.append(_latency("dry run", "/v1/decisions?dry_run=true", 200, requests))
        saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
        try:
            with mock_aws():
                create_table(boto3.client("dynamodb", region_name=settings.region), TABLE)
                wiring.install(wiring.Wiring({}, settings=settings, emit=lambda _line: None))
                lines.append(_latency("recorded (moto DynamoDB)", "/v1/decisions", 201,
                                      requests))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    finally:
        wiring.install(None)
    return lines


def main() -> list[str]:
    """Every API benchmark, as printed lines."""
    return cold_start() + per_request()


if __name__ == "__main__":
    print("\n".join(main()))
