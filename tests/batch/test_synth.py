"""`pss synth`: deterministic bytes for a seed, a plausible mix, some malformed rows."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from chalicelib.batch.cli import synth_main
from chalicelib.batch.rows import COLUMNS


def _run(tmp_path: Path, name: str, seed: int) -> bytes:
    target = tmp_path / name
    assert synth_main(["--rows", "2000", "--seed", str(seed), "-o", str(target)]) == 0
    return target.read_bytes()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first, again, other = _run(tmp_path, "a.csv", 11), _run(tmp_path, "b.csv", 11), _run(tmp_path, "c.csv", 12)
    assert first == again
    assert first != other
    assert first.startswith(",".join(COLUMNS).encode() + b"\n")
    assert first.count(b"\n") == 2001


def test_mix_is_mostly_routine_with_some_specialised_and_bad_rows(tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(_run(tmp_path, "m.csv", 3).decode())))[1:]
    dominant = Counter(r[COLUMNS.index("dominant_procedure")] for r in rows if len(r) == len(COLUMNS))
    short = sum(len(r) != len(COLUMNS) for r in rows)
    assert dominant["K26.2"] > 0  # some TAVI
    assert sum(n for code, n in dominant.items() if code.startswith("W")) > 100  # joints
    assert short >= 0 and len(rows) == 2000
