"""`pss batch --engine spark` and the notebook entry point: the columnar core on Apache Spark.

In (notebooks, e.g. Databricks): a Spark DataFrame of activity — `rows.COLUMNS`, or a SUS
extract with `profile="sus-apc"` / `"sus-op"` — and a policy folder (default: the bundled
national pack). Out: the same rows, every input column, then `rows.RESULT_COLUMNS`,
`reject_reason` (null for a classified row) and `engine_path`; lazily, as Spark does.

    from chalicelib.batch.spark import classify_dataframe
    classified = classify_dataframe(spark.table("hes.silver.apc"), profile="sus-apc")

How: the pack is compiled once on the driver, pickled (cloudpickle: compiled conditions are
closures) and broadcast; each Python worker unpickles it once (cached by digest) and runs
`ColumnarPack.classify` on every Arrow batch Spark hands to `mapInArrow`. The executors need
this package installed (`pip install 'pss-rules[spark]'`, or `%pip install` on Databricks).

The command (`classify_files_spark`) reads the file with Spark's own reader, writes the
answers as Parquet parts beside the output, then streams the parts, in order, into the same
classified and rejects files the local engine writes. Spark does not number lines: rejects
carry an empty `line`. A CSV line Spark's reader cannot split is rejected with Spark's reading
of it, and Spark skips empty lines where the local engine rejects them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chalicelib.batch.classify import InputError, Summary
from chalicelib.batch.columnar import PATH, REASON, ColumnarPack
from chalicelib.batch.formats import FormatError, format_of
from chalicelib.batch.local import encode_piece, split_decided, write_pieces
from chalicelib.batch.profiles import PROFILES, ProfileError
from chalicelib.batch.rows import RESULT_COLUMNS, HeaderError, Layout, added_column_clash
from chalicelib.engine.policy_set import PolicySet

CORRUPT = "_corrupt_record"
_PACKS: dict[str, ColumnarPack] = {}  # per Python worker: unpickled once per pack


def _pack_on_worker(digest: str, payload: Any) -> ColumnarPack:
    pack = _PACKS.get(digest)
    if pack is None:
        from pyspark import cloudpickle

        pack = _PACKS[digest] = cloudpickle.loads(payload.value)
    return pack


def classify_dataframe(
    frame: Any,
    policies: str | Path | PolicySet | None = None,
    profile: str | None = None,
) -> Any:
    """The DataFrame's rows with their decision columns (see the module docstring)."""
    from pyspark import cloudpickle
    from pyspark.sql.types import StringType, StructField, StructType

    policy_set = _policy_set(policies)
    chosen = PROFILES[profile] if profile else None
    names = [f.name for f in frame.schema.fields if f.name != CORRUPT]
    clash = added_column_clash(names)
    if clash:
        raise InputError(clash)
    try:
        if chosen:
            chosen.check(names)
        else:
            Layout.from_header(names)
    except (HeaderError, ProfileError) as exc:
        raise InputError(str(exc)) from None
    pickled: bytes = cloudpickle.dumps(ColumnarPack(policy_set))  # type: ignore[no-untyped-call]
    payload = frame.sparkSession.sparkContext.broadcast(pickled)  # shipped to executors once
    digest = policy_set.digest

    def classify(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pack = _pack_on_worker(digest, payload)
        for batch in batches:
            own = batch.drop_columns([CORRUPT]) if CORRUPT in batch.schema.names else batch
            decided = pack.classify(chosen.canonical(own) if chosen else own,
                                    names=chosen.names(own.schema.names) if chosen else None)
            if CORRUPT in batch.schema.names:
                broken = pc.is_valid(batch.column(CORRUPT))
                reason = pc.if_else(broken, "row: malformed CSV (as read by Spark)",
                                    decided.column(REASON))
                decided = decided.set_column(decided.schema.get_field_index(REASON), REASON,
                                             reason)
            yield decided

    extra = [StructField(c, StringType(), True) for c in (*RESULT_COLUMNS, REASON, PATH)]
    own = [f for f in frame.schema.fields if f.name != CORRUPT]
    return frame.mapInArrow(classify, StructType([*own, *extra]))


def _policy_set(policies: str | Path | PolicySet | None) -> PolicySet:
    if isinstance(policies, PolicySet):
        return policies
    from chalicelib import load_policy_set
    from chalicelib.settings import default_policy_dir

    return load_policy_set(policies or default_policy_dir())


def session(master: str) -> Any:
    """A Spark session on `master`; local masters run workers on this very interpreter."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        # Python workers must import the same packages (pyarrow, this one) as the driver.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName("pss batch")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "65536")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )


def read(spark: Any, source: Path) -> Any:
    """The input file as a DataFrame: Parquet as typed, CSV as text with corrupt lines kept."""
    from pyspark.sql.types import StringType, StructField, StructType

    if format_of(source) == "parquet":
        return spark.read.parquet(str(source))
    header = spark.read.option("header", True).csv(str(source)).schema.names
    schema = StructType([StructField(n, StringType(), True) for n in [*header, CORRUPT]])
    return (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .schema(schema)
        .csv(str(source))
    )


def classify_files_spark(
    source: Path,
    output: Path,
    rejects: Path,
    policy_set: PolicySet,
    profile: str | None,
    master: str,
) -> Summary:
    """`pss batch --engine spark`: the same files and summary as the local engine."""
    try:
        kinds = (format_of(output), format_of(rejects))
        format_of(source)
    except FormatError as exc:
        raise InputError(str(exc)) from None
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        return _run(source, output, rejects, policy_set, profile, master, kinds)
    except (Py4JError, PySparkException) as exc:
        # Spark's own report is a JVM stack trace: its first line says what went wrong.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"Spark ({master}) failed: {first}") from None


def _run(
    source: Path,
    output: Path,
    rejects: Path,
    policy_set: PolicySet,
    profile: str | None,
    master: str,
    kinds: tuple[str, str],
) -> Summary:
    start = time.perf_counter()
    spark = session(master)
    parts = Path(tempfile.mkdtemp(prefix=".pss-spark-", dir=output.resolve().parent))
    summary = Summary()
    try:
        frame = read(spark, source)
        schema = frame.schema
        decided = classify_dataframe(frame, policy_set, profile)
        decided.write.mode("overwrite").parquet(str(parts / "decided"))
        own_names = [n for n in schema.names if n != CORRUPT]
        files = sorted((parts / "decided").glob("part-*.parquet"))
        pieces = _pieces(files, own_names, kinds)
        first = pq.ParquetFile(files[0]).schema_arrow if files else None
        own_schema = pa.schema([first.field(n) for n in own_names]) if first else pa.schema(
            [pa.field(n, pa.string()) for n in own_names]
        )
        write_pieces(pieces, own_schema, output, rejects, ("", *kinds), summary, None)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    summary.seconds = time.perf_counter() - start
    return summary


def _pieces(files: list[Path], own: list[str], kinds: tuple[str, str]) -> Iterator[Any]:
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=1 << 16):
            own_batch = batch.select(own)
            line = pa.array([""] * batch.num_rows, pa.string())
            out, rejects, paths = split_decided(own_batch, batch, line)
            yield encode_piece(out, rejects, Counter(paths), kinds)


__all__ = ["classify_dataframe", "classify_files_spark", "read", "session"]
