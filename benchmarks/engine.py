"""Engine benchmarks: one rule against peer engines, the whole pack, the pack ×10, cold start.

Everything is printed as measured figures and ratios from one run on this machine; nothing
here is a pass/fail unit test. Run with `make bench` (installs the peers) or
`python -m benchmarks`.
"""

from __future__ import annotations

import datetime as dt
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
from chalicelib.activity import Activity
from chalicelib.dsl.codegen import compile_many
from chalicelib.engine.policy_set import PolicySet

ROOT = Path(__file__).resolve().parent.parent
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


def single_rule(seed: int = 7, n: int = 2000, with_peers: bool = True) -> list[str]:
    """Our compiled rule vs the peers over the same seeded inputs; answers must agree."""
    codes = peers.make_codeset(seed)
    inputs = peers.make_inputs(seed + 1, codes, n)
    expected = peers.reference(inputs, codes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "policies"
        folder.mkdir()
        (folder / "pack.pss").write_text(RULE_PACK, encoding="utf-8")
        (folder / "codes.csv").write_text("code\n" + "\n".join(sorted(codes)) + "\n", "utf-8")
        policy_set = load_policy_set(folder, clock=_clock)
    criteria = policy_set.policies[0].criteria
    assert criteria is not None
    activities = [Activity(date=FIXED.date(), age=i["age"], diagnoses=(i["diagnosis"],))
                  for i in inputs]
    predicate, evaluate = criteria.predicate, criteria.evaluate
    decl_criteria = policy_set.policies[0].decl.criteria
    assert decl_criteria is not None
    many = compile_many(decl_criteria, policy_set.compiler, policy_set.checked.codesets)
    ours = [predicate(a) is True for a in activities]
    if ours != expected or [v is True for v in many(activities)] != expected:
        raise SystemExit("our evaluator disagrees with the reference answers")
    batch_us = _best_per_item(lambda: many(activities), n)
    answer_us = _best_per_item(lambda: [predicate(a) for a in activities], n)
    reasons_us = _best_per_item(lambda: [evaluate(a) for a in activities], n)
    end_to_end_us = _best_per_item(lambda: [predicate(Activity(
        date=FIXED.date(), age=i["age"], diagnoses=(i["diagnosis"],))) for i in inputs], n)
    lines = [
        f"single rule, {n} inputs, 2,000-code set (answers identical to the reference):",
        f"  {'PSS rules (generated, batch)':32s} {batch_us:10.3f} µs/decision",
        f"  {'PSS rules (answer only)':32s} {answer_us:10.3f} µs/decision",
        f"  {'PSS rules (every clause result)':32s} {reasons_us:10.3f} µs/decision",
        f"  {'PSS rules (from dict)':32s} {end_to_end_us:10.3f} µs/decision",
    ]
    if not with_peers:
        return lines
    results = peers.run_peers(inputs, codes)
    fastest = None
    for result in results:
        if not result.available or result.error:
            lines.append(f"  {result.name:32s} unavailable: {result.error}")
            continue
        if result.answers != expected:
            raise SystemExit(f"{result.name} disagrees with the reference answers")
        lines.append(f"  {result.name:32s} {result.us_per_decision:10.3f} µs/decision "
                     f"({result.us_per_decision / batch_us:,.0f}× ours)")
        if fastest is None or result.us_per_decision < fastest[1]:
            fastest = (result.name, result.us_per_decision)
    if fastest:
        lines.append(f"  ours vs the fastest peer ({fastest[0]}): "
                     f"{fastest[1] / batch_us:,.1f}× faster (generated, batch), "
                     f"{fastest[1] / answer_us:,.1f}× (one call per decision), "
                     f"{fastest[1] / reasons_us:,.1f}× with every clause result "
                     "(target ≥ 100×)")
    return lines


REFERRALS: list[dict[str, Any]] = [
    {"date": "2025-06-01", "patient": {"age": 81, "region": "London"},
     "procedures": ["K26.2", "Y53.1"], "diagnoses": ["I35.0"]},
    {"date": "2025-06-01", "patient": {"age": 64}, "drugs": ["cetuximab"],
     "diagnoses": ["C18.7"], "facts": {"ras_status": "wild_type", "line_of_therapy": 1},
     "attestations": []},
    {"date": "2025-06-01", "patient": {"age": 70}, "procedures": ["W37.1"],
     "diagnoses": ["M16.1"]},
]


def _p50_us(policy_set: PolicySet, activity: Activity, n: int = 20000) -> float:
    decide = policy_set.decide_activity
    timings = []
    for _ in range(n):
        start = time.perf_counter_ns()
        decide(activity)
        timings.append(time.perf_counter_ns() - start)
    return statistics.median(timings) / 1000


def _usable(policy_set: PolicySet, body: dict[str, Any]) -> Activity | None:
    try:
        return policy_set.parse(body)
    except Exception:  # the pack may not know every fact a sample referral names
        return None


def whole_pack(folder: Path = ROOT / "policies") -> tuple[list[str], PolicySet]:
    """p50 of one referral against the whole pack, full reasons included."""
    policy_set = load_policy_set(folder, clock=_clock)
    lines = [f"whole pack ({len(policy_set.rule_index.rules)} rules, "
             f"{len(policy_set.policies)} policy versions), p50 per decision with full reasons:"]
    for body in REFERRALS:
        activity = _usable(policy_set, body)
        if activity is None:
            continue
        d = policy_set.decide_activity(activity)
        line = d.service.line if d.service else "-"
        lines.append(f"  {line:9s} {d.eligibility:15s} {_p50_us(policy_set, activity):8.2f} µs "
                     f"({len(d.reasons)} reasons; target p50 ≤ 20 µs)")
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
    """Per-decision cost of the pack ×10 against the pack, same referrals."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "policies"
        subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
        (copy / "zz_synthetic.pss").write_text(synthetic_rules(policy_set), encoding="utf-8")
        big = load_policy_set(copy, clock=_clock)
    lines = [f"pack ×10 ({len(big.rule_index.rules)} rules) vs pack "
             f"({len(policy_set.rule_index.rules)} rules), p50 per decision:"]
    for body in REFERRALS:
        small_activity, big_activity = _usable(policy_set, body), _usable(big, body)
        if small_activity is None or big_activity is None:
            continue
        small_us, big_us = _p50_us(policy_set, small_activity), _p50_us(big, big_activity)
        lines.append(f"  {small_us:8.2f} µs → {big_us:8.2f} µs  ratio {big_us / small_us:.2f} "
                     "(target ≤ 1.5)")
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
    return [f"cold start (import app + compile the pack): median {statistics.median(timings):.0f}"
            " ms (target ≤ 300 ms)"]


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
