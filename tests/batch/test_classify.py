"""`pss batch`: every row accounted for, the fast path decides as the API does."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.batch.classify import classify_stream
from chalicelib.batch.cli import batch_main
from chalicelib.batch.rows import (
    COLUMNS,
    FastRows,
    Layout,
    RowDecider,
    RowError,
    result_fields,
    row_reason,
    row_request,
)
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import NotCoveredError, RequestError
from tests.batch.conftest import PACK_DIR, synth_text

HEADER = ",".join(COLUMNS)


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline="")))


def _injected() -> bytes:
    """Bad rows a real extract could hold, each of a different kind."""
    good = "X-1,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,"
    return b"\n".join(
        [
            good.encode(),
            b"X-2,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2",  # short row
            "X-3,APC,2024-06-01,RBQ,80,1,Londres \xe9,QWE,320,I35.0,,,,,,".encode("latin-1"),  # not UTF-8
            b"",  # blank line
            b"X-5,APC,2011-01-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,",  # before the pack
            b'X-6,APC,2024-06-01,RBQ,80,1,London,QWE,320,"I35.0",,K26.2,"Y53.1|Y79.1",,,',  # quoted, fine
            b"X-7,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,unknown_fact=1,",
            good.replace("X-1", "X-8").encode(),
        ]
    ) + b"\n"


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_in_equal_rows_out_plus_rejects(tmp_path: Path, workers: int) -> None:
    source = tmp_path / "in.csv"
    body = synth_text(3000, 5, bad_share=0.05).encode()
    source.write_bytes(body + _injected() + body.split(b"\n", 1)[1][:20000].rsplit(b"\n", 1)[0] + b"\n")
    out, summary = tmp_path / "out.csv", tmp_path / "summary.json"
    code = batch_main(
        [str(source), "-o", str(out), "--policies", str(PACK_DIR), "--workers", str(workers), "--summary", str(summary)]
    )
    assert code == 0
    rows_in = len(_records(source.read_bytes())) - 1
    rows_out = _records(out.read_bytes())[1:]
    rejects = _records((tmp_path / "out.rejects.csv").read_bytes())[1:]
    assert rows_in == len(rows_out) + len(rejects)
    # Rows written back verbatim are byte for byte what csv.writer writes for them.
    rewritten = io.StringIO()
    csv.writer(rewritten, lineterminator="\n").writerows(_records(out.read_bytes()))
    assert out.read_bytes() == rewritten.getvalue().encode()
    totals = json.loads(summary.read_text())
    assert (totals["rows_in"], totals["rows_out"], totals["rejects"]) == (rows_in, len(rows_out), len(rejects))
    # Output keeps input order and every input column, then the results.
    ids = [r[0] for r in rows_out]
    assert ids.index("X-1") < ids.index("X-6") < ids.index("X-8")
    by_id = {r[2]: r for r in rejects if len(r) > 2}
    assert by_id["X-2"][1] == "row: has 12 fields, the header has 16"
    assert by_id["X-5"][1].startswith("activity_date: no policy set is in force on 2011-01-01")
    assert by_id["X-7"][1] == "facts: `unknown_fact` is not a fact of this pack"
    reasons = [r[1] for r in rejects]
    assert any(r.startswith("row: not valid UTF-8") for r in reasons)
    assert "row: is empty" in reasons
    # Reject lines point at the input line.
    lines = source.read_bytes().split(b"\n")
    x5 = next(r for r in rejects if len(r) > 2 and r[2] == "X-5")
    assert lines[int(x5[0]) - 1].startswith(b"X-5,")
    tavi = next(r for r in rows_out if r[0] == "X-1")
    assert tavi[len(COLUMNS):] == [
        "nhs_england", "7", "NCBPS13A", "", "", "not_applicable", "", "", "false"]


def _reference(pack: PolicySet, fields: list[str], layout: Layout) -> Any:
    try:
        return result_fields(pack.decide(row_request(fields, layout)))
    except (RequestError, NotCoveredError) as exc:
        return ("rejected", row_reason(exc, fields, layout))
    except RowError as exc:
        return ("rejected", str(exc))


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_decides_and_rejects_exactly_as_the_api(pack: PolicySet, seed: int) -> None:
    rows = _records(synth_text(400, seed, bad_share=0.15).encode())
    layout = Layout.from_header(rows[0])
    decider = RowDecider(pack, layout)
    fast = FastRows(layout, [pack.rule_index])
    used_fast = 0
    for fields in rows[1:]:
        try:
            mine: Any = decider.decide(fields)
        except RowError as exc:
            mine = ("rejected", str(exc))
        assert mine == _reference(pack, fields, layout), fields
        activity = fast.activity(fields)
        if activity is not None:
            used_fast += 1
            assert activity == pack.parse(row_request(fields, layout))
    assert used_fast > 300  # the comparison exercised the fast path, not only the fallback


def test_fast_path_on_edge_cells(pack: PolicySet) -> None:
    layout = Layout.from_header(list(COLUMNS))
    decider = RowDecider(pack, layout)
    base = ["E", "APC", "2024-06-01", "rbq", "80", "2", "Midlands", "QWE", "320", "Q21.1", "", "", "", "", "", ""]
    variants = {
        "age": ["0", "130", "131", "007", " 80", "８0", "-1", "1e2"],
        "activity_date": ["2024-02-29", "2023-02-29", "20240601", "2024-W01-1", "2013-03-31", "2013-04-01"],
        "sex": ["", "1", "2", "9", "0", "female", "Female", "3"],
        "primary_diagnosis": ["q21.1", "Q211", "Q21.1 ", "Q2", "I21.0"],
        "dominant_procedure": ["k26.2", "K26.2"],
        "other_procedures": ["Y53.1", "|Y53.1|", "Y5", "Y53.1|" * 50],
        "treatment_function": ["712", "71", "7120", "abc"],
        "provider_code": ["RBQ", "R", "R B Q"],
        "icb": ["QWE", "qwe", "Q", "QWERTY"],
        "region": ["London", "london", "Narnia"],
        "drugs": ["Cetuximab", "cetuximab|pembrolizumab", "??"],
        "record_id": ["x" * 128, "x" * 129],
    }
    for column, values in variants.items():
        for value in values:
            fields = list(base)
            fields[COLUMNS.index(column)] = value
            try:
                mine: Any = decider.decide(fields)
            except RowError as exc:
                mine = ("rejected", str(exc))
            assert mine == _reference(pack, fields, layout), (column, value)


def test_classify_stream_in_memory_counts_by_line(pack: PolicySet) -> None:
    data = (HEADER + "\n" + "\n".join(
        [
            "A,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,",
            "B,APC,2024-06-01,RBQ,80,1,Midlands,QWE,320,I35.0,,K26.2,Y53.1,,,",
            "C,APC,2024-06-01,RBQ,40,1,London,QWE,110,M16.1,,W37.1,,,,",
        ]
    ) + "\n").encode()
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = classify_stream(io.BytesIO(data), out, rejects, pack)
    assert (summary.rows_in, summary.rows_out, summary.rejects) == (3, 3, 0)
    assert summary.by_line() == [
        ("icb_core", "", 1),
        ("icb_delegated", "NCBPS13A", 1),
        ("nhs_england", "NCBPS13A", 1),
    ]
    assert "rows in 3 = classified 3 + rejected 0" in summary.table()
