"""A `pss batch` stopped part-way leaves no half-written result, and Ctrl-C is one line.

The classified and rejects files are written under temporary names beside their targets and
renamed only once complete, so an earlier result survives a failed run and no file that
looks like a result is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import cli as pss_cli
from chalicelib.batch import local
from chalicelib.batch.cli import batch_main
from chalicelib.batch.rows import COLUMNS
from pss_dev.synth import generate

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "policies"


def _activity(tmp_path: Path, rows: int = 600) -> Path:
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n" + "\n".join(
        ",".join(r) for r in generate(rows, 3, 0)) + "\n", encoding="utf-8")
    return source


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_run_stopped_while_writing_keeps_the_earlier_result_and_leaves_no_partial(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    source = _activity(tmp_path)
    out = tmp_path / f"out{suffix}"
    rejects = tmp_path / f"out.rejects{suffix}"
    assert batch_main([str(source), "-o", str(out), "--policies", str(NATIONAL),
                       "--workers", "1"]) == 0
    earlier = out.read_bytes(), rejects.read_bytes()
    real = local._write_all

    def stopped(pieces: Iterator[Any], *args: Any) -> None:
        real(iter([next(pieces)]), *args)  # one piece really written, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "_write_all", stopped)
    with pytest.raises(KeyboardInterrupt):
        batch_main([str(source), "-o", str(out), "--policies", str(NATIONAL), "--workers", "1"])
    assert (out.read_bytes(), rejects.read_bytes()) == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.csv", out.name, rejects.name])


def test_ctrl_c_ends_any_pss_command_with_one_line_and_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(pss_cli._DELEGATED, "batch", interrupted)
    assert pss_cli.main(["batch", "in.csv", "-o", "out.csv"]) == pss_cli.INTERRUPTED == 130
    assert capsys.readouterr().err == "pss: interrupted\n"
