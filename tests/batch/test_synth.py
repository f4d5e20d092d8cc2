"""`pss synth`: deterministic bytes for a seed, a plausible mix, some malformed rows."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pytest

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


def test_synth_says_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "said.csv"
    assert synth_main(["--rows", "120", "--seed", "1", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"pss synth: wrote 120 rows to {target} in ") and out.endswith(" s\n")
    assert synth_main(["--rows", "5", "--seed", "1", "-o", "-"]) == 0
    both = capsys.readouterr()
    assert both.out.count("\n") == 6 and "wrote 5 rows to stdout" in both.err  # CSV stays clean
