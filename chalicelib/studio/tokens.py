"""The grammar's terminals as a table the studio's editor highlights with (a build step).

In: `grammar/pss.lark`. Out: JSON with the keywords (the grammar's word literals), the
punctuation, and every named terminal's regular expression, Lark priority and highlighting
tag. `make studio` writes it for the front-end build, so highlighting follows the grammar:
a new keyword is highlighted without touching the editor, and a new named terminal without
a tag here fails the tests.

Run: `python -m chalicelib.studio.tokens OUT.json`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib.dsl.parser import grammar_path

# Lezer highlighting tag names (`@lezer/highlight` `tags`) for each named terminal; None means
# the editor skips it (whitespace).
TAGS: dict[str, str | None] = {
    "WS": None,
    "COMMENT": "lineComment",
    "STRING": "string",
    "DATE": "literal",
    "CODE": "atom",
    "CONSTNAME": "typeName",
    "NAME": "variableName",
    "NUMBER": "number",
    "SIGNED_NUMBER": "number",
    "INT": "number",
    "COMPARE": "compareOperator",
    "BOOL": "bool",
}


def token_table(grammar: Path) -> dict[str, Any]:
    """Read the grammar with Lark and classify its terminals."""
    from lark import Lark
    from lark.lexer import PatternStr

    text = grammar.read_text(encoding="utf-8")
    lark = Lark(text, parser="lalr")
    keywords: set[str] = set()
    punctuation: set[str] = set()
    terminals = []
    for terminal in lark.terminals:
        pattern = terminal.pattern
        if isinstance(pattern, PatternStr):
            (keywords if pattern.value.isidentifier() else punctuation).add(pattern.value)
            continue
        if terminal.name not in TAGS:
            raise ValueError(f"terminal {terminal.name} has no highlighting tag in "
                             "chalicelib/studio/tokens.py TAGS")
        if pattern.flags:
            raise ValueError(f"terminal {terminal.name} uses regex flags the editor lacks")
        tag = TAGS[terminal.name]
        if tag is not None:
            terminals.append({"name": terminal.name, "pattern": pattern.value,
                              "priority": terminal.priority, "tag": tag})
    return {
        "grammar_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "keywords": sorted(keywords),
        "punctuation": sorted(punctuation, key=lambda p: (-len(p), p)),
        "terminals": terminals,
    }


def main(argv: list[str]) -> int:
    """Write the table to the file named in `argv`."""
    if len(argv) != 1:
        print("usage: python -m chalicelib.studio.tokens OUT.json", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(token_table(grammar_path()), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
