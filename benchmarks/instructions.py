"""Instructions per call of the path users run, counted by valgrind (callgrind).

A shared 2-core machine's clock moves by half from one run to the next, so two commits'
microsecond figures can only be compared when timed in turn; instruction counts do not move
with load (the same binary, inputs and environment give the same count). For each example
referral this counts `policy_set.decide(request).to_dict()` (request dict in, response dict
out, validation included) and its three stages `policy_set.parse`, `decide_activity` and
`Decision.to_dict`, as an average over `CALLS` calls after a warm-up.

How: the child process runs each measured loop inside one `functools.reduce` call, the only
C function on none of those paths; callgrind collects only inside it (`--toggle-collect`)
and writes one profile after each (`--dump-after`). Run: `python -m benchmarks.instructions`
(needs valgrind: `apt-get install valgrind`; about two minutes). Not part of `make bench`'s
default suites, which time in microseconds.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS = 200
STAGES = ("total", "parse", "decide_activity", "to_dict")
FIXED = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


def _child(calls: int) -> None:
    """Run every example's loops, one `functools.reduce` each, in `STAGES` order."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.engine import example_referrals
    from chalicelib import load_policy_set

    policy_set = load_policy_set(ROOT / "policies", clock=lambda: FIXED)
    names = []
    for name, body in example_referrals():
        activity = policy_set.parse(body)
        decision = policy_set.decide_activity(activity)
        loops: list[Callable[[], object]] = [
            lambda body=body: policy_set.decide(body).to_dict(),  # type: ignore[misc]
            lambda body=body: policy_set.parse(body),  # type: ignore[misc]
            lambda a=activity: policy_set.decide_activity(a),  # type: ignore[misc]
            decision.to_dict,
        ]
        for loop in loops:
            for _ in range(200):
                loop()
            functools.reduce(lambda _, __, loop=loop: loop(), range(calls), None)  # type: ignore[misc]
        names.append(name)
    print(json.dumps(names))


def count(calls: int = CALLS) -> dict[str, dict[str, int]]:
    """Instructions per call, by example and stage."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
             "--dump-after=functools_reduce", f"--callgrind-out-file={out}",
             sys.executable, "-m", "benchmarks.instructions", "--child", str(calls)],
            cwd=ROOT, capture_output=True, text=True, check=True)
        names = json.loads(done.stdout.strip().splitlines()[-1])
        totals = []
        for n in range(1, len(names) * len(STAGES) + 1):
            summary = next(line for line in Path(f"{out}.{n}").read_text().splitlines()
                           if line.startswith("summary:"))
            totals.append(int(summary.split()[1]) // calls)
    return {name: dict(zip(STAGES, totals[i * len(STAGES):(i + 1) * len(STAGES)], strict=True))
            for i, name in enumerate(names)}


def main(argv: Sequence[str] | None = None) -> list[str]:
    """The table of instruction counts, or why there is none."""
    args = list(argv if argv is not None else sys.argv[1:])
    if args[:1] == ["--child"]:
        _child(int(args[1]))
        return []
    if shutil.which("valgrind") is None:
        return ["valgrind is not installed (apt-get install valgrind): no instruction counts"]
    counted = count()
    lines = [f"instructions per call (callgrind, mean of {CALLS} calls after a warm-up): "
             "policy_set.decide(request).to_dict(), then its stages parse / decide_activity / "
             "Decision.to_dict:",
             f"  {'example':34s} {'total':>9s} {'parse':>8s} {'decide':>8s} {'to_dict':>8s}"]
    for name, stages in counted.items():
        lines.append(f"  {name:34s} {stages['total']:9,d} {stages['parse']:8,d} "
                     f"{stages['decide_activity']:8,d} {stages['to_dict']:8,d}")
    return lines


if __name__ == "__main__":
    printed = main()
    if printed:
        print("\n".join(printed))
