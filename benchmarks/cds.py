"""CDS Hooks latency: one order-sign call with three draft orders through `chalice.test.Client`.

Prints p50/p95 over repeated calls (each call decides and records three orders in the
in-memory store) against the Da Vinci CRD expectation of under 5 s for 90% of calls.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cds" / "order-sign.json"
KEY = "bench-key-0123456789abcdef"


def main(calls: int = 300) -> list[str]:
    """Time `calls` order-sign calls after one warm-up call; return the printed lines."""
    os.environ.setdefault("PSS_API_KEYS", f"bench:{KEY}")
    from chalice.test import Client

    import app
    from chalicelib.api import wiring
    from chalicelib.decisions.memory import InMemoryDecisionStore

    wiring.install(wiring.Wiring(store=InMemoryDecisionStore(), emit=lambda line: None))
    body = EXAMPLE.read_text(encoding="utf-8")
    orders = len(json.loads(body)["context"]["draftOrders"]["entry"])  # orders only
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    timings = []
    with Client(app.app) as client:
        start = time.perf_counter()
        first = client.http.post("/cds-services/pss-order-sign", headers=headers, body=body)
        cold_ms = (time.perf_counter() - start) * 1000
        assert first.status_code == 200, first.body
        for _ in range(calls):
            start = time.perf_counter()
            client.http.post("/cds-services/pss-order-sign", headers=headers, body=body)
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    wiring.install(None)
    return [
        f"CDS Hooks order-sign, {orders} draft orders, through chalice.test.Client "
        f"({calls} calls, decisions recorded in memory):",
        f"  first call (compiles the pack) {cold_ms:8.1f} ms",
        f"  p50 {statistics.median(timings):8.2f} ms   p95 {p95:8.2f} ms "
        "(CRD expectation: < 5,000 ms for 90% of calls)",
    ]


if __name__ == "__main__":
    print("\n".join(main()))
