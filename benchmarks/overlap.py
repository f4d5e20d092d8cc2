"""`pss check` on packs of many overlapping identification rules: 1,000, 3,000 and 10,000.

Prints, per size and shape, the seconds `check_sources` takes (wall clock, and CPU time of
this process, which a busy machine inflates less) and how many diagnostics (and rendered
lines) it reports; the goal for 3,000 rules is under 5 s and at most 200 lines. Shapes:

* `same`   -- every rule at rank 1 on the same code set: one group of n ambiguous rules;
* `mixed`  -- rules over 3-character OPCS-4 categories and codes below them, five ranks and
  staggered age ranges: many ambiguity groups and many shadowed rules;
* `apart`  -- every rule on a code of its own at rank 1: nothing overlaps (the index must
  not compare them all);
* `bands`  -- every rule on one code at rank 1, in one-year age bands that never meet: the
  age sweep must not compare them all;
* `ladder` -- every rule on one code at its own rank, in one-year age bands: no rule covers
  another, and the code index cannot tell them apart (past `MAX_COMPARISONS` the analysis
  stops with one error rather than run on).
"""

from __future__ import annotations

import sys
import time

from chalicelib.dsl.loader import check_sources
from chalicelib.dsl.source import SourceMap, render

# Every item says it rests on no source, so `pss check` reports only what is measured.
U = 'unverified "a generated benchmark pack"'
HEADER = f"""pack "overlap" version "1" covers from 2013-04-01
line NCBPS13A "Adult specialist cardiac services" {U}
service "7" "Adult specialist cardiac services" {{
  {U}
  lines NCBPS13A
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01 {U}
}}
"""
SIZES = (1_000, 3_000, 10_000)
SHAPES = ("same", "mixed", "apart", "bands", "ladder")


def _category(i: int) -> str:
    """The i-th OPCS-4 category: A01 .. Z99."""
    return f"{chr(ord('A') + (i // 99) % 26)}{i % 99 + 1:02d}"


def overlapping_pack(n: int, shape: str = "mixed") -> str:
    """The text of one pack file with `n` identification rules of the given shape."""
    out = [HEADER]
    if shape in ("same", "bands", "ladder"):
        out.append(f"codeset CARDIAC: opcs4 = K26.2, K26.3 {U}\n")
    for i in range(n):
        if shape == "same":
            when, rank = "dominant procedure in CARDIAC", 1
        elif shape in ("bands", "ladder"):
            when = f"dominant procedure in CARDIAC and age >= {i} months and age < {i + 1} months"
            rank = 1 if shape == "bands" else i + 1
        elif shape == "apart":
            out.append(f"codeset C{i}: opcs4 = {_category(i // 10)}.{i % 10} {U}\n")
            when, rank = f"dominant procedure in C{i}", 1
        else:
            code = _category(i // 20) + (f".{i % 10}" if i % 2 else "")
            out.append(f"codeset C{i}: opcs4 = {code} {U}\n")
            when = f"dominant procedure in C{i} and age >= {i % 17} and age < {60 + i % 23}"
            rank = 1 + i % 5
        out.append(f'rule r{i} "rule {i}" {{ line NCBPS13A rank {rank} when {when} {U} }}\n')
    return "".join(out)


def measure(n: int, shape: str) -> tuple[float, float, int, int]:
    """(seconds to check, CPU seconds, diagnostics, rendered lines) for one generated pack."""
    texts = {"policies/overlap.pss": overlapping_pack(n, shape)}
    start, cpu = time.perf_counter(), time.process_time()
    _, diagnostics = check_sources(texts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    lines = render(diagnostics, SourceMap(texts)).count("\n") + 1 if diagnostics else 0
    return seconds, cpu, len(diagnostics), lines


def main(sizes: tuple[int, ...] = SIZES) -> list[str]:
    """One printed line per size and shape."""
    out = [f"{'rules':>7} {'shape':<6} {'seconds':>8} {'cpu s':>6} {'diagnostics':>11} "
           f"{'lines':>6}"]
    for n in sizes:
        for shape in SHAPES:
            seconds, cpu, count, lines = measure(n, shape)
            out.append(f"{n:>7,} {shape:<6} {seconds:>8.2f} {cpu:>6.2f} {count:>11,} "
                       f"{lines:>6,}")
    return out


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or SIZES
    print("\n".join(main(sizes)))
