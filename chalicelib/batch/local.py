"""`pss batch --engine local`: files in, files out, through the columnar core on every core.

In: an input path (CSV or Parquet), an output path and a rejects path (each CSV or Parquet by
its extension), a compiled `ColumnarPack`, an optional SUS profile and a worker count. Out:
the classified file (every input column, then `rows.RESULT_COLUMNS`), the rejects file
(`line`, `reason`, then the input columns) and a `Summary`. Every row read is written to
exactly one of the two: rows in = rows out + rejects.

CSV is cut into blocks of whole lines, Parquet into row groups; forked workers parse, classify
and encode a piece each and the parent writes them in input order, a few pieces in flight at
once, so memory stays constant whatever the file size.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chalicelib.batch.classify import InputError, Key, Progress, Summary
from chalicelib.batch.columnar import LINE, PATH, REASON, ColumnarPack
from chalicelib.batch.formats import (
    REJECT_COLUMNS,
    Chunk,
    FormatError,
    Writer,
    csv_bytes,
    csv_chunk,
    csv_fields_bytes,
    csv_lines_bytes,
    format_of,
    open_csv,
    parquet_chunks,
    parquet_file,
    plain_batch,
    row_group_starts,
)
from chalicelib.batch.parallel import run_ordered
from chalicelib.batch.profiles import Profile, ProfileError
from chalicelib.batch.rows import RESULT_COLUMNS, HeaderError, Layout, added_column_clash

Arr = Any


@dataclass(frozen=True)
class Piece:
    """What a worker sends back for one piece: encoded output and its counts."""

    out: bytes  # CSV rows, or an Arrow IPC stream (Parquet output)
    rejects: bytes
    rows: int
    rejected: int
    counts: Counter[Key]
    paths: Counter[str]
    size: int
    spilled: str | None = None  # `out` written to this file instead (forked workers)


@dataclass
class Job:
    """Classifies pieces of one input; runs in the parent or in forked workers."""

    pack: ColumnarPack
    header: list[str]
    profile: Profile | None
    out_kind: str
    rejects_kind: str
    schemas: dict[str, pa.Schema] = field(default_factory=dict)
    # Forked workers hand their output over in files here (the parent copies them into the
    # output in the kernel), not through the pool's pipes.
    spill: Path | None = None

    def split(
        self, chunk: Chunk
    ) -> tuple[pa.RecordBatch, pa.RecordBatch, Counter[str], bytes | None]:
        """(classified rows, rejected rows, rows per evaluator) of one chunk, and the
        classified rows as CSV when they can be copied from the lines read."""
        own = chunk.batch.drop_columns([LINE])
        canonical = self.profile.canonical(own) if self.profile else own
        names = self.profile.names(own.schema.names) if self.profile else None
        decided = self.pack.classify(canonical, encoded=True, names=names)
        out, rejects, paths = split_decided(own, decided,
                                            pc.cast(chunk.batch.column(LINE), pa.string()))
        if chunk.broken:
            rejects = _with_broken(rejects, chunk.broken, own.schema)
        copied = None
        if self.out_kind == "csv" and chunk.lines is not None:
            copied = _copied_lines(chunk.lines, decided)
        return out, rejects, paths, copied

    def __call__(self, chunks: Iterator[Chunk] | Chunk, _number: int = 0) -> Piece:
        """Classify and encode the chunks of one piece."""
        outs: list[bytes] = []
        rejs: list[bytes] = []
        counts: Counter[Key] = Counter()
        paths: Counter[str] = Counter()
        rows = rejected = size = 0
        for chunk in [chunks] if isinstance(chunks, Chunk) else chunks:
            out, rejects, chunk_paths, copied = self.split(chunk)
            rows += out.num_rows + rejects.num_rows
            rejected += rejects.num_rows
            size += chunk.size
            paths.update(chunk_paths)
            counts.update(_counts(out))
            outs.append(copied if copied is not None else _encode(out, self.out_kind))
            rejs.append(_encode(rejects, self.rejects_kind))
        out = b"".join(outs)
        spilled = None
        if self.spill is not None:
            handle, spilled = tempfile.mkstemp(dir=self.spill)
            with os.fdopen(handle, "wb") as file:
                file.write(out)
            out = b""
        return Piece(out, b"".join(rejs), rows, rejected, counts, paths, size, spilled)


def encode_piece(
    out: pa.RecordBatch, rejects: pa.RecordBatch, paths: Counter[str], kinds: tuple[str, str]
) -> Piece:
    """One piece ready for `write_pieces`: encoded for the output and rejects formats."""
    rows = out.num_rows + rejects.num_rows
    return Piece(_encode(out, kinds[0]), _encode(rejects, kinds[1]), rows, rejects.num_rows,
                 _counts(out), paths, 0)


def split_decided(
    own: pa.RecordBatch, decided: pa.RecordBatch, line: Arr
) -> tuple[pa.RecordBatch, pa.RecordBatch, Counter[str]]:
    """The input rows with their decision, split into classified and rejected rows.

    `own`: the rows as read; `decided`: the core's answer for them, row for row; `line`: each
    row's line number as text (empty when unknown, as under Spark).
    """
    rejected = pc.is_valid(decided.column(REASON))
    paths: Counter[str] = Counter(
        {k: v for k, v in _value_counts(decided.column(PATH)).items() if k}
    )
    results = [decided.column(c) for c in RESULT_COLUMNS]
    out = pa.RecordBatch.from_arrays(
        [*own.columns, *results], names=[*own.schema.names, *RESULT_COLUMNS]
    ).filter(pc.invert(rejected))
    rejects = pa.RecordBatch.from_arrays(
        [line, decided.column(REASON), *own.columns],
        names=[*REJECT_COLUMNS, *own.schema.names],
    ).filter(rejected)
    return out, rejects, paths


def _copied_lines(lines: Arr, decided: pa.RecordBatch) -> bytes | None:
    """The classified rows as CSV: each one's line as read, then its result columns.

    The result columns come dictionary-encoded over one outcome table (`classify` with
    `encoded`): each table row is encoded once, as csv.writer would write it.
    """
    columns = [decided.column(c) for c in RESULT_COLUMNS]
    if not all(pa.types.is_dictionary(c.type) for c in columns):
        return None
    outcome = columns[0].indices
    if not all(c.indices.equals(outcome) for c in columns[1:]):
        return None
    tables = [c.dictionary.to_pylist() for c in columns]
    suffixes = pa.array([csv_fields_bytes(row) for row in zip(*tables, strict=True)],
                        pa.binary())
    # A rejected row has no outcome: its suffix, so its joined line, is null and takes no
    # bytes in the buffer written out.
    return csv_lines_bytes(lines, pc.take(suffixes, outcome))


def _value_counts(column: Arr) -> dict[str, int]:
    counted = pc.value_counts(column)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(),
                    strict=True))


_KEYS = ("commissioner", "service_line", "eligibility")


def _counts(out: pa.RecordBatch) -> Counter[Key]:
    """Rows per (commissioner, service line, eligibility)."""
    if not out.num_rows:
        return Counter()
    columns = [out.column(c) for c in _KEYS]
    if all(pa.types.is_dictionary(c.type) for c in columns) and all(
        c.indices.equals(columns[0].indices) for c in columns[1:]
    ):  # the core's outcome table: count per outcome, then per key
        counted = pc.value_counts(columns[0].indices)
        values = [c.dictionary.to_pylist() for c in columns]
        found: Counter[Key] = Counter()
        for at, n in zip(counted.field("values").to_pylist(),
                         counted.field("counts").to_pylist(), strict=True):
            found[values[0][at], values[1][at], values[2][at]] += n
        return found
    table = pa.Table.from_batches([out]).group_by(list(_KEYS)).aggregate([([], "count_all")])
    keys = zip(*(table.column(c).to_pylist() for c in _KEYS), strict=True)
    return Counter(dict(zip(keys, table.column("count_all").to_pylist(), strict=True)))


def _with_broken(
    rejects: pa.RecordBatch, broken: tuple[tuple[int, str, list[str]], ...], schema: pa.Schema
) -> pa.RecordBatch:
    """Rejects plus the lines that could not be read, in line order."""
    width = len(schema.names)
    cells = [b[2] + [""] * (width - len(b[2])) for b in broken]
    columns: list[list[str]] = [[str(b[0]) for b in broken], [b[1] for b in broken]]
    columns += [[c[i] for c in cells] for i in range(width)]
    extra = pa.RecordBatch.from_arrays(
        [pa.array(c, pa.string()) for c in columns], names=rejects.schema.names
    )
    rejects = plain_batch(rejects)
    both = pa.Table.from_batches([rejects, extra.cast(rejects.schema)])
    order = pc.sort_indices(pc.cast(both.column("line"), pa.int64()))
    return both.take(order).combine_chunks().to_batches()[0] if both.num_rows else rejects


def _encode(batch: pa.RecordBatch, kind: str) -> bytes:
    if kind == "csv":
        return csv_bytes(batch)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    return sink.getvalue()


def _write_spilled(writer: Writer, columns: list[str], path: str) -> None:
    """A worker's output file into the output, then gone."""
    try:
        if writer.kind == "csv":
            writer.write_csv_file(columns, path)
        else:
            with pa.memory_map(path) as source:
                for batch in _decode(source.read_buffer()):
                    writer.write(batch)
    finally:
        Path(path).unlink()


