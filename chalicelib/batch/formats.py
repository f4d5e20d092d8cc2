"""Activity files as Arrow record batches: CSV and Parquet, chosen by the file's extension.

In: a path (`.csv`, `.parquet` / `.pq`). Out: the header, then `Chunk`s — a record batch of
the file's columns (plus `columnar.LINE`, the row's line number) and the rows that could not
be read at all — streamed in pieces of bounded size, so memory stays constant whatever the
file. Writers take record batches and append them to a CSV or Parquet file.

CSV is read line by line, as a broken extract needs, by the one definition of what a physical
line is — `lines.records`, which the row path uses too: one line is one record, and a line it
cannot read (bad UTF-8, NUL, lone CR, an unclosed quote, over-long, empty) or with the wrong
field count becomes one reject with its line number and reason. A short line keeps its fields
as read; any other keeps the line (as `lines.shown` shows it) in the first input column. A
clean block — one `lines.records` would read by a plain comma split — goes through pyarrow's
parser with quoting off, which reads it the same way, much faster; any other block goes
through `lines.records`. Parquet rows are
numbered as the same rows would be in a CSV with a header (first row: line 2), so the two
formats give the same rejects.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from chalicelib.batch.columnar import LINE, positions
from chalicelib.batch.lines import (
    MAX_LINE_CHARS,
    HeaderProblem,
    Record,
    header_fields,
    records,
    shown,
    width_problem,
)
from chalicelib.batch.parallel import iter_blocks, split_header

Arr = Any
REJECT_COLUMNS = ("line", "reason")
PARQUET_SUFFIXES = (".parquet", ".pq")
ROW_GROUP = 1 << 16
PIECE_ROWS = 2 * ROW_GROUP  # rows classified in one call, about a CSV block's
# Bytes of CSV per piece (about 100,000 activity rows): the core's cost per batch is partly
# per call, so pieces are large, yet small enough that the workers share a file evenly (16 MiB
# pieces left one worker idle for the last one: 1.97 s against 1.58 s for 1M rows on 2 cores).
CSV_BLOCK = 8 << 20


class FormatError(Exception):
    """The file cannot be read at all (extension, header, encoding): exit 2, one line."""


def format_of(path: str | Path) -> str:
    """`csv` or `parquet`, from the extension; `FormatError` for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise FormatError(f"`{path}`: unknown file type `{suffix or '(none)'}` "
                      "(use .csv, .parquet or .pq)")


Broken = tuple[int, str, list[str]]  # (line, reason, cells as kept)


@dataclass(frozen=True)
class Chunk:
    """A piece of an input file: the rows read, and the lines that could not be."""

    batch: pa.RecordBatch  # the file's columns (text for CSV) and LINE
    broken: tuple[Broken, ...]
    size: int  # bytes of input it covers (for progress)
    # A clean CSV block's rows as their lines (binary, no line end): exactly what
    # csv.writer would write for their fields, so a CSV output can copy them.
    lines: Any = None


# --- CSV ------------------------------------------------------------------------------------


def csv_header(header_bytes: bytes) -> list[str]:
    """The header line's column names (`lines.header_fields`); `FormatError` when unreadable."""
    try:
        return [h.strip() for h in header_fields(header_bytes)]
    except HeaderProblem as exc:
        raise FormatError(str(exc)) from None


def open_csv(source: BinaryIO) -> tuple[list[str], Iterator[bytes]]:
    """The header and the blocks of whole lines after it."""
    header_bytes, blocks = split_header(iter_blocks(source, CSV_BLOCK))
    return csv_header(header_bytes), blocks


# Text columns pyarrow hands over dictionary-encoded: activity repeats a few thousand distinct
# values per column, so encoding while parsing is cheaper than parsing then encoding (the
# columnar core works on the distinct values). Columns of unique values stay plain.
DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def csv_chunk(
    block: bytes, first_line: int, header: Sequence[str], plain: Collection[str] = ()
) -> Chunk:
    """Parse one block of whole lines starting at `first_line`; the columns named in `plain`
    come as plain text, the others dictionary-encoded when the block is clean."""
    if _clean(block):
        try:
            chunk = _arrow_chunk(block, first_line, header, plain)
        except pa.ArrowInvalid:
            pass  # e.g. bad UTF-8: `lines.records` names the line
        else:
            if chunk is not None:
                return chunk
    return _lines_chunk(block, first_line, header)


