"""`pss serve` as a user meets it: a real child process, driven over HTTP, filled, restarted.

Starts `pss serve` on a free port with a new data folder, then:

* records 3,000 decisions (`POST /v1/decisions`, a new referral id each) and prints the median
  latency of the first and the last 300, their ratio, the p95 and the server's RSS;
* stops it with SIGINT, starts it again on the same folder and reads every decision back;
* does the same for 1,000 CDS Hooks order-sign calls (three draft orders, a new
  `hookInstance` each), on a server of their own.

Targets (design section 7): last 300 ≤ 1.5× first 300, p95 ≤ 60 ms, RSS ≤ 400 MB. Printed,
never asserted. `python -m benchmarks.serve [--decisions N] [--cds N]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CDS_EXAMPLE = ROOT / "examples" / "cds" / "order-sign.json"
WINDOW = 300
SERVE = (sys.executable, "-m", "chalicelib.cli", "serve")


@dataclass
class Server:
    """A running `pss serve`: its process, base URL, API key and the curl body it printed."""

    process: subprocess.Popen[str]
    url: str
    key: str
    sample: dict[str, Any]
    lines: list[str] = field(default_factory=list)

    def rss_mb(self) -> tuple[float, float]:
        """Resident memory now and at its peak (Linux /proc), in MB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return int(found["VmRSS"]) / 1024, int(found["VmHWM"]) / 1024


@contextmanager
def serve(args: Sequence[str], command: Sequence[str] = SERVE, cwd: Path = ROOT,
          deadline_s: float = 120, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start `command args`, wait for its banner, yield it; SIGINT (then kill) on the way out."""
    process = subprocess.Popen([*command, "--port", "0", *args], cwd=cwd, text=True, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps draining the access log so the server never blocks on it
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        while not (seen and seen[-1].startswith("Ctrl-C")):
            line = lines.get(timeout=deadline_s)
            if line is None:
                raise RuntimeError("pss serve exited early:\n" + "".join(seen))
            seen.append(line)
        text = "".join(seen)
        url = re.search(r"PSS rules API:\s+(\S+)", text)
        key = re.search(r"API key:\s+(\S+)", text)
        body = re.search(r"^  -d '(.*)'$", text, re.M)
        assert url and key and body, text
        yield Server(process, url.group(1), key.group(1), json.loads(body.group(1)), seen)
    finally:
        stop(process)


def stop(process: subprocess.Popen[str]) -> float:
    """SIGINT, wait for exit; return the seconds it took (kill after 30 s)."""
    if process.poll() is not None:
        return 0.0
    start = time.perf_counter()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return time.perf_counter() - start


class Client:
    """One keep-alive HTTP connection (what an integrating system holds open)."""

    def __init__(self, server: Server) -> None:
        parts = urlsplit(server.url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                      timeout=60)
        self._headers = {"x-api-key": server.key, "content-type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        """Send one request; return status, JSON body and the wall time in ms."""
        data = json.dumps(body) if body is not None else None
        start = time.perf_counter()
        self._connection.request(method, path, body=data, headers=self._headers)
        response = self._connection.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        return response.status, json.loads(payload), elapsed

    def close(self) -> None:
        self._connection.close()


def timed(count: int, one: Callable[[int], float]) -> list[float]:
    """Run `one(i)` `count` times; return the latencies it reports."""
    return [one(i) for i in range(count)]


def record_decisions(server: Server, count: int) -> tuple[list[float], list[str]]:
    """POST `count` decisions (the banner's referral, a new referral id each)."""
    client = Client(server)
    ids: list[str] = []

    def one(i: int) -> float:
        status, body, ms = client.call("POST", "/v1/decisions",
                                       {**server.sample, "referral_id": f"BENCH-{i:06d}"})
        if status != 201 or body.get("recorded") is not True:
            raise RuntimeError(f"decision {i}: {status} {body}")
        ids.append(body["decision_id"])
        return ms

    try:
        return timed(count, one), ids
    finally:
        client.close()


def order_sign_calls(server: Server, count: int) -> list[float]:
    """POST `count` order-sign calls, each a new `hookInstance` (so each records anew)."""
    example = json.loads(CDS_EXAMPLE.read_text(encoding="utf-8"))
    client = Client(server)

    def one(i: int) -> float:
        status, body, ms = client.call("POST", "/cds-services/pss-order-sign",
                                       {**example, "hookInstance": str(uuid.uuid4())})
        if status != 200 or not body.get("cards"):
            raise RuntimeError(f"call {i}: {status} {body}")
        return ms

    try:
        return timed(count, one)
    finally:
        client.close()


def read_back(server: Server, ids: Sequence[str]) -> int:
    """How many of `ids` a (restarted) server returns with version 1."""
    client = Client(server)
    try:
        return sum(1 for decision_id in ids
                   if (found := client.call("GET", f"/v1/decisions/{decision_id}"))[0] == 200
                   and found[1]["version"] == 1)
    finally:
        client.close()


def summary(label: str, timings: Sequence[float], rss: tuple[float, float]) -> list[str]:
    """The printed figures of one workload, with the targets beside them."""
    window = min(WINDOW, len(timings) // 2) or 1
    first = statistics.median(timings[:window])
    last = statistics.median(timings[-window:])
    ordered = sorted(timings)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return [
        f"{label}:",
        f"  median first {window} {first:7.2f} ms   last {window} {last:7.2f} ms   "
        f"ratio {last / first:5.2f} (target ≤ 1.5)",
        f"  p95 {p95:7.2f} ms (target ≤ 60)   max {ordered[-1]:7.2f} ms",
        f"  server RSS {rss[0]:6.0f} MB, peak {rss[1]:6.0f} MB (target ≤ 400)",
    ]


def main(argv: Sequence[str] = ()) -> list[str]:
    """Run both workloads on new data folders; return the printed lines."""
    parser = argparse.ArgumentParser(prog="benchmarks.serve")
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--cds", type=int, default=1000)
    options = parser.parse_args(list(argv))
    lines = [f"pss serve over HTTP (one keep-alive client, SQLite data folder, "
             f"{options.decisions} decisions, {options.cds} order-sign calls):"]
    with tempfile.TemporaryDirectory(prefix="pss-bench-") as folder:
        data = ["--data", str(Path(folder) / "decisions")]
        with serve(data) as server:
            timings, ids = record_decisions(server, options.decisions)
            rss = server.rss_mb()
            stopped_s = stop(server.process)
        lines += summary(f"{options.decisions} recorded decisions", timings, rss)
        with serve(data) as again:
            found = read_back(again, ids)
        lines.append(f"  stopped by SIGINT in {stopped_s:.2f} s (target ≤ 2); after restart "
                     f"{found} of {len(ids)} decisions read back")
        with serve(["--data", str(Path(folder) / "cds")]) as server:
            timings = order_sign_calls(server, options.cds)
            rss = server.rss_mb()
        lines += summary(f"{options.cds} CDS order-sign calls, 3 orders each, new hookInstance",
                         timings, rss)
    return lines


if __name__ == "__main__":
    print("\n".join(main(sys.argv[1:])))
