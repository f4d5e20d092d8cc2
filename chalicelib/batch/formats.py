"""Activity files as Arrow record batches: CSV and Parquet, chosen by the file's extension.

In: a path (`.csv`, `.parquet` / `.pq`). Out: the header, then `Chunk`s — a record batch of
the file's columns (plus `columnar.LINE`, the row's line number) and the rows that could not
be read at all — streamed in pieces of bounded size, so memory stays constant whatever the
file. Writers take record batches and append them to a CSV or Parquet file.

CSV is read line by line, as a broken extract needs: one physical line is one record, and a
line that cannot be split into the header's fields (wrong field count, an unclosed quote, bad
UTF-8, empty) becomes one reject with its line number and reason: a short line keeps its
fields as read, any other keeps the raw line whole in the first input column. A block of
lines goes through pyarrow's CSV parser when nothing in it can make pyarrow and that rule
disagree (multi-line quotes, lone carriage returns, empty lines, bad UTF-8); otherwise
through Python's `csv`, one line at a time. Parquet rows are
numbered as the same rows would be in a CSV with a header (first row: line 2), so the two
formats give the same rejects.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from chalicelib.batch.columnar import LINE
from chalicelib.batch.parallel import iter_blocks, split_header

Arr = Any
REJECT_COLUMNS = ("line", "reason")
PARQUET_SUFFIXES = (".parquet", ".pq")
ROW_GROUP = 1 << 16
# Bytes of CSV per piece (about 130,000 activity rows): the core's cost per batch is mostly
# per call, not per row, so pieces are large; a few are in flight at once.
CSV_BLOCK = 16 << 20


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


@dataclass(frozen=True)
class Chunk:
    """A piece of an input file: the rows read, and the lines that could not be."""

    batch: pa.RecordBatch  # the file's columns (text for CSV) and LINE
    broken: tuple[tuple[int, str, list[str]], ...]  # (line, reason, cells as kept)
    size: int  # bytes of input it covers (for progress)


# --- CSV ------------------------------------------------------------------------------------


def csv_header(header_bytes: bytes) -> list[str]:
    """The header line's column names; `FormatError` when it is not readable CSV."""
    if not header_bytes.strip():
        raise FormatError("the file is empty (no header line)")
    try:
        text = header_bytes.decode("utf-8-sig")
        return [h.strip() for h in next(csv.reader([text], strict=True))]
    except UnicodeDecodeError:
        raise FormatError("the file is not UTF-8 text (header line cannot be decoded)") from None
    except csv.Error as exc:
        raise FormatError(f"the header line is not CSV ({exc})") from None


def open_csv(source: BinaryIO) -> tuple[list[str], Iterator[bytes]]:
    """The header and the blocks of whole lines after it."""
    header_bytes, blocks = split_header(iter_blocks(source, CSV_BLOCK))
    return csv_header(header_bytes), blocks


def csv_chunk(block: bytes, first_line: int, header: Sequence[str]) -> Chunk:
    """Parse one block of whole lines starting at `first_line`."""
    if _pyarrow_safe(block):
        try:
            return _arrow_chunk(block, first_line, header)
        except pa.ArrowInvalid:
            pass  # e.g. bad UTF-8 inside a field: the line-by-line reader names the line
    return _python_chunk(block, first_line, header)


def _pyarrow_safe(block: bytes) -> bool:
    """True when pyarrow's parser splits this block into records exactly at its newlines."""
    if b"\n\n" in block or block.startswith(b"\n") or b"\n\r\n" in block:
        return False  # pyarrow reads an empty line as a row of empty cells
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return False
    if b'"' in block:
        return all(line.count(b'"') % 2 == 0 for line in block.split(b"\n"))
    return True


def _arrow_chunk(block: bytes, first_line: int, header: Sequence[str]) -> Chunk:
    broken: list[tuple[int, str, list[str]]] = []
    width = len(header)

    def invalid(row: Any) -> str:
        line = first_line + row.number - 1
        fields = next(csv.reader([row.text]))
        broken.append((line, f"row: has {len(fields)} fields, the header has {width}",
                       kept(fields, row.text, width)))
        return "skip"

    names = [f"c{i}" for i in range(width)]  # header names may repeat or be empty
    table = pacsv.read_csv(
        io.BytesIO(block),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False,
                                       block_size=max(len(block), 1 << 20)),
        parse_options=pacsv.ParseOptions(invalid_row_handler=invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    skipped = {b[0] for b in broken}
    numbers = [n for n in range(first_line, first_line + lines) if n not in skipped]
    arrays = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in table.columns]
    batch = pa.RecordBatch.from_arrays([*arrays, pa.array(numbers, pa.int64())],
                                       names=[*header, LINE])
    return Chunk(batch, tuple(broken), len(block))


