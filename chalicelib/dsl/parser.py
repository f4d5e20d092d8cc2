"""Text to Lark tree: the LALR parser, built once per process, and friendly syntax errors.

In: policy text and the path to show in messages. Out: a `lark.Tree`, or a `Diagnostic`
that names what was found, what would have fitted, and a hint a policy author can act on
(never a Lark token dump).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.dsl.source import Diagnostic, Span

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

_HERE = Path(__file__).resolve().parent
# The grammar lives in `grammar/` (the language reference); `pss bundle` copies it under
# `chalicelib/_bundle/` because Chalice deploys only `chalicelib/`.
GRAMMAR_CANDIDATES = (
    _HERE.parent.parent / "grammar" / "pss.lark",
    _HERE.parent / "_bundle" / "pss.lark",
)

_TERMINAL_NAMES = {
    "NAME": "a lowercase name",
    "CONSTNAME": "an UPPERCASE name",
    "STRING": 'a "quoted string"',
    "DATE": "a date (YYYY-MM-DD)",
    "CODE": "a code such as `K26.2`",
    "INT": "a whole number",
    "NUMBER": "a number",
    "SIGNED_NUMBER": "a number",
    "COMPARE": "a comparison (`>=`, `<`, `==` ...)",
    "BOOL": "`yes` or `no`",
    "$END": "the end of the file",
}


def grammar_path() -> Path:
    """Return the grammar file: the repository's, else the bundled copy (on Lambda)."""
    for candidate in GRAMMAR_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("grammar pss.lark not found; run `pss bundle`")


@cache
def parser() -> Lark:
    """Build the LALR parser once per process (cheap import: Lark loads on first use)."""
    from lark import Lark

    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def parse_text(text: str, path: str) -> Tree[Token] | Diagnostic:
    """Parse one file; return its tree, or the first syntax error as a diagnostic."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

    try:
        return parser().parse(text)
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        return Diagnostic(
            "error",
            f"unexpected character `{char}`",
            Span(path, exc.line, exc.column, exc.line, exc.column + 1),
            _hint_for_expected(exc.allowed or set(), char),
        )
    except UnexpectedEOF as exc:
        last = text.rstrip().splitlines() or [""]
        return Diagnostic(
            "error",
            "the file ends in the middle of a declaration",
            Span(path, len(last), len(last[-1]) + 1),
            "a closing `}` may be missing; expected "
            + _describe({str(getattr(t, "type", t)) for t in exc.expected}),
        )
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        value = str(token) if token is not None else ""
        expected = set(getattr(exc, "expected", set()) or set())
        line, col = getattr(exc, "line", 1), getattr(exc, "column", 1)
        if token is not None and getattr(token, "type", "") == "$END":
            return Diagnostic(
                "error",
                "the file ends in the middle of a declaration",
                Span(path, max(line, 1), max(col, 1)),
                "a closing `}` may be missing; expected " + _describe(expected),
            )
        return Diagnostic(
            "error",
            f"unexpected `{value}`",
            Span(path, line, col, line, col + max(len(value), 1)),
            _hint_for_expected(expected, value),
        )


def _hint_for_expected(expected: set[str], found: str) -> str:
    if found in {"'", "“", "”"}:
        return 'strings use straight double quotes: "like this"'
    if "NAME" in expected and found[:1].isupper():
        return "fact and rule names are lowercase; code sets and service lines are UPPERCASE"
    if "CONSTNAME" in expected and found[:1].islower():
        return "code set and service line names are UPPERCASE"
    if "RBRACE" in expected:
        return "a closing `}` may be missing before this, or the clause before it is incomplete"
    return "expected " + _describe(expected)


def _describe(expected: set[str] | frozenset[str]) -> str:
    names = sorted({_terminal_name(t) for t in expected})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names) if names else "something else"


def _terminal_name(terminal: str) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    try:
        pattern = parser().get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    if pattern.type == "str":
        return f"`{pattern.value}`"
    return terminal.lower()
