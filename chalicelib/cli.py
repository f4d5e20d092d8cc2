"""The `pss` command line: check, test, fmt, eval, bundle, serve.

Exit codes: 0 ok, 1 policy or test failures, 2 usage or input errors. Every command goes
through the same pipeline as the API (`load_policy_set`); nothing prints a traceback for bad
input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chalicelib.errors import NotCoveredError, PolicyError, RequestError
from chalicelib.limits import load_json

OK, FAILED, USAGE = 0, 1, 2
# `pss check` decides nothing, but a policy set needs a clock: a fixed one says so.
_EPOCH = dt.datetime(2013, 4, 1, tzinfo=dt.UTC)
BUNDLE = Path(__file__).resolve().parent / "_bundle"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 on usage errors: keep that
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"pss: error: {message}\n")


def _folder(paths: Sequence[str]) -> Path | None:
    folder = Path(paths[0] if paths else "policies")
    if not folder.is_dir():
        print(f"pss: error: `{folder}` is not a policy folder", file=sys.stderr)
        return None
    return folder


def cmd_check(args: argparse.Namespace) -> int:
    """Parse and check a pack; print every diagnostic with its source line and caret."""
    from chalicelib.dsl.loader import load_pack
    from chalicelib.dsl.source import render

    folder = _folder(args.paths)
    if folder is None:
        return USAGE
    try:
        loaded = load_pack(folder)
    except PolicyError as exc:
        print(exc.rendered, file=sys.stderr)
        errors = sum(1 for d in exc.diagnostics if d.severity == "error")
        print(f"{errors} error(s) in {folder}", file=sys.stderr)
        return FAILED
    if loaded.warnings:
        print(render(loaded.warnings, loaded.sources), file=sys.stderr)
    checked = loaded.checked
    from chalicelib.engine.policy_set import PolicySet
    from chalicelib.testing import invalid_inputs

    bad_tests = invalid_inputs(PolicySet(checked, loaded.digest, lambda: _EPOCH))
    if bad_tests:
        print(render(bad_tests, loaded.sources), file=sys.stderr)
        print(f"{len(bad_tests)} error(s) in {folder}", file=sys.stderr)
        return FAILED
    if args.provenance:
        from chalicelib.dsl.provenance import counts, render_table

        print(render_table(counts(checked.modules)), end="")
    print(
        f"{folder}: ok — {len(checked.services)} services, {len(checked.lines)} service lines, "
        f"{len(checked.rules)} identification rules, {len(checked.policies)} policy versions, "
        f"{len(checked.codesets)} code sets, {len(checked.tests)} tests "
        f"({len(loaded.warnings)} warning(s))"
    )
    return OK


def cmd_test(args: argparse.Namespace) -> int:
    """Run the pack's author tests; optionally write JUnit XML and report clause coverage."""
    from chalicelib import load_policy_set
    from chalicelib.testing import Coverage, all_clauses, junit_xml, run_tests

    folder = _folder(args.paths)
    if folder is None:
        return USAGE
    try:
        policy_set = load_policy_set(folder)
    except PolicyError as exc:
        print(exc.rendered, file=sys.stderr)
        return FAILED
    coverage = Coverage()
    results = run_tests(policy_set, coverage)
    for result in results:
        if not result.passed:
            print(f"FAIL {result.at}: {result.name}")
            for failure in result.failures:
                print(f"     {failure}")
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} tests passed")
    if args.junit:
        try:
            Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
        except OSError as exc:
            print(f"pss test: error: cannot write `{args.junit}`: {exc.strerror or exc}",
                  file=sys.stderr)
            return USAGE
    if args.coverage:
        clauses = all_clauses(policy_set)
        gaps = coverage.gaps(clauses)
        full = len(clauses) - len(gaps)
        print(f"clause coverage: {full}/{len(clauses)} clauses seen both true and false")
        for clause, lacking in gaps:
            print(f"  {clause.at}: `{clause.clause}` ({clause.rule}) never seen {lacking}")
    return OK if passed == len(results) else FAILED


