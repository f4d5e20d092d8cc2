"""Batch classification: an activity CSV in, the same rows with their decision out.

In: a byte source holding a CSV with the `rows.COLUMNS` (any order, extra columns kept).
Out: the classified CSV (every input column, then `rows.RESULT_COLUMNS`), a rejects CSV
(`line`, `reason`, then the input columns as read; a line that could not be read at all
carries the line itself in the first of them) and a `Summary`. Input is read one physical
line at a time (`lines.records`): every data line is written to exactly one of the two, so
rows in (physical data lines) = rows out + rejects.

Rows go through `FastRows` (hand validation, no pydantic) when it is sure of them and through
`PolicySet.decide` otherwise, so decisions and reject reasons are the API's.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from chalicelib.batch.lines import HeaderProblem, header_fields, records
from chalicelib.batch.parallel import Readable, iter_blocks, run_blocks, split_header
from chalicelib.batch.rows import (
    RESULT_COLUMNS,
    HeaderError,
    Layout,
    RowDecider,
    RowError,
    added_column_clash,
)
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PssError

REJECT_COLUMNS = ("line", "reason")
Key = tuple[str, str, str]  # (commissioner, service line or "", eligibility)


class InputError(PssError):
    """The input cannot be classified at all (encoding, header): exit 2, one line."""

    code = "invalid_input"
    status = 400


@dataclass(frozen=True)
class BlockResult:
    """What a worker sends back for one block: output bytes and counts."""

    out: bytes
    rejects: bytes
    rows: int
    rejected: int
    counts: Counter[Key]
    size: int


@dataclass
class Summary:
    """Totals of a run (mutable while the run adds blocks to it)."""

    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0
    seconds: float = 0.0
    counts: Counter[Key] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)  # rows per evaluator (columnar/row)

    def add(self, result: BlockResult) -> None:
        """Fold one block's totals in."""
        self.rows_in += result.rows
        self.rows_out += result.rows - result.rejected
        self.rejects += result.rejected
        self.counts.update(result.counts)

    def by_line(self) -> list[tuple[str, str, int]]:
        """(commissioner, service line, rows), largest first."""
        merged: Counter[tuple[str, str]] = Counter()
        for (commissioner, line, _), n in self.counts.items():
            merged[commissioner, line] += n
        return sorted(((c, s, n) for (c, s), n in merged.items()), key=lambda r: (-r[2], r[:2]))

    def to_dict(self) -> dict[str, object]:
        """JSON form: totals, then counts by commissioner × service line and by eligibility."""
        eligibility: Counter[str] = Counter()
        for (_, _, e), n in self.counts.items():
            eligibility[e] += n
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejects": self.rejects,
            "seconds": round(self.seconds, 3),
            "by_commissioner_and_service_line": [
                {"commissioner": c, "service_line": s or None, "rows": n}
                for c, s, n in self.by_line()
            ],
            "by_eligibility": dict(sorted(eligibility.items())),
            **({"rows_by_evaluator": dict(sorted(self.paths.items()))} if self.paths else {}),
        }

    def table(self, limit: int = 25) -> str:
        """The end-of-run table: commissioner × service line counts, then the totals."""
        lines = [f"{'commissioner':<15} {'service line':<13} {'rows':>10} {'share':>7}"]
        total = max(self.rows_out, 1)
        ranked = self.by_line()
        for commissioner, line, n in ranked[:limit]:
            lines.append(f"{commissioner:<15} {line or '-':<13} {n:>10,} {n / total:>7.1%}")
        if len(ranked) > limit:
            rest = sum(n for _, _, n in ranked[limit:])
            lines.append(f"{'(other lines)':<29} {rest:>10,} {rest / total:>7.1%}")
        if self.paths:
            lines.append("decided by: " + ", ".join(
                f"{name} {n:,}" for name, n in sorted(self.paths.items())))
        rate = self.rows_in / self.seconds if self.seconds else 0.0
        lines.append(
            f"rows in {self.rows_in:,} = classified {self.rows_out:,} + rejected "
            f"{self.rejects:,} (one row per physical data line); {self.seconds:.1f} s, "
            f"{rate:,.0f} rows/s"
        )
        return "\n".join(lines)


