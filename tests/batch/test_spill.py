"""Where forked workers leave their pieces, and that nothing is left there afterwards."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

import pytest

from chalicelib.batch import local
from chalicelib.batch.cli import batch_main
from chalicelib.batch.rows import COLUMNS
from pss_dev.synth import generate

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "policies"
Usage = namedtuple("Usage", "total used free")


def _activity(tmp_path: Path, rows: int = 400) -> Path:
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n" + "\n".join(
        ",".join(r) for r in generate(rows, 5, 0)) + "\n", encoding="utf-8")
    return source


def _spills(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(".pss-batch-*")) if root.is_dir() else []


def test_a_small_dev_shm_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.shutil, "disk_usage", lambda _: Usage(64 << 20, 0, 64 << 20))
    assert local._spill_root(tmp_path / "out.csv") == tmp_path.resolve()


def test_an_input_that_cannot_be_opened_leaves_no_spill_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "_spill_root", lambda output: tmp_path)
    (tmp_path / "dir.csv").mkdir()
    code = batch_main([str(tmp_path / "dir.csv"), "-o", str(tmp_path / "o.csv"),
                       "--policies", str(NATIONAL), "--workers", "2"])
    assert code != 0
    assert _spills(tmp_path) == []


def test_without_copy_file_range_the_pieces_are_copied_by_hand(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not Linux (macOS, BSD): the same bytes, no AttributeError."""
    source = _activity(tmp_path)
    assert batch_main([str(source), "-o", str(tmp_path / "a.csv"), "--policies", str(NATIONAL),
                       "--workers", "2"]) == 0
    if hasattr(os, "copy_file_range"):
        monkeypatch.delattr(os, "copy_file_range")
    assert batch_main([str(source), "-o", str(tmp_path / "b.csv"), "--policies", str(NATIONAL),
                       "--workers", "2"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