def cmd_fmt(args: argparse.Namespace) -> int:
    """Format policy files canonically (or, with --check, list those that would change)."""
    from chalicelib.dsl.formatting import format_text

    folder = _folder(args.paths)
    if folder is None:
        return USAGE
    changed = []
    for file in sorted(folder.rglob("*.pss")):
        text = file.read_text(encoding="utf-8")
        shown = file.as_posix()
        formatted = format_text(text, shown)
        if isinstance(formatted, PolicyError):
            print(formatted.rendered, file=sys.stderr)
            return FAILED
        if formatted != text:
            changed.append(shown)
            if not args.check:
                file.write_text(formatted, encoding="utf-8")
    verb = "would reformat" if args.check else "reformatted"
    for shown in changed:
        print(f"{verb} {shown}")
    return FAILED if args.check and changed else OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Decide one referral from a JSON file and print the decision (with --explain, reasons)."""
    from chalicelib import load_policy_set

    try:
        request = load_json(Path(args.case).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError, LimitError, UnicodeDecodeError
        print(f"pss: error: cannot read `{args.case}`: {exc}", file=sys.stderr)
        return USAGE
    try:
        policy_set = load_policy_set(args.policies)
        decision = policy_set.decide(request)
    except PolicyError as exc:
        print(exc.rendered, file=sys.stderr)
        return FAILED
    except RequestError as exc:
        for problem in exc.details:
            print(f"{args.case}: {problem.field}: {problem.problem}", file=sys.stderr)
        return USAGE
    except NotCoveredError as exc:
        print(f"{args.case}: {exc}", file=sys.stderr)
        return USAGE
    body = decision.to_dict()
    if not args.explain:
        body.pop("reasons")
        print(json.dumps(body, indent=2))
        return OK
    print(json.dumps(body, indent=2))
    # The explanation is for people: it goes to stderr so stdout stays JSON (pipe it to jq).
    print("why:", file=sys.stderr)
    for reason in body["reasons"]:
        mark = {True: "✓", False: "✗", None: "?"}[reason["result"]]
        print(f"  {mark} {reason['clause']}  [{reason['rule']}] {reason['at']}", file=sys.stderr)
    return OK


def cmd_bundle(args: argparse.Namespace) -> int:
    """Check the pack, then copy grammar and pack under `chalicelib/_bundle/` for Lambda."""
    from chalicelib.dsl.loader import load_pack, write_ast_cache
    from chalicelib.dsl.parser import GRAMMAR_CANDIDATES

    folder = _folder(args.paths)
    if folder is None:
        return USAGE
    try:
        loaded = load_pack(folder)
    except PolicyError as exc:
        print(exc.rendered, file=sys.stderr)
        return FAILED
    target = Path(args.output) if args.output else BUNDLE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(GRAMMAR_CANDIDATES[0], target / "pss.lark")
    shutil.copytree(
        folder, target / "policies", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (target / "DIGEST").write_text(loaded.digest + "\n", encoding="utf-8")
    write_ast_cache(target / "policies")
    print(f"bundled {folder} ({loaded.digest}) into {target}")
    return OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the local stack (the API, decisions in a SQLite data folder); see
    `pss_dev.local_stack`."""
    # Imported here: the local stack pulls in chalice's dev server, which only `pss serve` needs.
    from pss_dev.local_stack import serve_main

    code = serve_main(args.rest)
    # Stopped, store closed, output flushed: skip the interpreter's teardown (module by module,
    # the compiled pack object by object), which takes over a second on a busy machine and
    # would break the promise that Ctrl-C stops `pss serve` within 2 s.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _batch_command(name: str) -> Callable[[argparse.Namespace], int]:
    """Run `pss synth|batch|diff`: they live in `chalicelib.batch` and parse their own options."""

    def run(args: argparse.Namespace) -> int:
        from chalicelib.batch import cli as batch_cli

        entry = {"synth": batch_cli.synth_main, "batch": batch_cli.batch_main,
                 "diff": batch_cli.diff_main}[name]
        return entry(args.rest)

    return run


_DELEGATED = {
    "synth": _batch_command("synth"),
    "batch": _batch_command("batch"),
    "diff": _batch_command("diff"),
    "serve": cmd_serve,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `pss` command."""
    parser = _Parser(
        prog="pss", description="PSS rules: policy tools for specialised commissioning"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="parse and check policy files")
    check.add_argument("paths", nargs="*")
    check.add_argument(
        "--provenance",
        action="store_true",
        help="print, per file and kind, how many items are verified, unverified or unsourced",
    )
    check.set_defaults(func=cmd_check)
    test = sub.add_parser("test", help="run the pack's author tests")
    test.add_argument("paths", nargs="*")
    test.add_argument("--junit", metavar="FILE", help="write JUnit XML to FILE")
    test.add_argument("--coverage", action="store_true", help="report clause coverage")
    test.set_defaults(func=cmd_test)
    fmt = sub.add_parser("fmt", help="format policy files canonically")
    fmt.add_argument("paths", nargs="*")
    fmt.add_argument("--check", action="store_true", help="only report files that would change")
    fmt.set_defaults(func=cmd_fmt)
    ev = sub.add_parser("eval", help="decide one referral from a JSON file")
    ev.add_argument("case")
    ev.add_argument("--explain", action="store_true", help="list every clause and its result")
    ev.add_argument("--policies", default="policies")
    ev.set_defaults(func=cmd_eval)
    bundle = sub.add_parser("bundle", help="copy grammar and pack under chalicelib/_bundle")
    bundle.add_argument("paths", nargs="*")
    bundle.add_argument("--output", help=argparse.SUPPRESS)
    bundle.set_defaults(func=cmd_bundle)
    for name, text in (
        ("synth", "generate synthetic SUS-like activity (--rows N --seed S -o FILE.csv)"),
        ("batch", "classify an activity CSV (IN.csv -o OUT.csv), all cores"),
        ("diff", "what-if impact between two policy sets (--base REF_OR_DIR [--head DIR] CASES)"),
    ):
        command = sub.add_parser(name, help=text, add_help=False)
        command.add_argument("rest", nargs=argparse.REMAINDER)
        command.set_defaults(func=_batch_command(name))
    serve = sub.add_parser("serve", help="run the API locally, decisions kept in a data folder")
    serve.add_argument("rest", nargs=argparse.REMAINDER)
    serve.set_defaults(func=cmd_serve)
    return parser


INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a command whose reader went away


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `pss`; Ctrl-C ends any command with one line and exit 130, not a
    traceback (a command writes its outputs only when complete, so none is left half-made)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        # These commands parse their own options (argparse's REMAINDER would refuse a leading
        # `--rows`), so they are handed everything after their name.
        if arguments and arguments[0] in _DELEGATED:
            code: int = _DELEGATED[arguments[0]](argparse.Namespace(rest=arguments[1:]))
        else:
            args = build_parser().parse_args(arguments)
            code = args.func(args)
        sys.stdout.flush()  # here, where a reader gone away is caught, not at exit
        return code
    except KeyboardInterrupt:
        print("pss: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`pss diff ... | head`): stop quietly, as `yes | head` does.
        # Python would otherwise report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