def _python_chunk(block: bytes, first_line: int, header: Sequence[str]) -> Chunk:
    """One line at a time: the reference reading of a CSV line."""
    width = len(header)
    rows: list[list[str]] = []
    numbers: list[int] = []
    broken: list[tuple[int, str, list[str]]] = []
    raws = block.split(b"\n")
    if raws and raws[-1] == b"":
        raws.pop()
    for n, raw in enumerate(raws):
        line = first_line + n
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            reason = f"row: not valid UTF-8 (byte 0x{bad} at offset {exc.start})"
            broken.append((line, reason, [raw.decode("utf-8", errors="replace")]))
            continue
        if not text:
            broken.append((line, "row: is empty", []))
            continue
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            broken.append((line, f"row: malformed CSV ({exc})", [text]))
            continue
        if len(fields) != width:
            reason = f"row: has {len(fields)} fields, the header has {width}"
            broken.append((line, reason, kept(fields, text, width)))
            continue
        rows.append(fields)
        numbers.append(line)
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(width)]
    batch = pa.RecordBatch.from_arrays([*columns, pa.array(numbers, pa.int64())],
                                       names=[*header, LINE])
    return Chunk(batch, tuple(broken), len(block))


def kept(fields: list[str], text: str, width: int) -> list[str]:
    """What a reject keeps of a line with the wrong field count: nothing may be lost."""
    return fields if len(fields) <= width else [text]


# --- Parquet ----------------------------------------------------------------------------


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """Open a Parquet file; `FormatError` when it is not one."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"`{path}` is not a Parquet file ({exc})") from None


def parquet_chunks(path: str | Path, group: int, first_row: int) -> Iterator[Chunk]:
    """The rows of one row group, in pieces; `first_row` is its first row's index in the file."""
    handle = parquet_file(path)
    size = handle.metadata.row_group(group).total_byte_size
    line = first_row + 2
    for batch in handle.iter_batches(batch_size=2 * ROW_GROUP, row_groups=[group]):
        numbers = pa.array(range(line, line + batch.num_rows), pa.int64())
        line += batch.num_rows
        yield Chunk(batch.append_column(LINE, numbers), (), size)
        size = 0


def row_group_starts(handle: pq.ParquetFile) -> list[tuple[int, int]]:
    """(row group, index of its first row) for every row group."""
    starts, row = [], 0
    for group in range(handle.metadata.num_row_groups):
        starts.append((group, row))
        row += handle.metadata.row_group(group).num_rows
    return starts


# --- writing ----------------------------------------------------------------------------


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns decoded (writers and readers of every format agree on plain text)."""
    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    arrays = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
              for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def csv_bytes(batch: pa.RecordBatch) -> bytes:
    """Rows as CSV without a header, quoting only where a value needs it."""
    batch = _plain(batch)
    if batch.num_rows == 0:
        return b""
    needs_quotes = any(
        (pa.types.is_string(c.type) or pa.types.is_large_string(c.type))
        and pc.any(pc.match_substring_regex(c, '[",\r\n]')).as_py()
        for c in batch.columns
    )
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


def csv_header_bytes(names: Sequence[str]) -> bytes:
    """The header line as csv.writer writes it."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(names)
    return text.getvalue().encode("utf-8")


class Writer:
    """Appends record batches to one output file, CSV or Parquet by its extension."""

    def __init__(self, path: str | Path, kind: str | None = None) -> None:
        self.path = Path(path)
        self.kind = kind or format_of(path)
        self._csv: BinaryIO | None = None
        self._parquet: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append `batch` (the first batch fixes the columns)."""
        batch = _plain(batch)
        if self.kind == "csv":
            if self._csv is None:
                self._csv = self.path.open("wb")
                self._csv.write(csv_header_bytes(batch.schema.names))
            self._csv.write(csv_bytes(batch))
        else:
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, batch.schema)
            if batch.num_rows:
                self._parquet.write_batch(batch, row_group_size=ROW_GROUP)
        self.rows += batch.num_rows

    def write_csv_bytes(self, names: Sequence[str], data: bytes) -> None:
        """Append rows already encoded as CSV (by a worker)."""
        if self._csv is None:
            self._csv = self.path.open("wb")
            self._csv.write(csv_header_bytes(names))
        self._csv.write(data)

    def close(self, schema: pa.Schema) -> None:
        """Finish the file; an empty run still writes the header / schema."""
        if self.kind == "csv":
            if self._csv is None:
                self._csv = self.path.open("wb")
                self._csv.write(csv_header_bytes(schema.names))
            self._csv.close()
        else:
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, _plain_schema(schema))
            self._parquet.close()


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in schema
    ])