def _clean(block: bytes) -> bool:
    """True when `lines.records` would read every line of `block` by a plain comma split (no
    quotes, NUL or lone CR, no empty line), so pyarrow, quoting off, reads it the same way
    (over-long lines are caught after parsing: `_arrow_chunk`)."""
    if b'"' in block or b"\0" in block:
        return False
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return False
    # pyarrow reads an empty line as a row of empty cells
    return not (b"\n\n" in block or b"\n\r\n" in block or block.startswith((b"\n", b"\r\n")))


def _arrow_chunk(
    block: bytes, first_line: int, header: Sequence[str], plain: Collection[str]
) -> Chunk | None:
    """A clean block through pyarrow's parser; lines with the wrong field count are read
    again by `lines.records` for their reject. None when a line may be over-long (its
    length in bytes, never fewer than its characters, is over `MAX_LINE_CHARS`): the caller
    then reads the block line by line."""
    skipped: list[int] = []

    def invalid(row: Any) -> str:
        skipped.append(row.number - 1)
        return "skip"

    width = len(header)
    names = [f"c{i}" for i in range(width)]  # header names may repeat or be empty
    table = pacsv.read_csv(
        io.BytesIO(block),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False,
                                       block_size=max(len(block), 1 << 20)),
        parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=invalid,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() if h in plain else DICTIONARY
                          for n, h in zip(names, header, strict=True)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    arrays = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
    if len(block) > MAX_LINE_CHARS and _longest(arrays) > MAX_LINE_CHARS - 1:
        return None
    raws = pc.list_flatten(pc.split_pattern(pa.array([block], pa.binary()), b"\n"))
    if block.endswith(b"\n"):
        raws = raws.slice(0, len(raws) - 1)
    numbers = positions(len(raws), first_line)
    broken: list[Broken] = []
    if skipped:
        for n in skipped:
            broken += _broken(records(raws[n].as_py(), first_line + n), width)
        kept = pc.invert(pc.is_in(positions(len(raws)),
                                  value_set=pa.array(skipped, pa.int64())))
        raws, numbers = raws.filter(kept), numbers.filter(kept)
    if b"\r" in block:  # CRLF line ends (a clean block has no other CR)
        raws = pc.binary_slice(raws, 0, -1) if _all_crlf(raws) else None
    batch = pa.RecordBatch.from_arrays([*arrays, numbers], names=[*header, LINE])
    return Chunk(batch, tuple(broken), len(block), raws)


def _all_crlf(raws: Arr) -> bool:
    """Every line ends with CR (else a mix of line ends: the rows are not copied)."""
    return not len(raws) or bool(pc.all(pc.ends_with(raws, b"\r")).as_py())


def _longest(arrays: Sequence[Arr]) -> int:
    """Bytes of the longest row as read (its fields and the commas between them; a CRLF
    line end's CR is not counted, so callers leave one byte of room)."""
    total = None
    for column in arrays:
        if pa.types.is_dictionary(column.type):
            length = pc.take(pc.binary_length(column.dictionary), column.indices)
        else:
            length = pc.binary_length(column)
        total = length if total is None else pc.add(total, length)
    if total is None or not len(total):
        return 0
    return int(pc.max(total).as_py()) + len(arrays) - 1


def _lines_chunk(block: bytes, first_line: int, header: Sequence[str]) -> Chunk:
    """One line at a time by `lines.records`, the reference reading of a CSV line."""
    width = len(header)
    rows: list[list[str]] = []
    numbers: list[int] = []
    broken: list[Broken] = []
    for record in records(block, first_line):
        if record[2] is None and len(record[1]) == width:
            rows.append(record[1])
            numbers.append(record[0])
        else:
            broken += _broken([record], width)
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(width)]
    batch = pa.RecordBatch.from_arrays([*columns, pa.array(numbers, pa.int64())],
                                       names=[*header, LINE])
    return Chunk(batch, tuple(broken), len(block))


