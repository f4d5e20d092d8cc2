"""`pss synth`, `pss batch` and `pss diff`: argument parsing, files, exit codes.

Each `*_main(argv) -> int` takes the arguments after the sub-command. Exit codes: 0 ok,
1 failures, 2 usage or input errors (unreadable file, wrong columns, bad encoding, missing git
ref, a pack that fails `pss check`) — always one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

OK, FAILED, USAGE = 0, 1, 2


class _Usage(Exception):
    """Raised by the parser instead of exiting, so `*_main` can return 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _Usage(message)


def _fail(command: str, message: str) -> int:
    print(f"pss {command}: error: {message}", file=sys.stderr)
    return USAGE


def _at_least_one(text: str) -> int:
    """`--workers`: a whole number of processes, 1 or more (argparse says so otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _workers(value: int | None) -> int:
    if value is not None:
        return max(1, value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parse(parser: _Parser, argv: Sequence[str] | None) -> argparse.Namespace | None:
    try:
        return parser.parse_args(argv)
    except _Usage as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return None


def synth_main(argv: Sequence[str] | None = None) -> int:
    """`pss synth --rows N --seed S -o FILE`: write synthetic activity, CSV or Parquet."""
    from pss_dev.synth import write_csv, write_parquet

    parser = _Parser(prog="pss synth", description="write synthetic SUS-like activity (.csv, "
                     ".parquet or .pq)")
    parser.add_argument("--rows", type=int, required=True, help="number of data rows")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    parser.add_argument("--bad-share", type=float, default=0.005, help="share of malformed rows")
    parser.add_argument("--profile", choices=("sus-apc", "sus-op"),
                        help="write a SUS-shaped extract (default: pss's own columns)")
    parser.add_argument("-o", "--output", required=True, help="file to write (- for CSV on "
                        "stdout)")
    args = _parse(parser, argv)
    if args is None:
        return USAGE
    if args.rows < 0 or not 0 <= args.bad_share <= 1:
        return _fail("synth", "--rows must be >= 0 and --bad-share between 0 and 1")
    suffix = Path(args.output).suffix.lower()
    if args.output != "-" and suffix not in (".csv", ".parquet", ".pq"):
        # `pss batch` reads only these: a CSV written as `n.xlsx` would be refused there.
        return _fail("synth", f"`{args.output}`: unknown file type `{suffix or '(none)'}` "
                     "(use .csv, .parquet or .pq)")
    parquet = suffix in (".parquet", ".pq")
    if parquet and not _arrow_available():
        return _fail("synth", f"Parquet {_ARROW_HINT}")
    start = time.perf_counter()
    try:
        if args.output == "-":
            write_csv(sys.stdout, args.rows, args.seed, args.bad_share, args.profile)
        elif parquet:
            write_parquet(args.output, args.rows, args.seed, args.bad_share, args.profile)
        else:
            with Path(args.output).open("w", encoding="utf-8", newline="") as out:
                write_csv(out, args.rows, args.seed, args.bad_share, args.profile)
    except OSError as exc:
        return _fail("synth", f"cannot write `{args.output}`: {exc.strerror or exc}")
    # On stderr when the rows themselves go to stdout.
    shape = f" ({args.profile})" if args.profile else ""
    where = "stdout" if args.output == "-" else args.output
    print(f"pss synth: wrote {args.rows:,} rows{shape} to {where} in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr if args.output == "-" else
          sys.stdout)
    return OK


def _default_policies() -> Path:
    """`./policies` when it exists (local edits win, as `pss serve`), else the bundled pack."""
    from chalicelib.settings import default_policy_dir

    here = Path("policies")
    return here if here.is_dir() else default_policy_dir()


def _arrow_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


_ARROW_HINT = "needs pyarrow: pip install 'pss-rules[arrow]'"


def batch_main(argv: Sequence[str] | None = None) -> int:
    """`pss batch IN -o OUT`: classify every row; rejects and summary beside it."""
    import json

    from chalicelib.batch.classify import InputError, Progress
    from chalicelib.batch.diff import load_pack

    parser = _Parser(prog="pss batch", description="classify activity (CSV or Parquet) with "
                     "the pack")
    parser.add_argument("input", help="activity file: .csv, .parquet or .pq")
    parser.add_argument("-o", "--output", required=True,
                        help="classified file to write (.csv or .parquet)")
    parser.add_argument("--rejects", help="rejects file (default: OUT.rejects.<same type>)")
    parser.add_argument("--summary", help="also write the summary as JSON to this file")
    parser.add_argument("--policies", help="policy folder (default: ./policies, else the "
                        "bundled national pack)")
    parser.add_argument("--profile", choices=("sus-apc", "sus-op"),
                        help="read a SUS-shaped extract (default: pss's own columns)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="local: every core of this machine; spark: Apache Spark")
    parser.add_argument("--master", default="local[*]",
                        help="Spark master URL (with --engine spark; default local[*])")
    parser.add_argument("--workers", type=_at_least_one,
                        help="processes (local engine; default: every core)")
    args = _parse(parser, argv)
    if args is None:
        return USAGE
    source, output = Path(args.input), Path(args.output)
    rejects = Path(args.rejects) if args.rejects else output.with_suffix(
        ".rejects" + output.suffix
    )
    clash = _same_files(source, output, rejects)
    if clash:
        return _fail("batch", clash)
    policies = Path(args.policies) if args.policies else _default_policies()
    arrow = _arrow_available()
    row_path = not arrow and not args.profile and args.engine == "local" and all(
        p.suffix.lower() == ".csv" for p in (source, output, rejects)
    )
    if not arrow and not row_path:
        return _fail("batch", f"Parquet, --profile and --engine spark {_ARROW_HINT}")
    try:
        policy_set = load_pack(policies, "the")
        if not source.exists():  # said before Spark starts, as the other engines say it
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(source))
        if row_path:
            summary = _batch_rows(source, output, rejects, policy_set, args.workers)
        elif args.engine == "spark":
            from chalicelib.batch.spark import classify_files_spark

            summary = classify_files_spark(source, output, rejects, policy_set, args.profile,
                                           args.master)
        else:
            from chalicelib.batch.columnar import ColumnarPack
            from chalicelib.batch.local import classify_files
            from chalicelib.batch.profiles import PROFILES

            profile = PROFILES[args.profile] if args.profile else None
            summary = classify_files(source, output, rejects, ColumnarPack(policy_set), profile,
                                     _workers(args.workers), Progress(source.stat().st_size))
        if args.summary:
            Path(args.summary).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    except InputError as exc:
        return _fail("batch", f"{args.input}: {exc}")
    except OSError as exc:
        return _fail("batch", f"cannot use `{exc.filename or args.input}`: {exc.strerror or exc}")
    print(summary.table())
    if row_path:
        print(f"pyarrow is not installed: rows decided one by one ({_ARROW_HINT} for the "
              "columnar core)")
    print(f"classified: {output}  rejects: {rejects}")
    return OK


def _same_files(source: Path, output: Path, rejects: Path) -> str | None:
    """Why these paths cannot be used together, or None: the classified rows and the rejects
    are written to files of their own, and neither may replace the input (it is read while
    they are written, and the activity would be lost)."""
    def same(a: Path, b: Path) -> bool:
        if a.resolve() == b.resolve():
            return True
        try:
            return a.exists() and b.exists() and a.samefile(b)
        except OSError:
            return False

    if same(output, rejects):
        return f"the output and the rejects are both `{output}`: give --rejects another file"
    for name, path in (("output", output), ("rejects", rejects)):
        if same(source, path):
            return f"the {name} `{path}` is the input: write it to another file"
    return None


def _batch_rows(
    source: Path, output: Path, rejects: Path, policy_set: Any, workers: int | None
) -> Any:
    """The row path over CSV (no pyarrow): `classify.classify_stream`."""
    from chalicelib.batch.classify import Progress, classify_stream

    size = source.stat().st_size
    with source.open("rb") as src, output.open("wb") as out, rejects.open("wb") as rej:
        return classify_stream(src, out, rej, policy_set, _workers(workers), Progress(size))


def diff_main(argv: Sequence[str] | None = None) -> int:
    """`pss diff --base REF_OR_DIR [--head DIR] CASES`: what moves between two packs."""
    import json

    from chalicelib.batch.classify import InputError, Progress
    from chalicelib.batch.diff import diff_csv, diff_requests, load_pack, read_case_folder
    from chalicelib.batch.report import html_report
    from chalicelib.batch.tally import TOP, text_report
    from pss_dev.gitbase import extract_base  # development-only: not in the Lambda package

    parser = _Parser(prog="pss diff", description="compare two policy sets over the same cases")
    parser.add_argument("--base", required=True, help="a policy folder, or a git ref")
    parser.add_argument("--head", default="policies", help="policy folder (default: policies)")
    parser.add_argument("cases", help="activity CSV, or a folder of referral *.json files")
    parser.add_argument("--html", help="also write the report as one HTML page to this file")
    parser.add_argument("--json", help="also write the diff as JSON to this file")
    parser.add_argument("--top", type=int, default=TOP, help="changed cases to list")
    parser.add_argument("--workers", type=_at_least_one, help="processes (default: every core)")
    args = _parse(parser, argv)
    if args is None:
        return USAGE
    head_dir, cases = Path(args.head), Path(args.cases)
    try:
        if not head_dir.is_dir():
            raise InputError(f"head `{head_dir}` is not a policy folder")
        if not cases.exists():
            raise InputError(f"cases `{cases}` do not exist")
        with tempfile.TemporaryDirectory(prefix="pss-diff-") as tmp:
            base_dir = Path(args.base)
            if not base_dir.is_dir():
                base_dir = extract_base(args.base, head_dir, Path(tmp))
            base, head = load_pack(base_dir, "base"), load_pack(head_dir, "head")
        if cases.is_dir():
            tally = diff_requests(read_case_folder(cases), base, head, args.top)
        else:
            with cases.open("rb") as src:
                tally = diff_csv(src, base, head, _workers(args.workers), args.top, Progress(None))
        base_label, head_label = f"{args.base} ({base.version})", f"{head_dir} ({head.version})"
        if args.html:  # only when asked: nothing is left in the working folder otherwise
            Path(args.html).write_text(html_report(tally, base_label, head_label),
                                       encoding="utf-8")
        if args.json:
            body: dict[str, Any] = tally.to_dict()
            Path(args.json).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    except InputError as exc:
        return _fail("diff", str(exc))
    except OSError as exc:
        return _fail("diff", f"cannot use `{exc.filename or args.cases}`: {exc.strerror or exc}")
    print(text_report(tally, base_label, head_label))
    if args.html:
        print(f"\nreport: {args.html}")
    return OK