def _decode(data: bytes | pa.Buffer) -> Iterator[pa.RecordBatch]:
    """The batches of the IPC streams `_encode` wrote back to back."""
    source = pa.BufferReader(data)
    while source.tell() < len(data):
        reader = pa.ipc.open_stream(source)
        yield from reader


def _check_header(header: list[str], profile: Profile | None) -> None:
    clash = added_column_clash(header)
    if clash:
        raise InputError(clash)
    try:
        if profile:
            profile.check(header)
        else:
            Layout.from_header(header)
    except (HeaderError, ProfileError) as exc:
        prefix = "" if profile else "not an activity file: "
        raise InputError(prefix + str(exc)) from None


def classify_files(
    source: Path,
    output: Path,
    rejects: Path,
    pack: ColumnarPack,
    profile: Profile | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Summary:
    """Classify `source` into `output` and `rejects`; `InputError` for an unusable file."""
    start = clock()
    try:
        kinds = format_of(source), format_of(output), format_of(rejects)
    except FormatError as exc:
        raise InputError(str(exc)) from None
    summary = Summary()
    spill = Path(tempfile.mkdtemp(prefix=".pss-batch-", dir=_spill_root(output))) if (
        workers > 1) else None
    # One clean-up for the spill folder, whether the input fails to open or the run stops.
    try:
        with source.open("rb") as handle:
            plain = _identifiers(profile)
            if kinds[0] == "csv":
                header, blocks = open_csv(handle)
                _check_header(header, profile)
                job = Job(pack, header, profile, kinds[1], kinds[2], spill=spill)

                def parse(block: bytes | tuple[int, int], line: int) -> Piece:
                    if isinstance(block, tuple):  # a forked worker reads its own block
                        block = _read_span(source, block)
                    return job(csv_chunk(block, line, header, plain))

                items: Iterator[tuple[bytes | tuple[int, int], int]] = (
                    _spans(source, _numbered(blocks)) if spill else _numbered(blocks))
                pieces = run_ordered(items, parse, workers)
                schema = pa.schema([pa.field(h, pa.string()) for h in header])
            else:
                meta = parquet_file(source)
                schema = meta.schema_arrow
                header = list(schema.names)
                _check_header(header, profile)
                job = Job(pack, header, profile, kinds[1], kinds[2], spill=spill)
                path = str(source)

                def groups(group: tuple[int, ...], first: int) -> Piece:
                    return job(parquet_chunks(path, group, first, plain))

                pieces = run_ordered(iter(row_group_starts(meta)), groups, workers)
            write_pieces(pieces, schema, output, rejects, kinds, summary, progress)
    except FormatError as exc:
        raise InputError(str(exc)) from None
    finally:
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    summary.seconds = clock() - start
    return summary


# Pieces in flight: up to 2 × workers + 1 pending results of about 12 MiB each (an 8 MiB CSV
# piece spills about 1.5 times its size), with room to spare; a container's default
# /dev/shm (64 MiB) is too small, and then the pieces go beside the output.
SHM_NEEDED = 1 << 30


def _spill_root(output: Path) -> Path:
    """Where workers leave their pieces: shared memory when there is some (a few pieces of
    a few MiB in flight; no disk writes), else beside the output."""
    shm = Path("/dev/shm")
    if (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)
            and shutil.disk_usage(shm).free >= SHM_NEEDED):
        return shm
    return output.resolve().parent


