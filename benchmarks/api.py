"""API benchmarks: cold start of the Lambda function and per-request latency of POST /v1/decisions.

Cold start is what a new Lambda container pays before its first answer: `import app`, then
`import app` plus compiling the full national pack (design section 7: ≤ 250 ms). It is timed
on the deployment zip itself (`make package` writes `build/package/deployment.zip`, which
`make bench` builds first), unzipped and imported by a fresh `python -I` that sees only the
zip's contents, as the Lambda runtime does; the same is then timed in the repository's own
environment (editable install, every development package), which is slower and is not the
deployed path. Medians of 9 fresh interpreters. Per-request latency is p50/p95 over 500 calls
through `chalice.test.Client` (routing, authorizer, pydantic in and out, the decision, the
access log), once as a dry run and once recorded in DynamoDB (moto's `mock_aws`). Printed,
never asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cet5_cetuximab.json"
KEY = "bench-key-0123456789abcdef"
TABLE = "pss-decisions-bench"

DEPLOYMENT_ZIP = ROOT / "build" / "package" / "deployment.zip"
# Prints two figures in ms: `import app`, then `import app` + the compiled pack.
COLD_START = (
    "import sys, time; sys.path.insert(0, {where!r}); t = time.perf_counter(); import app; "
    "t1 = time.perf_counter(); from chalicelib.api import wiring; wiring.current().policy_set; "
    "print((t1 - t) * 1000, (time.perf_counter() - t) * 1000)"
)


def _fresh_ms(where: Path, isolated: bool, runs: int = 9) -> tuple[float, float] | str:
    """Medians of (`import app`, + the pack) in ms over `runs` fresh interpreters."""
    env = {**os.environ, "PSS_API_KEYS": f"bench:{KEY}", "AWS_DEFAULT_REGION": "eu-west-2"}
    flags = ["-I"] if isolated else []
    timings = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, *flags, "-c", COLD_START.format(where=str(where))],
                             cwd=where, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return f"failed: {out.stderr.strip().splitlines()[-1:]}"
        first, both = map(float, out.stdout.split())
        timings.append((first, both))
    return (statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings))


def cold_start() -> list[str]:
    """Cold start of the deployment zip (`python -I`), then of the repository checkout."""
    lines = ["cold start, fresh interpreter, median of 9 (target ≤ 250 ms for import + pack):"]
    with tempfile.TemporaryDirectory() as scratch:
        places: list[tuple[str, Path, bool]] = []
        if DEPLOYMENT_ZIP.exists():
            with zipfile.ZipFile(DEPLOYMENT_ZIP) as archive:
                archive.extractall(scratch)
            places.append((f"deployment zip ({DEPLOYMENT_ZIP.stat().st_size / 1e6:.1f} MB), "
                           "python -I", Path(scratch), True))
        else:
            lines.append("  deployment zip: absent (run `make package`)")
        places.append(("repository, development environment", ROOT, False))
        for label, where, isolated in places:
            ms = _fresh_ms(where, isolated)
            if isinstance(ms, str):
                lines.append(f"  {label}: {ms}")
            else:
                lines.append(f"  {label}: import app {ms[0]:.0f} ms, import app + compile "
                             f"the pack {ms[1]:.0f} ms")
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
