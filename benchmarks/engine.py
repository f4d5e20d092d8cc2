"""Engine benchmarks: one rule against peer engines, the whole pack, the pack ×10, cold start.

Only paths a user runs are timed, and every row names the call it measures:

* `policy_set.decide(request).to_dict()` — the Python API (design 6a), which the HTTP API's
  `POST /v1/decisions` also runs: request dict in, response dict out, validation included;
* `RowDecider.decide(row)` — what `pss batch` runs for each CSV row once it is read;
* `import app` — the Lambda cold start.

Everything is printed as measured figures and ratios from one run on this machine; nothing
here is a pass/fail unit test. Run with `make bench` (installs the peers) or
`python -m benchmarks`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import peers
from chalicelib import load_policy_set
from chalicelib.batch.rows import COLUMNS, Layout, RowDecider
from chalicelib.engine.policy_set import PolicySet

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXED = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _clock() -> dt.datetime:
    return FIXED


RULE_PACK = """pack "bench" version "b" covers from 2013-04-01
codeset DIAGNOSES: icd10 = file "codes.csv"
line NCBPS99Z "benchmark line"
service "X" "benchmark" {
  lines NCBPS99Z
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
}
rule everyone "every activity" { line NCBPS99Z rank 10 when age >= 0 }
policy "BENCH" version 1 "age >= 18 and diagnosis in a 2,000-code set" {
  effective from 2013-04-01
  governs any line
  criteria age >= 18 and any diagnosis in DIAGNOSES
  when met: eligible
}
"""


def _best_per_item(run: Callable[[], object], items: int, repeat: int = 5) -> float:
    """Best wall time of `repeat` runs of `run`, in µs per item."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / items * 1e6


def _rule_request(inp: dict[str, Any]) -> dict[str, Any]:
    return {"date": "2025-06-01", "patient": {"age": inp["age"]},
            "diagnoses": [inp["diagnosis"]]}


def _rule_row(inp: dict[str, Any]) -> list[str]:
    cells = {"activity_date": "2025-06-01", "age": str(inp["age"]),
             "primary_diagnosis": inp["diagnosis"]}
    return [cells.get(column, "") for column in COLUMNS]