class Classifier:
    """Classifies blocks of rows with one policy set; used in-process or in forked workers."""

    def __init__(self, policy_set: PolicySet, layout: Layout) -> None:
        self.decider = RowDecider(policy_set, layout)
        self.suffixes: dict[tuple[str, ...], str] = {}

    def _suffix(self, result: tuple[str, ...]) -> str:
        """`,<result columns>\n` as csv.writer writes it (few distinct results: cached)."""
        try:
            return self.suffixes[result]
        except KeyError:
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerow(["", *result])
            self.suffixes[result] = text.getvalue()
            return self.suffixes[result]

    def __call__(self, block: bytes, first_line: int) -> BlockResult:
        """Classify one block of whole records starting at input line `first_line`."""
        out, rej = io.StringIO(), io.StringIO()
        emit, write = out.write, csv.writer(out, lineterminator="\n").writerow
        reject = csv.writer(rej, lineterminator="\n").writerow
        counts: Counter[Key] = Counter()
        decide, suffix = self.decider.decide, self._suffix
        rows = rejected = 0
        for at, fields, problem, raw in records(block, first_line):
            rows += 1
            if problem is None:
                try:
                    result = decide(fields)
                except RowError as exc:
                    problem = str(exc)
                else:
                    if raw is None:
                        write(fields + list(result))
                    else:
                        emit(raw + suffix(result))
                    counts[result[0], result[2], result[5]] += 1
                    continue
            rejected += 1
            reject([at, problem, *fields])
        return BlockResult(
            out.getvalue().encode("utf-8"),
            rej.getvalue().encode("utf-8"),
            rows,
            rejected,
            counts,
            len(block),
        )


def read_layout(blocks: Iterator[bytes]) -> tuple[Layout, Iterator[bytes]]:
    """Read and check the header; raise `InputError` when the file is not an activity CSV."""
    header_bytes, rest = split_header(blocks)
    try:
        return Layout.from_header(header_fields(header_bytes)), rest
    except HeaderProblem as exc:
        raise InputError(str(exc)) from None
    except HeaderError as exc:
        raise InputError(f"not an activity CSV: {exc}") from None


class Progress:
    """A one-line progress bar with rows/s on stderr, drawn only when stderr is a terminal."""

    def __init__(self, total_bytes: int | None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = total_bytes
        self.start = self.last = time.perf_counter()
        self.rows = self.done = 0

    def update(self, rows: int, size: int) -> None:
        """Count a finished block; redraw at most ten times a second."""
        self.rows += rows
        self.done += size
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        rate = self.rows / max(now - self.start, 1e-9)
        bar = ""
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * 30)
            bar = f" [{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}"
        self.stream.write(f"\r{self.rows:>12,} rows {rate:>10,.0f} rows/s{bar}")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def classify_stream(
    source: Readable,
    out: BinaryIO,
    rejects: BinaryIO,
    policy_set: PolicySet,
    workers: int = 1,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Summary:
    """Classify `source` into `out` and `rejects`; raise `InputError` for an unusable file."""
    start = clock()
    layout, blocks = read_layout(iter_blocks(source))
    header = list(layout.header)
    clash = added_column_clash(header)
    if clash:
        raise InputError(clash)
    out.write(_csv_line([*header, *RESULT_COLUMNS]))
    rejects.write(_csv_line([*REJECT_COLUMNS, *header]))
    summary = Summary()
    for result in run_blocks(blocks, Classifier(policy_set, layout), workers):
        out.write(result.out)
        rejects.write(result.rejects)
        summary.add(result)
        if progress is not None:
            progress.update(result.rows, result.size)
    if progress is not None:
        progress.close()
    summary.seconds = clock() - start
    return summary


def _csv_line(fields: list[str]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(fields)
    return text.getvalue().encode("utf-8")
