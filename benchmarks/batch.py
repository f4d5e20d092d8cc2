"""Time `pss batch` and `pss diff` against a bare standard-library CSV read+write.

In: a row count (default 1,000,000), a seed, the policy folder. Out, on stdout: the seconds of
a bare `csv.reader` → `csv.writer` copy of the generated file, of `pss batch` over it (every
core, as a fresh process: interpreter start and pack compile included), their ratio and rows/s;
then `pss diff` over the first 100,000 rows (head = a copy of the pack with one threshold
changed) against one `pss batch` of the same rows. Targets (design §7, issue 6): batch ≤ 20 s
and ≤ 3× bare CSV; diff ≤ 2× batch.

Run from the repository root: ``python benchmarks/batch.py [--rows N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = "import sys; from chalicelib.batch.cli import {0}; sys.exit({0}(sys.argv[1:]))"
# A threshold to move for the diff, if the pack holds it (it is being written: may be absent).
_ACHD = "primary diagnosis in CONGENITAL_HEART and age >= "
THRESHOLD = (_ACHD + "16", _ACHD + "18")


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[3:4])} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


def _command(main: str, *args: str) -> list[str]:
    return [sys.executable, "-c", RUN.format(main), *args]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def bare_csv(source: Path, target: Path) -> float:
    """Seconds to read every row with csv.reader and write it with csv.writer."""
    start = time.perf_counter()
    with source.open(newline="", encoding="utf-8") as src, target.open("w", newline="") as out:
        csv.writer(out, lineterminator="\n").writerows(csv.reader(src))
    return time.perf_counter() - start


def main() -> int:
    """Run both benchmarks and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--diff-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--policies", default="policies")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pss-bench-") as tmp:
        work = Path(tmp)
        source = work / "activity.csv"
        start = time.perf_counter()
        _timed(
            _command(
                "synth_main", "--rows", str(args.rows), "--seed", str(args.seed), "-o", str(source)
            )
        )
        size, took = source.stat().st_size / 1e6, time.perf_counter() - start
        print(f"synth: {args.rows:,} rows, {size:.0f} MB in {took:.1f} s")

        bare = bare_csv(source, work / "bare.csv")
        batch = _timed(
            _command(
                "batch_main", str(source), "-o", str(work / "out.csv"), "--policies", args.policies
            )
        )
        print(f"bare CSV read+write: {bare:6.2f} s  ({args.rows / bare:,.0f} rows/s)")
        print(f"pss batch (all cores): {batch:6.2f} s  ({args.rows / batch:,.0f} rows/s)")
        print(
            f"ratio batch / bare CSV: {batch / bare:.2f}x  (targets: <= 20 s: "
            f"{_verdict(batch <= 20)}, <= 3x: {_verdict(batch <= 3 * bare)})"
        )

        small = work / "small.csv"
        with source.open("rb") as src, small.open("wb") as out:
            for n, line in enumerate(src):
                if n > args.diff_rows:
                    break
                out.write(line)
        head = work / "head" / "policies"
        shutil.copytree(ROOT / args.policies, head)
        changed = 0
        for file in head.rglob("*.pss"):
            text = file.read_text(encoding="utf-8")
            if THRESHOLD[0] in text:
                file.write_text(text.replace(*THRESHOLD), encoding="utf-8")
                changed += 1
        batch_small = _timed(
            _command(
                "batch_main",
                str(small),
                "-o",
                str(work / "small_out.csv"),
                "--policies",
                args.policies,
            )
        )
        diff = _timed(
            _command(
                "diff_main",
                "--base",
                args.policies,
                "--head",
                str(head),
                str(small),
                "--html",
                str(work / "r.html"),
            )
        )
        note = "one threshold changed" if changed else "threshold not found: identical packs"
        print(f"pss batch, {args.diff_rows:,} rows: {batch_small:6.2f} s")
        print(f"pss diff,  {args.diff_rows:,} rows: {diff:6.2f} s  ({note})")
        ratio = diff / batch_small
        print(f"ratio diff / batch: {ratio:.2f}x  (target <= 2x: {_verdict(ratio <= 2)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
