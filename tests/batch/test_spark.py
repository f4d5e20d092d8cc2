"""`pss batch --engine spark` on local[2] gives the local engine's output (one Spark session).

Spark starts a JVM (Java 17) and Python workers: this module costs tens of seconds of
`make test`, most of it the session's start; every test shares the one session.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import load_policy_set
from chalicelib.batch.cli import batch_main
from chalicelib.batch.columnar import ColumnarPack
from chalicelib.batch.rows import COLUMNS, RESULT_COLUMNS
from chalicelib.batch.spark import classify_dataframe, session
from pss_dev.synth import generate

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "policies"
ROWS = 3000


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    spark = session("local[2]")
    yield spark
    spark.stop()


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _drop_line(rejects: list[list[str]]) -> list[list[str]]:
    """Rejects without their `line` (Spark does not number lines), in input order."""
    return [r[1:] for r in rejects]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spark")
    rows = [r for r in generate(ROWS, 31, bad_share=0.03) if len(r) == len(COLUMNS)]
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)})
    path = folder / "activity.parquet"
    pq.write_table(table, path, row_group_size=1000)
    return path


def test_spark_engine_gives_the_local_output(spark: Any, source: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local.csv", tmp_path / "spark.csv"
    assert batch_main([str(source), "-o", str(local), "--policies", str(NATIONAL)]) == 0
    assert batch_main([str(source), "-o", str(remote), "--policies", str(NATIONAL),
                       "--engine", "spark", "--master", "local[2]"]) == 0
    assert remote.read_bytes() == local.read_bytes()  # same rows, same order, same bytes
    local_rejects = _rows(local.with_suffix(".rejects.csv"))
    spark_rejects = _rows(remote.with_suffix(".rejects.csv"))
    assert len(spark_rejects) > 10
    assert _drop_line(spark_rejects) == _drop_line(local_rejects)
    assert len(_rows(local)) - 1 + len(local_rejects) - 1 == pq.read_metadata(source).num_rows


def test_notebook_entry_point_takes_and_returns_a_dataframe(spark: Any, source: Path) -> None:
    frame = spark.read.parquet(str(source))
    classified = classify_dataframe(frame, NATIONAL)
    assert classified.columns == [*COLUMNS, *RESULT_COLUMNS, "reject_reason", "engine_path"]
    got = {r["record_id"]: r for r in classified.collect()}
    expected = ColumnarPack(load_policy_set(NATIONAL)).classify(
        pq.read_table(source).combine_chunks().to_batches()[0]
    ).to_pylist()
    assert len(got) == len(expected)
    for row in expected:
        mine = got[row["record_id"]]
        assert [mine[c] for c in (*RESULT_COLUMNS, "reject_reason")] == [
            row[c] for c in (*RESULT_COLUMNS, "reject_reason")
        ]