def _broken(read: Iterable[Record], width: int) -> Iterator[Broken]:
    """The rejects among `read`: a line `lines.records` could not read keeps what it gave (the
    line as shown); one with the wrong field count keeps its fields when they fit under the
    header, else the whole line in the first column (a columnar reject has the header's width)."""
    for at, fields, problem, raw in read:
        problem = problem or width_problem(len(fields), width)
        if problem is None:
            continue
        if len(fields) > width:
            fields = [shown(raw if raw is not None else _csv_text(fields))]
        yield at, problem, fields


def _csv_text(fields: list[str]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(fields)
    return text.getvalue()


# --- Parquet ----------------------------------------------------------------------------


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """Open a Parquet file; `FormatError` when it is not one."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"`{path}` is not a Parquet file ({exc})") from None


def parquet_chunks(
    path: str | Path, groups: Sequence[int], first_row: int, plain: Collection[str] = ()
) -> Iterator[Chunk]:
    """The rows of some consecutive row groups, in pieces of at most `PIECE_ROWS`;
    `first_row` is their first row's index in the file. Text columns not named in `plain`
    come dictionary-encoded, as Parquet mostly stores them (so no values are hashed again)."""
    names = [f.name for f in parquet_file(path).schema_arrow
             if pa.types.is_string(f.type) and f.name not in plain]
    handle = pq.ParquetFile(path, read_dictionary=names)
    size = sum(handle.metadata.row_group(g).total_byte_size for g in groups)
    line = first_row + 2
    for batch in handle.iter_batches(batch_size=PIECE_ROWS, row_groups=list(groups)):
        numbers = positions(batch.num_rows, line)
        line += batch.num_rows
        yield Chunk(batch.append_column(LINE, numbers), (), size)
        size = 0


def row_group_starts(handle: pq.ParquetFile) -> list[tuple[tuple[int, ...], int]]:
    """(consecutive row groups of about `PIECE_ROWS` rows, index of their first row): the
    pieces a file is classified in (the core's cost per batch is mostly per call)."""
    pieces: list[tuple[tuple[int, ...], int]] = []
    groups: list[int] = []
    row = first = 0
    for group in range(handle.metadata.num_row_groups):
        if groups and row - first + handle.metadata.row_group(group).num_rows > PIECE_ROWS:
            pieces.append((tuple(groups), first))
            groups, first = [], row
        groups.append(group)
        row += handle.metadata.row_group(group).num_rows
    if groups:
        pieces.append((tuple(groups), first))
    return pieces


# --- writing ----------------------------------------------------------------------------


def plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns decoded (writers and readers of every format agree on plain text)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
              for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def csv_bytes(batch: pa.RecordBatch) -> bytes:
    """Rows as CSV without a header, quoting only where a value needs it."""
    batch = plain_batch(batch)
    if batch.num_rows == 0:
        return b""
    needs_quotes = any(_may_need_quotes(c) for c in batch.columns)
    if needs_quotes:  # rare: the whole batch through csv.writer, which quotes per value
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        columns = [c.to_pylist() for c in batch.columns]
        writer.writerows([("" if v is None else v) for v in row] for row in zip(*columns,
                                                                                 strict=True))
        return text.getvalue().encode("utf-8")
    out = io.BytesIO()
    pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return out.getvalue()


_SPECIAL = (b'"', b",", b"\r", b"\n")


def _may_need_quotes(column: Arr) -> bool:
    """Whether some value of a text column holds a character csv.writer quotes. The values'
    bytes are searched in place (a superset of them when the array is a slice: a false
    alarm only costs the slow path)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    data = column.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(ch in raw for ch in _SPECIAL)


def csv_lines_bytes(lines: Arr, suffixes: Arr) -> bytes:
    """Rows as CSV from each row's line as read and the text to append to it (both binary,
    aligned): `line + suffix + "\n"` each, one buffer; a row whose suffix is null is left
    out."""
    if not len(lines):
        return b""
    joined = pc.binary_join_element_wise(lines, suffixes, pa.scalar(b"\n"), b"")
    bounds = pa.Array.from_buffers(pa.int32(), len(joined) + 1, [None, joined.buffers()[1]],
                                   offset=joined.offset)
    start, end = bounds[0].as_py(), bounds[-1].as_py()
    data: bytes = joined.buffers()[2].slice(start, end - start).to_pybytes()
    return data


def csv_fields_bytes(fields: Sequence[str]) -> bytes:
    """`,` then the fields as csv.writer writes them (a suffix for `csv_lines_bytes`)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(["", *fields])
    return text.getvalue().encode("utf-8")


def csv_header_bytes(names: Sequence[str]) -> bytes:
    """The header line as csv.writer writes it."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(names)
    return text.getvalue().encode("utf-8")


class Writer:
    """Appends record batches to one output file, CSV or Parquet by its extension."""

    def __init__(
        self, path: str | Path, kind: str | None = None, booleans: Collection[int] = ()
    ) -> None:
        self.path = Path(path)
        self.kind = kind or format_of(path)
        # Positions of `true`/`false` text columns that Parquet stores as booleans (CSV
        # keeps the text).
        self.booleans = frozenset(booleans)
        self._csv: BinaryIO | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append `batch` (the first batch fixes the columns).

        Parquet takes dictionary-encoded text as it is (it stores text dictionary-encoded
        anyway); the file does not keep the Arrow schema, so every reader sees plain text.
        """
        if self.kind == "csv":
            batch = plain_batch(batch)
            if self._csv is None:
                self._csv = self.path.open("wb")
                self._csv.write(csv_header_bytes(batch.schema.names))
            self._csv.write(csv_bytes(batch))
        else:
            batch = self._typed(batch)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, batch.schema, store_schema=False)
                self._schema = batch.schema
            elif self._schema is not None and batch.schema != self._schema:
                # e.g. a block read line by line: plain text where others are dictionaries
                batch = pa.RecordBatch.from_arrays(
                    [c if c.type == f.type else c.cast(f.type)
                     for c, f in zip(batch.columns, self._schema, strict=True)],
                    schema=self._schema,
                )
            if batch.num_rows:
                self._parquet.write_batch(batch, row_group_size=ROW_GROUP)
        self.rows += batch.num_rows

    def write_csv_bytes(self, names: Sequence[str], data: bytes) -> None:
        """Append rows already encoded as CSV (by a worker)."""
        if self._csv is None:
            self._csv = self.path.open("wb")
            self._csv.write(csv_header_bytes(names))
        self._csv.write(data)

    def write_csv_file(self, names: Sequence[str], path: str | Path) -> None:
        """Append a file of rows already encoded as CSV (copied in the kernel if it can)."""
        self.write_csv_bytes(names, b"")
        assert self._csv is not None
        self._csv.flush()
        with Path(path).open("rb") as source:
            size, copied = os.fstat(source.fileno()).st_size, 0
            try:
                while copied < size:
                    done = os.copy_file_range(source.fileno(), self._csv.fileno(), size - copied)
                    if not done:
                        break
                    copied += done
            except (OSError, AttributeError):
                pass  # a file system that cannot, or no copy_file_range (not Linux): by hand
            if copied < size:
                source.seek(copied)
                shutil.copyfileobj(source, self._csv)

    def close(self, schema: pa.Schema) -> None:
        """Finish the file; an empty run still writes the header / schema."""
        if self.kind == "csv":
            if self._csv is None:
                self._csv = self.path.open("wb")
                self._csv.write(csv_header_bytes(schema.names))
            self._csv.close()
        else:
            if self._parquet is None:
                plain = _plain_schema(schema)
                fields = [pa.field(f.name, pa.bool_()) if i in self.booleans else f
                          for i, f in enumerate(plain)]
                self._parquet = pq.ParquetWriter(self.path, pa.schema(fields),
                                                 store_schema=False)
            self._parquet.close()

    def _typed(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.booleans:
            return batch
        arrays = [_boolean(c) if i in self.booleans else c for i, c in enumerate(batch.columns)]
        return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _boolean(column: Arr) -> Arr:
    """`true`/`false` text (plain or dictionary-encoded) as booleans."""
    if pa.types.is_dictionary(column.type):
        return pc.take(pc.equal(column.dictionary, "true"), column.indices)
    return pc.equal(column, "true") if pa.types.is_string(column.type) else column


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in schema
    ])
