"""Bad input: exit 2 and one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.batch.cli import batch_main, synth_main
from chalicelib.batch.rows import COLUMNS
from tests.batch.conftest import PACK_DIR


def _batch(tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code = batch_main([str(source), "-o", str(tmp_path / "out.csv"), "--policies", str(PACK_DIR), "--workers", "1", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _batch(tmp_path, tmp_path / "nope.csv", capsys)
    assert err.count("\n") == 1 and "No such file or directory" in err


def test_wrong_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,date,code\n1,2024-01-01,K26.2\n")
    err = _batch(tmp_path, source, capsys)
    assert err.count("\n") == 1 and "missing column(s): record_id, setting" in err


def test_bad_encoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes((",".join(COLUMNS) + "\n").encode("utf-16"))
    err = _batch(tmp_path, source, capsys)
    assert err.count("\n") == 1 and "not UTF-8" in err


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"")
    assert "the file is empty" in _batch(tmp_path, source, capsys)


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n")
    code = batch_main([str(source), "-o", str(tmp_path / "no" / "out.csv"), "--policies", str(PACK_DIR)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_pack_failing_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "policies"
    bad.mkdir()
    (bad / "p.pss").write_text("pack oops\n")
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n")
    code = batch_main([str(source), "-o", str(tmp_path / "out.csv"), "--policies", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "fails `pss check`" in err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert batch_main([]) == 2
    assert synth_main(["--rows", "ten", "-o", str(tmp_path / "x.csv")]) == 2
    assert synth_main(["--rows", "10", "--bad-share", "2", "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def _activity(tmp_path: Path) -> Path:
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n" + ",".join(
        ["r1", "apc", "2025-06-01", "RBV", "64", "1", "", "", "", "C187", "", "", "", "",
         "", ""]) + "\n")
    return source


@pytest.mark.parametrize(("output", "rejects", "said"), [
    ("in.csv", None, "the output `{d}/in.csv` is the input"),
    ("out.csv", "in.csv", "the rejects `{d}/in.csv` is the input"),
    ("out.csv", "out.csv", "the output and the rejects are both"),
])
def test_no_file_is_written_over_the_input_or_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, rejects: str | None,
    said: str,
) -> None:
    source = _activity(tmp_path)
    before = source.read_bytes()
    more = ["--rejects", str(tmp_path / rejects)] if rejects else []
    code = batch_main([str(source), "-o", str(tmp_path / output), "--policies", str(PACK_DIR),
                       *more])
    err = capsys.readouterr().err
    assert code == 2 and said.format(d=tmp_path) in err and "Traceback" not in err
    assert source.read_bytes() == before  # the activity is untouched
    assert not (tmp_path / "out.csv").exists()


def test_a_classified_file_is_refused_as_input(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = _activity(tmp_path)
    assert batch_main([str(source), "-o", str(tmp_path / "out.csv"), "--policies",
                       str(PACK_DIR), "--workers", "1"]) == 0
    capsys.readouterr()
    err = _batch(tmp_path / "again", tmp_path / "out.csv", capsys)
    assert "already has the column(s) the output adds: commissioner" in err


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_one_or_more(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     workers: str) -> None:
    code = batch_main([str(_activity(tmp_path)), "-o", str(tmp_path / "out.csv"),
                       "--workers", workers])
    err = capsys.readouterr().err
    assert code == 2 and "argument --workers" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["n.xlsx", "noext"])
def test_synth_writes_only_what_batch_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            name: str) -> None:
    assert synth_main(["--rows", "5", "-o", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "unknown file type" in err and "(use .csv, .parquet or .pq)" in err
    assert not (tmp_path / name).exists()