def _spans(
    source: Path, blocks: Iterator[tuple[bytes, int]]
) -> Iterator[tuple[tuple[int, int], int]]:
    """Each block as (offset, length) in the file: forked workers read it themselves, so
    the data does not also cross the pool's pipes."""
    with source.open("rb") as handle:
        at = len(handle.readline())  # the header line, with its line end
    for block, line in blocks:
        yield (at, len(block)), line
        at += len(block)


def _read_span(source: Path, span: tuple[int, int]) -> bytes:
    with source.open("rb") as handle:
        handle.seek(span[0])
        return handle.read(span[1])


def _identifiers(profile: Profile | None) -> frozenset[str]:
    """Columns of (nearly) unique values, which dictionary encoding would only slow down."""
    source = profile.sources.get("record_id") if profile else None
    return frozenset(("record_id", *(source.names if source else ())))


def _numbered(blocks: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
    line = 2
    for block in blocks:
        yield block, line
        line += block.count(b"\n")


def write_pieces(
    pieces: Iterator[Piece],
    schema: pa.Schema,
    output: Path,
    rejects: Path,
    kinds: tuple[str, str, str],
    summary: Summary,
    progress: Progress | None,
) -> None:
    names = list(schema.names)
    out_schema = pa.schema([*schema, *(pa.field(c, pa.string()) for c in RESULT_COLUMNS)])
    rej_schema = pa.schema([pa.field(c, pa.string()) for c in REJECT_COLUMNS] + list(schema))
    # `verified` is a boolean in Parquet (true/false text in CSV).
    verified = len(names) + RESULT_COLUMNS.index("verified")
    # Both files are written under temporary names beside their targets and renamed only
    # once complete: a run stopped part-way (Ctrl-C, a bad block, a full disk) leaves no
    # half-written file that looks like a result, and an earlier result stays as it was.
    partial = {target: target.with_name(f".{target.name}.partial-{os.getpid()}")
               for target in (output, rejects)}
    out_writer = Writer(partial[output], kinds[1], booleans=(verified,))
    rej_writer = Writer(partial[rejects], kinds[2])
    try:
        _write_all(pieces, names, out_writer, rej_writer, summary, progress)
        out_writer.close(out_schema)
        rej_writer.close(rej_schema)
        for target, written in partial.items():
            written.replace(target)
    finally:
        for written in partial.values():
            written.unlink(missing_ok=True)


def _write_all(pieces: Iterator[Piece], names: list[str], out_writer: Writer,
               rej_writer: Writer, summary: Summary, progress: Progress | None) -> None:
    for piece in pieces:
        for writer, data, columns in (
            (out_writer, piece.out, [*names, *RESULT_COLUMNS]),
            (rej_writer, piece.rejects, [*REJECT_COLUMNS, *names]),
        ):
            spilled = piece.spilled if writer is out_writer else None
            if spilled is not None:
                _write_spilled(writer, columns, spilled)
            elif writer.kind == "csv":
                writer.write_csv_bytes(columns, data)
            else:
                for batch in _decode(data):
                    writer.write(batch)
        summary.rows_in += piece.rows
        summary.rows_out += piece.rows - piece.rejected
        summary.rejects += piece.rejected
        summary.counts.update(piece.counts)
        summary.paths.update(piece.paths)
        if progress is not None:
            progress.update(piece.rows, piece.size)
    if progress is not None:
        progress.close()


__all__ = ["Job", "Piece", "classify_files", "encode_piece", "split_decided", "write_pieces"]
