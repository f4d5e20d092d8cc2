"""Text in a card's Markdown detail: escaped exactly where Markdown would act on it.

CDS Hooks 2.0 card details are GitHub Flavored Markdown, i.e. CommonMark plus tables,
strikethrough and autolinks. In: text that is not ours to trust (EPR labels, order references,
pack names and titles). Out: Markdown that renders as that text, and only that text:

* always escaped: `\\` (it would escape what follows, ours included), backquotes (code
  spans), `*` (emphasis, also inside words), `~` (GFM strikethrough) and `[` (links and
  images: with every `[` escaped, no `]` can close one);
* `_` only where it could open or close emphasis: not between two letters or digits, where
  CommonMark's flanking rules never let it (so `cetuximab_colorectal` stays as written);
* `<` only where an autolink or raw HTML could start (before a letter, `/`, `!` or `?`),
  `&` only where an entity could be read (`&amp;`, `&#123;`);
* line breaks become spaces, so no text can start a block of its own; and with
  `line_start=True` (the text opens a list item), a leading `#`, `>`, `-`, `+` or
  `1.` / `1)` is escaped, and leading spaces dropped, so it cannot become a heading,
  quote, nested list or code block.

`#`, `|`, `]`, `!`, `(`, `)` and `>` elsewhere need no escape and get none. GFM's bare
autolinks (`www.example.org`, `https://...`) are not prevented here.
"""

from __future__ import annotations

import re

_ALWAYS = frozenset("\\`*~[")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_ENTITY_AHEAD = re.compile(r"#?[A-Za-z0-9]*(?:;|$)")
_HTML_AHEAD = re.compile(r"[A-Za-z/!?]|$")
_ORDERED_MARKER = re.compile(r"(\d{1,9})([.)])")


def text(value: str, *, line_start: bool = False) -> str:
    """`value` as Markdown that shows exactly `value` (line breaks as spaces)."""
    value = _LINE_BREAKS.sub(" ", value)
    if line_start:
        value = value.lstrip(" \t")
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in _ALWAYS:
            out.append("\\" + ch)
        elif ch == "_":
            before = value[i - 1] if i else ""
            after = value[i + 1] if i + 1 < len(value) else ""
            out.append("_" if before.isalnum() and after.isalnum() else "\\_")
        elif ch == "<" and _HTML_AHEAD.match(value, i + 1):
            out.append("\\<")
        elif ch == "&" and _ENTITY_AHEAD.match(value, i + 1):
            out.append("\\&")
        else:
            out.append(ch)
    escaped = "".join(out)
    if line_start:
        ordered = _ORDERED_MARKER.match(escaped)
        if ordered:
            escaped = f"{ordered.group(1)}\\{ordered.group(2)}{escaped[ordered.end():]}"
        elif escaped[:1] in ("#", ">", "-", "+"):
            escaped = "\\" + escaped
    return escaped


def code(value: object) -> str:
    """A code span; inside one, backslash escapes would show, so backquotes become `'` and
    line breaks spaces."""
    return "`" + _LINE_BREAKS.sub(" ", str(value)).replace("`", "'") + "`"
