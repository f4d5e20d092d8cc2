"""Corrupted activity files: every physical data line is classified or rejected, never lost.

Each test corrupts one line of an otherwise good synthetic file in one way and checks: the run
ends normally, rows in (physical data lines) = rows out + rejects in the files and in the
summary, the corrupted line is one reject carrying its line number, a reason and the line as
read, every good line after it is still classified, and no NUL reaches any output.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chalicelib.batch.cli import batch_main
from chalicelib.batch.lines import MAX_SHOWN_CHARS
from tests.batch.conftest import PACK_DIR, synth_text

BODY = synth_text(400, 9, bad_share=0.0).encode()
HEADER, *ROWS = BODY.rstrip(b"\n").split(b"\n")
BAD_AT = 150  # index into ROWS of the corrupted row; input line BAD_AT + 2


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))[1:]


def _run(tmp_path: Path, data: bytes, workers: int = 1) -> tuple[list[list[str]], list[list[str]],
                                                                   dict[str, int]]:
    source, out, summary = tmp_path / "in.csv", tmp_path / "out.csv", tmp_path / "s.json"
    source.write_bytes(data)
    code = batch_main([str(source), "-o", str(out), "--policies", str(PACK_DIR), "--workers",
                       str(workers), "--summary", str(summary)])
    assert code == 0
    outputs = out.read_bytes(), (tmp_path / "out.rejects.csv").read_bytes()
    assert all(b"\0" not in o for o in outputs)
    rows, rejects = _records(outputs[0]), _records(outputs[1])
    totals = json.loads(summary.read_text())
    # Physical data lines: every line after the header, the last one with or without "\n".
    physical = data.count(b"\n") - (1 if data.endswith(b"\n") else 0)
    assert totals["rows_in"] == physical == len(rows) + len(rejects)
    assert (totals["rows_out"], totals["rejects"]) == (len(rows), len(rejects))
    return rows, rejects, totals


def _corrupt(change: Callable[[bytes], bytes], at: int = BAD_AT) -> bytes:
    rows = list(ROWS)
    rows[at] = change(rows[at])
    return b"\n".join([HEADER, *rows]) + b"\n"


def _the_reject(rejects: list[list[str]], line: int) -> list[str]:
    found = [r for r in rejects if r[0] == str(line)]
    assert len(found) == 1, found
    return found[0]


def _good_ids(rows: list[list[str]]) -> set[str]:
    return {r[0] for r in rows}


def _cell(index: int, value: bytes) -> Callable[[bytes], bytes]:
    def change(row: bytes) -> bytes:
        cells = row.split(b",")
        cells[index] = value
        return b",".join(cells)

    return change


CORRUPTIONS = {
    "5,000-digit age": (_cell(4, b"9" * 5000), "age: `9999999999999999999999999999999999999999...` (5,000 characters) is not a whole number of years"),
    "5,000-digit fact": (_cell(14, b"line_of_therapy=" + b"9" * 5000),
                         "facts: `line_of_therapy` must be a number"),
    "extra columns": (lambda r: r + b",x,y", "row: has 18 fields, the header has 16"),
    "missing columns": (lambda r: r.rsplit(b",", 4)[0], "row: has 12 fields, the header has 16"),
    "NUL byte": (lambda r: r[:20] + b"\0" + r[20:], "row: holds a NUL byte at character 21"),
    "invalid UTF-8": (lambda r: r[:20] + b"\xff" + r[20:],
                      "row: not valid UTF-8 (byte 0xff at offset 20)"),
    "lone CR": (lambda r: r[:20] + b"\r" + r[20:],
                "row: holds a carriage return (CR) at character 21; lines end with LF or CRLF"),
    "unbalanced quote": (lambda r: r.replace(b",", b',"', 1),
                         "row: malformed CSV (a quote is left open)"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupted_line_is_one_reject_and_nothing_else_moves(
        tmp_path: Path, kind: str, workers: int) -> None:
    change, reason = CORRUPTIONS[kind]
    rows, rejects, _ = _run(tmp_path, _corrupt(change), workers)
    bad = _the_reject(rejects, BAD_AT + 2)
    assert bad[1] == reason
    if kind in ("NUL byte", "invalid UTF-8", "lone CR", "unbalanced quote"):
        # Unreadable: the line itself, as read, is carried in the reject row.
        shown = change(ROWS[BAD_AT]).decode("utf-8", errors="backslashreplace")
        assert bad[2] == shown.replace("\0", "\\x00").replace("\r", "\\r")
    # Every other line is where it was: the good ones classified, in order.
    others = [r.split(b",", 1)[0].decode() for i, r in enumerate(ROWS) if i != BAD_AT]
    assert [r[0] for r in rows] == [i for i in others if i in _good_ids(rows)]
    assert len(rows) + len(rejects) == len(ROWS)


def test_a_stray_quote_in_a_large_file_hides_no_rows(tmp_path: Path) -> None:
    body = synth_text(20_000, 4, bad_share=0.0).encode()
    header, *lines = body.rstrip(b"\n").split(b"\n")
    lines[10] = lines[10].replace(b",", b',"', 1)  # opens a quote that never closes
    rows, rejects, totals = _run(tmp_path, b"\n".join([header, *lines]) + b"\n", workers=2)
    assert totals["rows_in"] == 20_000
    assert _the_reject(rejects, 12)[1] == "row: malformed CSV (a quote is left open)"
    assert rows[10][0] == lines[11].split(b",", 1)[0].decode()  # the very next line is read


def test_a_truncated_last_line_is_one_reject(tmp_path: Path) -> None:
    data = b"\n".join([HEADER, *ROWS])[:-30]  # cut mid-row, no final newline
    rows, rejects, _ = _run(tmp_path, data)
    bad = _the_reject(rejects, len(ROWS) + 1)
    assert bad[1].startswith("row: has ")
    assert len(rows) + len(rejects) == len(ROWS)


def test_a_one_megabyte_field_is_rejected_with_the_line_cut(tmp_path: Path) -> None:
    # The record id replaced by a megabyte of digits.
    rows, rejects, _ = _run(tmp_path, _corrupt(lambda r: b"9" * 2**20 + r[r.index(b","):]))
    assert len(rows) == len(ROWS) - 1
    bad = _the_reject(rejects, BAD_AT + 2)
    assert bad[1].startswith("row: the line is 1,04") and bad[1].endswith("at most 65,536")
    assert len(bad[2]) < MAX_SHOWN_CHARS + 100 and "characters in all]" in bad[2]


def test_crlf_line_ends_are_read_as_lines(tmp_path: Path) -> None:
    rows, rejects, _ = _run(tmp_path, BODY.replace(b"\n", b"\r\n"))
    assert len(rows) == len(ROWS) and not rejects


def test_a_file_with_only_cr_line_ends_is_refused_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(BODY.replace(b"\n", b"\r"))
    code = batch_main([str(source), "-o", str(tmp_path / "o.csv"), "--policies", str(PACK_DIR)])
    err = capsys.readouterr().err
    assert code != 0 and "lone carriage return" in err and "Traceback" not in err