def single_rule(seed: int = 7, n: int = 2000, with_peers: bool = True) -> list[str]:
    """Our rule vs the peers over the same seeded inputs; answers must agree."""
    codes = peers.make_codeset(seed)
    inputs = peers.make_inputs(seed + 1, codes, n)
    expected = peers.reference(inputs, codes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "policies"
        folder.mkdir()
        (folder / "pack.pss").write_text(RULE_PACK, encoding="utf-8")
        (folder / "codes.csv").write_text("code\n" + "\n".join(sorted(codes)) + "\n", "utf-8")
        policy_set = load_policy_set(folder, clock=_clock)
    requests = [_rule_request(i) for i in inputs]
    rows = [_rule_row(i) for i in inputs]
    decider = RowDecider(policy_set, Layout.from_header(COLUMNS))
    decide = policy_set.decide
    ours = [decide(r).eligibility == "eligible" for r in requests]
    batch = [decider.decide(row)[5] == "eligible" for row in rows]
    if ours != expected or batch != expected:
        raise SystemExit("our evaluator disagrees with the reference answers")
    call_us = _best_per_item(lambda: [decide(r).to_dict() for r in requests], n)
    batch_us = _best_per_item(lambda: [decider.decide(row) for row in rows], n)
    lines = [
        f"single rule, {n} inputs, 2,000-code set (answers identical to the reference):",
        f"  {'policy_set.decide(request).to_dict()':40s} {call_us:10.3f} µs/decision",
        f"  {'RowDecider.decide(row)  [pss batch]':40s} {batch_us:10.3f} µs/decision",
    ]
    if not with_peers:
        return lines
    fastest: tuple[str, float] | None = None
    for result in peers.run_peers(inputs, codes):
        us = result.us_per_decision
        if not result.available or result.error or us is None:
            lines.append(f"  {result.name:40s} unavailable: {result.error}")
            continue
        if result.answers != expected:
            raise SystemExit(f"{result.name} disagrees with the reference answers")
        lines.append(f"  {result.name:40s} {us:10.3f} µs/decision "
                     f"({us / call_us:,.1f}× one `decide` call)")
        if fastest is None or us < fastest[1]:
            fastest = (result.name, us)
    if fastest is not None:
        lines.append(f"  the fastest peer ({fastest[0]}, its fastest mode) takes "
                     f"{fastest[1] / call_us:,.1f}× one `decide` call (target ≥ 50×) and "
                     f"{fastest[1] / batch_us:,.1f}× one `pss batch` row (target ≥ 1,000×)")
    return lines


def example_referrals() -> list[tuple[str, dict[str, Any]]]:
    """Every ready-to-send referral in `examples/`, by file name."""
    return [(p.name, json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(EXAMPLES.glob("*.json"))]


def _p50_us(call: Callable[[], object], n: int = 20000) -> float:
    timings = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        call()
        timings.append(clock() - start)
    return statistics.median(timings) / 1000


def _user_call(policy_set: PolicySet, body: dict[str, Any]) -> Callable[[], object]:
    return lambda: policy_set.decide(body).to_dict()


def whole_pack(folder: Path = ROOT / "policies") -> tuple[list[str], PolicySet]:
    """p50 of `policy_set.decide(request).to_dict()` on every example, and where time goes."""
    policy_set = load_policy_set(folder, clock=_clock)
    lines = [f"whole pack ({len(policy_set.rule_index.rules)} rules, "
             f"{len(policy_set.policies)} policy versions), every example referral: p50 of "
             "policy_set.decide(request).to_dict() (target ≤ 12 µs), then of its stages "
             "policy_set.parse / decide_activity / Decision.to_dict:",
             f"  {'example':34s} {'line':9s} {'eligibility':15s} {'total':>9s}  "
             f"{'parse':>6s} {'decide':>6s} {'to_dict':>7s}"]
    for name, body in example_referrals():
        activity = policy_set.parse(body)
        decision = policy_set.decide_activity(activity)
        total = _p50_us(_user_call(policy_set, body))
        parse = _p50_us(lambda body=body: policy_set.parse(body))  # type: ignore[misc]
        decide = _p50_us(lambda a=activity: policy_set.decide_activity(a))  # type: ignore[misc]
        to_dict = _p50_us(decision.to_dict)
        line = decision.service.line if decision.service else "-"
        lines.append(f"  {name:34s} {line:9s} {decision.eligibility:15s} {total:6.2f} µs  "
                     f"{parse:6.2f} {decide:6.2f} {to_dict:7.2f}")
    return lines, policy_set


def synthetic_rules(policy_set: PolicySet, factor: int = 10, seed: int = 3) -> str:
    """Rules on codes no referral uses, to make a pack `factor` times larger."""
    rng = random.Random(seed)
    lines = sorted(policy_set.checked.line_service)
    count = len(policy_set.rule_index.rules) * (factor - 1)
    out = []
    for i in range(count):
        code = f"Z{rng.randrange(100):02d}.{rng.randrange(10)}"
        out.append(f"codeset SYN_{i}: opcs4 = {code}, T{rng.randrange(100):02d}")
        out.append(f'rule synthetic_{i} "synthetic rule {i}" {{ line {lines[i % len(lines)]} '
                   f"rank {10000 + i} when dominant procedure in SYN_{i} and age >= "
                   f"{rng.randrange(90)} }}")
    return "\n".join(out) + "\n"


def pack_scaling(policy_set: PolicySet, folder: Path = ROOT / "policies") -> list[str]:
    """`policy_set.decide(request).to_dict()` on the pack ×10 against the pack, same examples."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "policies"
        subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
        (copy / "zz_synthetic.pss").write_text(synthetic_rules(policy_set), encoding="utf-8")
        big = load_policy_set(copy, clock=_clock)
    lines = [f"pack ×10 ({len(big.rule_index.rules)} rules) vs pack "
             f"({len(policy_set.rule_index.rules)} rules), p50 of "
             "policy_set.decide(request).to_dict():"]
    for name, body in example_referrals():
        small_us = _p50_us(_user_call(policy_set, body))
        big_us = _p50_us(_user_call(big, body))
        lines.append(f"  {name:34s} {small_us:8.2f} µs → {big_us:8.2f} µs  "
                     f"ratio {big_us / small_us:.2f} (target ≤ 1.5)")
    return lines


def cold_start() -> list[str]:
    """`import app` with the full pack, in a fresh interpreter (median of 5)."""
    timings = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t=time.perf_counter(); import app; "
             "from chalicelib.api import wiring; wiring.current().policy_set; "
             "print(time.perf_counter()-t)"],
            cwd=ROOT, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return [f"cold start: `import app` failed: {out.stderr.strip().splitlines()[-1:]}"]
        timings.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return [f"cold start (`import app` + compile the pack): median "
            f"{statistics.median(timings):.0f} ms (target ≤ 250 ms)"]


def main(argv: Sequence[str] | None = None) -> int:
    """Print every engine benchmark."""
    args = list(argv or [])
    for line in single_rule(with_peers="--no-peers" not in args):
        print(line)
    lines, policy_set = whole_pack()
    print("\n".join(lines))
    print("\n".join(pack_scaling(policy_set)))
    print("\n".join(cold_start()))
    return 0
