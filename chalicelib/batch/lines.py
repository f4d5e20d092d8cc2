"""Activity CSV read one physical line at a time: each data line is one record, or one reject.

In: a block of whole lines (as `parallel.iter_blocks` cuts them) and the input line number of
its first line. Out: per physical line, `(line number, fields, problem or None, raw or None)`.
A line that cannot be read — not UTF-8, a NUL byte, a carriage return inside it, an unbalanced
quote, longer than `MAX_LINE_CHARS` — comes back with its problem and, as its only field, the
line as read (invalid bytes shown as `\\xNN`, cut at `MAX_SHOWN_CHARS`), so a reject row
carries it. Nothing is swallowed: rows in (physical data lines) = rows out + rejects.

Quoted fields are read as CSV, but never across lines: an activity extract has no newlines
inside fields, so a quote left open at the end of its line is that line's error, not a reason
to read on into the rows below it (which is how one stray quote used to hide thousands of rows).

`raw` is the line itself when it had no quotes, so a caller can write it back verbatim (it is
what `csv.writer` would write for the fields).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

# A SUS-like activity row is well under 2 KB; 64 Ki characters leaves room for long drug and
# fact lists while keeping one row's work (and any reject cell) bounded.
MAX_LINE_CHARS = 64 * 1024
# How much of an unreadable line its reject row shows.
MAX_SHOWN_CHARS = 4096

Record = tuple[int, list[str], str | None, str | None]


class HeaderProblem(Exception):
    """The header line cannot be read: the file is refused whole (callers add their prefix)."""


def header_fields(header_bytes: bytes) -> list[str]:
    """The header line's cells (a byte-order mark dropped); `HeaderProblem` when unreadable."""
    if not header_bytes.strip():
        raise HeaderProblem("the file is empty (no header line)")
    try:
        text = header_bytes.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HeaderProblem("the file is not UTF-8 text (header line cannot be decoded)") from None
    if "\r" in text:  # the whole file came as one "line": its lines end with CR alone
        raise HeaderProblem("lines end with a lone carriage return (CR, old Mac style); "
                            "convert the file to LF or CRLF line ends")
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise HeaderProblem(f"the header line is not CSV ({exc})") from None


def width_problem(count: int, width: int) -> str | None:
    """The problem of a line read as `count` fields under a header of `width`, if any."""
    return None if count == width else f"row: has {count} fields, the header has {width}"


def records(block: bytes, first_line: int) -> Iterator[Record]:
    """One record per physical line of `block` (a last line without its newline included)."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        yield from _line_by_line(block.split(b"\n"), first_line)
        return
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if '"' in text or "\r" in text or "\0" in text:
        for n, line in enumerate(lines):
            yield _read(first_line + n, line)
        return
    for n, raw in enumerate(lines):  # the common case: plain lines, split on commas
        if 0 < len(raw) <= MAX_LINE_CHARS:
            yield first_line + n, raw.split(","), None, raw
        elif raw:
            yield _read(first_line + n, raw)
        else:
            yield first_line + n, [], "row: is empty", None


def _line_by_line(raw_lines: list[bytes], first_line: int) -> Iterator[Record]:
    if raw_lines[-1] == b"":
        raw_lines.pop()
    for n, raw in enumerate(raw_lines):
        at = first_line + n
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            problem = f"row: not valid UTF-8 (byte 0x{bad} at offset {exc.start})"
            yield at, [shown(raw.decode("utf-8", errors="backslashreplace"))], problem, None
            continue
        yield _read(at, line)


def _read(at: int, line: str) -> Record:
    """One decoded physical line (its `\\n` removed) as a record."""
    if line.endswith("\r"):
        line = line[:-1]  # CRLF line ends are fine
    if not line:
        return at, [], "row: is empty", None
    if len(line) > MAX_LINE_CHARS:
        return at, [shown(line)], (
            f"row: the line is {len(line):,} characters long; at most {MAX_LINE_CHARS:,}"), None
    nul = line.find("\0")
    if nul >= 0:
        return at, [shown(line)], f"row: holds a NUL byte at character {nul + 1}", None
    cr = line.find("\r")
    if cr >= 0:
        return at, [shown(line)], (
            f"row: holds a carriage return (CR) at character {cr + 1}; lines end with LF or "
            "CRLF"), None
    if '"' not in line:
        return at, line.split(","), None, line
    try:
        fields = next(csv.reader([line], strict=True))
    except csv.Error as exc:
        reason = "a quote is left open" if "end of data" in str(exc) else str(exc)
        return at, [shown(line)], f"row: malformed CSV ({reason})", None
    return at, fields, None, None


def shown(line: str) -> str:
    """`line` for a reject cell: NUL and CR written `\\x00` and `\\r` (so neither reaches an
    output file), cut to `MAX_SHOWN_CHARS` with a note of its full length when longer."""
    visible = line.replace("\0", "\\x00").replace("\r", "\\r")
    if len(visible) <= MAX_SHOWN_CHARS:
        return visible
    return f"{visible[:MAX_SHOWN_CHARS]}... [cut: {len(line):,} characters in all]"
