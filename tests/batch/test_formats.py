"""`pss batch` on CSV and Parquet, pss's own columns and SUS extracts, from any folder."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa  # the `arrow` extra: `make install` installs it
import pyarrow.parquet as pq
import pytest

from chalicelib import load_policy_set
from chalicelib.batch import cli
from chalicelib.batch.cli import batch_main, synth_main
from chalicelib.batch.rows import (
    COLUMNS,
    RESULT_COLUMNS,
    Layout,
    RowError,
    decide_reference,
    result_fields,
)
from pss_dev.synth import SUS_COLUMNS, generate, sus_row
from tests.batch.conftest import PACK_DIR

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "policies"


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _write_both(tmp: Path, rows: list[list[str]], header: tuple[str, ...]) -> tuple[Path, Path]:
    source_csv, source_pq = tmp / "in.csv", tmp / "in.parquet"
    with source_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(header)})
    pq.write_table(table, source_pq, row_group_size=700)  # several row groups
    return source_csv, source_pq


@pytest.mark.parametrize("workers", ["1", "2"])
def test_csv_and_parquet_give_identical_outputs(tmp_path: Path, workers: str) -> None:
    rows = [r for r in generate(3000, 21, bad_share=0.05) if len(r) == len(COLUMNS)]
    source_csv, source_pq = _write_both(tmp_path, rows, COLUMNS)
    outputs = {}
    for name, source in (("csv", source_csv), ("pq", source_pq)):
        for kind in ("csv", "parquet"):
            out = tmp_path / f"{name}-out.{kind}"
            code = batch_main([str(source), "-o", str(out), "--policies", str(NATIONAL),
                               "--workers", workers, "--summary", str(tmp_path / f"{name}.json")])
            assert code == 0
            outputs[name, kind] = out
    assert outputs["csv", "csv"].read_bytes() == outputs["pq", "csv"].read_bytes()
    rejects = [p.with_suffix(".rejects.csv") for p in (outputs["csv", "csv"], outputs["pq", "csv"])]
    assert rejects[0].read_bytes() == rejects[1].read_bytes()
    # Parquet out holds the same rows as CSV out, and rows in = rows out + rejects.
    classified = _csv_rows(outputs["csv", "csv"])
    for name in ("csv", "pq"):
        table = pq.read_table(outputs[name, "parquet"])
        assert table.column_names == classified[0]
        assert table.schema.field("verified").type == pa.bool_()  # CSV: true/false text
        as_text = [[str(v).lower() if isinstance(v, bool) else v for v in r.values()]
                   for r in table.to_pylist()]
        assert as_text == classified[1:]
        assert {r["verified"] for r in table.to_pylist()} == {True, False}
        summary = json.loads((tmp_path / f"{name}.json").read_text())
        assert summary["rows_in"] == len(rows) == summary["rows_out"] + summary["rejects"]
        assert summary["rows_by_evaluator"]["columnar"] > 0
    assert len(classified) - 1 + len(_csv_rows(rejects[0])) - 1 == len(rows)


def test_broken_lines_are_one_reject_each(tmp_path: Path) -> None:
    good = "G-1,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,"
    lines = [
        ",".join(COLUMNS).encode(),
        good.encode(),
        b"B-2,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2",  # short
        b'B-3,APC,2024-06-01,RBQ,80,1,London,QWE,320,"I35.0,,K26.2,Y53.1,,,',  # unclosed quote
        good.replace("G-1", "G-4").encode(),
        "B-5,APC,2024-06-01,RBQ,80,1,Londres \xe9,QWE,320,I35.0,,,,,,".encode("latin-1"),
        b"",  # empty
        b'G-7,APC,2024-06-01,RBQ,80,1,London,QWE,320,"I35.0",,K26.2,"Y53.1|Y79.1",,,',
        good.replace("G-1", "B-8").replace("London", "Lon\rdon").encode(),  # lone CR
        good.replace("G-1", "G-9").encode(),
    ]
    source = tmp_path / "in.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.csv"
    assert batch_main([str(source), "-o", str(out), "--policies", str(NATIONAL), "--workers", "1"]) == 0
    classified = _csv_rows(out)
    rejects = _csv_rows(out.with_suffix(".rejects.csv"))
    assert [r[0] for r in classified[1:]] == ["G-1", "G-4", "G-7", "G-9"]
    by_line = {int(r[0]): r for r in rejects[1:]}
    assert sorted(by_line) == [3, 4, 6, 7, 9]  # one reject per broken physical line
    assert "has 12 fields" in by_line[3][1] and by_line[3][2:14] == lines[2].decode().split(",")
    assert by_line[3][14:] == ["", "", "", ""]  # a short line keeps its fields as read
    assert by_line[4][2].startswith('B-3,APC') and by_line[7][1] == "row: is empty"
    assert "UTF-8" in by_line[6][1] and "carriage return (CR)" in by_line[9][1]
    assert len(classified) - 1 + len(rejects) - 1 == len(lines) - 1


def test_the_row_path_without_pyarrow_gives_the_same_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.csv"
    assert synth_main(["--rows", "1500", "--seed", "4", "-o", str(source)]) == 0
    fast, slow = tmp_path / "fast.csv", tmp_path / "slow.csv"
    assert batch_main([str(source), "-o", str(fast), "--policies", str(NATIONAL)]) == 0
    monkeypatch.setattr(cli, "_arrow_available", lambda: False)
    assert batch_main([str(source), "-o", str(slow), "--policies", str(NATIONAL)]) == 0
    assert fast.read_bytes() == slow.read_bytes()
    assert batch_main([str(source), "-o", str(tmp_path / "x.parquet")]) == 2  # says why


def _canonical_answer(policy_set: Any, fields: list[str]) -> tuple[str, ...] | None:
    """What the API answers for a row once drugs, facts and attestations are dropped."""
    cell = dict(zip(COLUMNS, fields, strict=True))
    cell.update(drugs="", facts="", attestations="")
    if cell["secondary_diagnoses"] and not cell["primary_diagnosis"]:
        first, _, rest = cell["secondary_diagnoses"].partition("|")
        cell.update(primary_diagnosis=first, secondary_diagnoses=rest)
    try:
        return result_fields(decide_reference([cell[c] for c in COLUMNS],
                                              Layout.from_header(COLUMNS), policy_set))
    except RowError:
        return None


@pytest.mark.parametrize("profile", ["sus-apc", "sus-op"])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_sus_profiles_decide_synthetic_extracts(tmp_path: Path, profile: str, kind: str) -> None:
    source = tmp_path / f"sus.{kind}"
    assert synth_main(["--rows", "2500", "--seed", "8", "--profile", profile, "-o", str(source)]) == 0
    out = tmp_path / "out.csv"
    assert batch_main([str(source), "--profile", profile, "-o", str(out), "--policies",
                       str(NATIONAL)]) == 0
    classified = _csv_rows(out)
    header = list(SUS_COLUMNS[profile])
    assert classified[0] == [*header, *RESULT_COLUMNS]
    policy_set = load_policy_set(NATIONAL)
    originals = {r[0]: r for r in generate(2500, 8, 0.005) if len(r) == len(COLUMNS)}
    lines = set()
    for row in classified[1:]:
        expected = _canonical_answer(policy_set, originals[row[0]])
        assert tuple(row[len(header):]) == expected, row
        lines.add(row[len(header) + 2])
    assert len(lines) > 10  # specialised service lines found through the SUS columns
    rejects = _csv_rows(out.with_suffix(".rejects.csv"))
    assert len(classified) - 1 + len(rejects) - 1 == 2500


def test_sus_row_writes_codes_as_sus_does() -> None:
    fields = ["R1", "APC", "2024-06-01", "RBQ", "80", "1", "London", "QWE", "320", "I35.0",
              "I10", "K26.2", "Y53.1|Y79.1", "", "", ""]
    row = dict(zip(SUS_COLUMNS["sus-apc"], sus_row(fields, "sus-apc"), strict=True))
    assert row["Der_Procedure_All"] == "K262||Y531||Y791"
    assert row["Spell_Dominant_Procedure"] == "K262" and row["Der_Diagnosis_All"] == "I350||I10"


def test_profile_names_missing_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text("Provider_Code,Der_Procedure_All\nRBQ,K262\n")
    assert batch_main([str(source), "--profile", "sus-apc", "-o", str(tmp_path / "o.csv"),
                       "--policies", str(PACK_DIR)]) == 2
    err = capsys.readouterr().err
    assert "Discharge_Date or Admission_Date" in err and "Der_Diagnosis_All" in err


def test_unknown_extension_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.txt"
    source.write_text(",".join(COLUMNS) + "\n")
    assert batch_main([str(source), "-o", str(tmp_path / "o.csv"), "--policies", str(PACK_DIR)]) == 2
    assert "unknown file type `.txt`" in capsys.readouterr().err


def test_batch_works_from_any_folder_with_the_bundled_pack(tmp_path: Path) -> None:
    """Without --policies and with no ./policies, `pss batch` uses the packaged national pack."""
    source = tmp_path / "in.csv"
    source.write_bytes(b",".join(c.encode() for c in COLUMNS) + b"\n"
                       b"R1,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,\n")
    done = subprocess.run([sys.executable, "-m", "chalicelib.cli", "batch", "in.csv", "-o",
                           "out.csv"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    row = _csv_rows(tmp_path / "out.csv")[1]
    assert row[len(COLUMNS) + 2] == "NCBPS13A"  # TAVI, from the national pack


def test_the_api_never_imports_pyarrow_or_pyspark() -> None:
    """The Lambda import chain (app.py and the S3 batch handler) stays free of the extras."""
    code = (
        "import sys, app\n"
        "from chalicelib.batch import s3_handler\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'pyspark', "
        "'pandas')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_summary_counts_rows_by_evaluator(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(io.StringIO(",".join(COLUMNS) + "\n" + "\n".join(
        ",".join(r) for r in generate(800, 2, 0) )).getvalue() + "\n")
    summary = tmp_path / "s.json"
    assert batch_main([str(source), "-o", str(tmp_path / "o.csv"), "--policies", str(NATIONAL),
                       "--summary", str(summary)]) == 0
    body = json.loads(summary.read_text())
    assert sum(body["rows_by_evaluator"].values()) == body["rows_in"] == 800


def test_the_pyarrow_speed_path_reads_a_clean_block_as_lines_records_does() -> None:
    from chalicelib.batch import formats

    good = "G-1,APC,2024-06-01,RBQ,80,1,London,QWE,320,I35.0,,K26.2,Y53.1,,,"
    block = "\r\n".join([good, good[:40], good + ",x,y", good.replace("G-1", "G-4")]) + "\r\n"
    data = block.encode()
    assert formats._clean(data)  # CRLF ends, wrong widths: still the speed path
    fast = formats._arrow_chunk(data, 2, COLUMNS, COLUMNS)
    slow = formats._lines_chunk(data, 2, COLUMNS)
    assert fast is not None and fast.batch.equals(slow.batch) and fast.broken == slow.broken
    encoded = formats.csv_chunk(data, 2, COLUMNS, ("record_id",))  # the others dictionaries
    assert pa.types.is_dictionary(encoded.batch.schema.field("age").type)
    assert formats.plain_batch(encoded.batch).to_pylist() == slow.batch.to_pylist()
    assert [b[0] for b in fast.broken] == [3, 4] and fast.batch.num_rows == 2
    assert fast.broken[1][2] == [good + ",x,y"]  # too wide: the line whole in one cell
    for dirty in (b'"a",' + data, data.replace(b"RBQ", b"R\0Q"), data + b"\n",
                  data.replace(b"\r\n", b"\r", 1)):
        assert not formats._clean(dirty)
    # A line over the limit with the header's width: found after parsing, read line by line.
    long = data + ("L" * 70_000 + good[3:]).encode() + b"\n"
    assert formats._clean(long) and formats._arrow_chunk(long, 2, COLUMNS, ()) is None
    read = formats.csv_chunk(long, 2, COLUMNS)
    assert read.broken == formats._lines_chunk(long, 2, COLUMNS).broken
    assert [b[0] for b in read.broken] == [3, 4, 6] and "70,0" in read.broken[2][1]


_SPOILED = {  # column -> (bad cell, the reason a CSV user reads)
    "age": ("150", "age: `150` is over 130"),
    "sex": ("7", "sex: `7` is not a sex: 1 (male), 2 (female), 9 (indeterminate), 0 (not "
                 "known), or the word"),
    "icb": ("qwe", "icb: `qwe` is not an ICB code (3 to 5 capital letters or digits, e.g. QWE)"),
    "activity_date": ("01/06/2024", "activity_date: `01/06/2024` is not a date written "
                                    "YYYY-MM-DD"),
    "secondary_diagnoses": ("I10|XYZ", "secondary_diagnoses: `XYZ` is not a valid ICD-10 code"),
}
# The same cells under `--profile sus-apc`, named by the extract's columns.
_SUS_NAMES = {"age": "Age_At_Start_of_Spell_SUS", "sex": "Sex", "icb": "ICB_Code",
              "activity_date": "Discharge_Date", "secondary_diagnoses": "Der_Diagnosis_All"}


@pytest.mark.parametrize("profile", [None, "sus-apc"])
def test_reject_reasons_name_the_files_columns_in_plain_words(tmp_path: Path,
                                                               profile: str | None) -> None:
    good = ["R0", "APC", "2024-06-01", "RBQ", "80", "1", "London", "QWE", "320", "I35.0", "",
            "K26.2", "Y53.1", "", "", ""]
    rows = []
    for n, (column, (bad, _)) in enumerate(_SPOILED.items()):
        row = list(good)
        row[0], row[COLUMNS.index(column)] = f"R{n}", bad
        rows.append(row)
    header: tuple[str, ...] = COLUMNS
    if profile:
        header, rows = SUS_COLUMNS[profile], [sus_row(r, profile) for r in rows]
        rows[-1][-1] = "I350||XYZ"  # SUS writes codes without dots
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *rows])
    args = [str(source), "-o", str(tmp_path / "o.csv"), "--policies", str(NATIONAL)]
    assert batch_main(args + (["--profile", profile] if profile else [])) == 0
    rejects = _csv_rows(tmp_path / "o.rejects.csv")[1:]
    assert len(rejects) == len(_SPOILED)
    for (column, (_, reason)), reject in zip(_SPOILED.items(), rejects, strict=True):
        if profile:
            reason = reason.replace(column, _SUS_NAMES[column], 1)
        assert reject[1] == reason


def test_crlf_and_lf_files_give_the_same_outputs(tmp_path: Path) -> None:
    """Classified rows are copied from the lines read (CRLF ends dropped), as csv.writer
    would write their fields."""
    rows = list(generate(1500, 17, bad_share=0.05))
    text = "\n".join(",".join(r) for r in [list(COLUMNS), *rows]) + "\n"
    outs = []
    for name, data in (("lf", text), ("crlf", text.replace("\n", "\r\n"))):
        source = tmp_path / f"{name}.csv"
        source.write_bytes(data.encode())
        out = tmp_path / f"{name}-out.csv"
        assert batch_main([str(source), "-o", str(out), "--policies", str(NATIONAL)]) == 0
        outs.append((out.read_bytes(), out.with_suffix(".rejects.csv").read_bytes()))
    assert outs[0] == outs[1] and b"\r" not in outs[0][0]
    classified = _csv_rows(tmp_path / "lf-out.csv")
    assert len(classified) > 1000 and classified[0] == [*COLUMNS, *RESULT_COLUMNS]
