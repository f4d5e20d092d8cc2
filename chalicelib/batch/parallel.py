"""Streaming a CSV in blocks of whole records, and running a job over them on every core.

In: anything with `read(n) -> bytes` (a file, an S3 body). Out: blocks of complete CSV records
(whole lines), then the job's results in input order. At most a few blocks
are in flight at once, so memory stays constant whatever the file size.

Workers are forked: they inherit the compiled policy sets already in memory (compiled packs
hold closures, which do not pickle), and only bytes and small results cross process lines.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

BLOCK_SIZE = 1 << 20

R = TypeVar("R")
Job = Callable[[bytes, int], R]


class Readable(Protocol):
    """A binary source: a file opened "rb", a botocore StreamingBody."""

    def read(self, size: int = ..., /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


def iter_blocks(source: Readable, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Yield the source as blocks that end at a record boundary (the last may lack a newline)."""
    carry = b""
    while True:
        data = source.read(size)
        if not data:
            if carry:
                yield carry
            return
        buf = carry + data if carry else data
        cut = buf.rfind(b"\n")
        # Records are physical lines (`lines.records`): any newline is a boundary, and a
        # stray quote never holds the rest of the file back.
        if cut < 0:
            carry = buf
            continue
        yield buf[: cut + 1]
        carry = buf[cut + 1 :]


def split_header(blocks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first line (the header, without its line end) and the blocks that follow it."""
    for block in blocks:
        end = block.find(b"\n")
        if end < 0:
            return block.rstrip(b"\r"), blocks
        rest = block[end + 1 :]

        def chained(first: bytes = rest) -> Iterator[bytes]:
            if first:
                yield first
            yield from blocks

        return block[:end].rstrip(b"\r"), chained()
    return b"", iter(())


_JOB: Callable[..., object] | None = None
T = TypeVar("T")


def _call(*args: object) -> object:
    assert _JOB is not None, "worker started without a job"
    return _JOB(*args)


def run_blocks(
    blocks: Iterator[bytes], job: Job[R], workers: int, first_line: int = 2
) -> Iterator[R]:
    """Run `job(block, first line number)` over every block; results come back in order."""
    return run_ordered(_numbered(blocks, first_line), job, workers)


def _leave_ctrl_c_to_the_parent() -> None:
    """Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the parent alone
    stops the run (leaving the pool terminates them) with one line instead of a traceback
    from every worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_ordered(
    items: Iterator[tuple[T, int]], job: Callable[[T, int], R], workers: int
) -> Iterator[R]:
    """Run `job(*item)` over every item on `workers` forked processes; results in order."""
    if workers <= 1:
        for item, number in items:
            yield job(item, number)
        return
    global _JOB
    _JOB = job  # inherited by the forked workers
    # Move what exists now out of the collector's reach: forked workers then do not
    # touch (and copy) every inherited page on their first collection.
    gc.freeze()
    context = multiprocessing.get_context("fork")
    pending: deque[multiprocessing.pool.AsyncResult[R]] = deque()
    with context.Pool(workers, initializer=_leave_ctrl_c_to_the_parent) as pool:
        for item, number in items:
            pending.append(pool.apply_async(_call, (item, number)))  # type: ignore[arg-type]
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    _JOB = None


def _numbered(blocks: Iterator[bytes], first_line: int) -> Iterator[tuple[bytes, int]]:
    line = first_line
    for block in blocks:
        yield block, line
        line += block.count(b"\n")
