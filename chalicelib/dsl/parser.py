"""Text to Lark tree: the LALR parser, built once per process, and friendly syntax errors.

In: policy text and the path to show in messages. Out: a `lark.Tree`, or a `Diagnostic`
that names what was found, what would have fitted, and a hint a policy author can act on
(never a Lark token dump).
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.dsl.source import Diagnostic, Span
from chalicelib.limits import MAX_JSON_DEPTH, MAX_NESTING

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


# Tree nodes that nest without bound in the grammar: every stage after the parser recurses on
# them. Conditions and sums count towards `MAX_NESTING`, `given` JSON towards the API's own
# `MAX_JSON_DEPTH` (a `given` is a request as `POST /v1/decisions` takes it).
_NESTING = frozenset({"or_", "and_", "not_", "all_of", "any_of", "exactly_one_of",
                      "at_least_of", "add", "sub"})
_JSON_NESTING = frozenset({"json_object", "json_array"})
BOM = "\ufeff"


def parse_text(text: str, path: str) -> Tree[Token] | Diagnostic:
    """Parse one file; return its tree, or the first syntax error as a diagnostic.

    A byte-order mark at the very start is skipped (editors on Windows write one); a tree
    nesting deeper than the limits is reported at the first node past them, before any
    recursive stage sees it.
    """
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

    if text.startswith(BOM):
        text = text[1:]  # editors show no column for it, so columns count from after it
    try:
        tree = parser().parse(text)
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        return Diagnostic(
            "error",
            f"unexpected character {_char_name(char)}",
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


    deep = nesting_problem(tree, path)
    return tree if deep is None else deep


def nesting_problem(tree: Tree[Token], path: str) -> Diagnostic | None:
    """The first place `tree` nests past the limits, as a diagnostic; None within them.

    Iterative on purpose: the tree may be 10,000 deep, which is what it guards against.
    """
    from lark import Tree

    stack: list[tuple[Tree[Token], int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, json_depth = stack.pop()
        if node.data in _NESTING:
            depth += 1
        elif node.data in _JSON_NESTING:
            json_depth += 1
        if depth > MAX_NESTING or json_depth > MAX_JSON_DEPTH:
            line = getattr(node.meta, "line", 1)
            col = getattr(node.meta, "column", 1)
            message = (f"nesting deeper than {MAX_NESTING}" if depth > MAX_NESTING
                       else f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
            return Diagnostic(
                "error", message, Span(path, line, col, line, col + 1),
                f"conditions and sums may nest at most {MAX_NESTING} levels and test JSON "
                f"{MAX_JSON_DEPTH}; flatten it (`all of` inside `all of` merges, `not not x` "
                "is `x`) or split it into separate rules",
            )
        # Reversed, so the first child is looked at first: the error is the first in the file.
        stack.extend((child, depth, json_depth) for child in reversed(node.children)
                     if isinstance(child, Tree))
    return None


def _char_name(char: str) -> str:
    """A character for a message: itself in backticks, or its code point and Unicode name
    when it would be invisible or confusing on screen (a BOM, a zero-width space, a NUL)."""
    if not char:
        return "at the end of the file"
    if char.isprintable() and not char.isspace() and unicodedata.category(char) != "Cf":
        return f"`{char}`"
    name = unicodedata.name(char, "")
    if char == BOM:
        name = "BYTE ORDER MARK (ZERO WIDTH NO-BREAK SPACE)"
    return f"U+{ord(char):04X}" + (f" {name}" if name else "") + " (an invisible character)"


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
