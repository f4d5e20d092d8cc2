"""`pss fmt`: text to canonical text, keeping comments, refusing to change meaning.

In: a policy file's text. Out: its canonical form, or `PolicyError` when it does not parse.
The result is parsed again and compared with the original AST (spans aside): a formatter
that changed the meaning of a policy would be worse than none.
"""

from __future__ import annotations

from chalicelib.dsl.lowering import lower
from chalicelib.dsl.parser import parse_text
from chalicelib.dsl.printer import format_module
from chalicelib.dsl.source import Diagnostic, SourceMap, Span, render
from chalicelib.errors import PolicyError


def comments(text: str) -> list[tuple[int, int, str]]:
    """Every `#` comment as (line, column, text); strings never span lines, so a scan will do."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        in_string = False
        escaped = False
        for col, char in enumerate(line):
            if escaped:
                escaped = False
            elif char == "\\" and in_string:
                escaped = True
            elif char == '"':
                in_string = not in_string
            elif char == "#" and not in_string:
                found.append((number, col + 1, line[col:].rstrip()))
                break
    return found


def format_text(text: str, path: str) -> str | PolicyError:
    """Return `text` formatted canonically, or the syntax error that prevents it."""
    tree = parse_text(text, path)
    if isinstance(tree, Diagnostic):
        return PolicyError([tree], render([tree], SourceMap({path: text})))
    module = lower(tree, path)
    formatted = format_module(module, comments(text))
    again = parse_text(formatted, path)
    if isinstance(again, Diagnostic) or lower(again, path).items != module.items:
        problem = Diagnostic(
            "error",
            "formatting would change this file's meaning; please report it",
            Span(path, 1, 1),
        )
        return PolicyError([problem], problem.headline())
    return formatted
