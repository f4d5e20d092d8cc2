"""Source text, positions and diagnostics.

A `Span` points into one policy file; a `Diagnostic` is one problem found by the parser or
the checker, rendered the way compilers do:

    policies/cardiac.pss:14:9: error: unknown code set `AORTIC_STENOSYS`
        when dominant procedure in AORTIC_STENOSYS
                                   ^^^^^^^^^^^^^^^
      hint: did you mean `AORTIC_STENOSIS`?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Span:
    """A region of a policy file: 1-based line and column of its start and end."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def at(self) -> str:
        """Return `file:line`, the form decisions use to say where a clause lives."""
        return f"{self.file}:{self.line}"


NOWHERE = Span("<pack>", 0, 0)


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning with its position and an optional hint."""

    severity: str  # "error" | "warning"
    message: str
    span: Span
    hint: str = ""

    def headline(self) -> str:
        """Return `file:line:col: severity: message`."""
        return f"{self.span.file}:{self.span.line}:{self.span.col}: {self.severity}: {self.message}"


@dataclass
class SourceMap:
    """The text of every file of a pack, to quote lines under diagnostics."""

    texts: dict[str, str] = field(default_factory=dict)

    def line(self, file: str, line: int) -> str | None:
        """Return line `line` (1-based) of `file`, or None when unknown."""
        text = self.texts.get(file)
        if text is None or line < 1:
            return None
        lines = text.splitlines()
        return lines[line - 1] if line <= len(lines) else None


def render(diagnostics: Iterable[Diagnostic], sources: SourceMap) -> str:
    """Render diagnostics with the source line, a caret under the span, and the hint."""
    out: list[str] = []
    for diag in diagnostics:
        out.append(diag.headline())
        text = sources.line(diag.span.file, diag.span.line)
        if text is not None:
            out.append("    " + text.rstrip())
            width = 1
            if diag.span.end_line == diag.span.line and diag.span.end_col > diag.span.col:
                width = diag.span.end_col - diag.span.col
            out.append("    " + " " * max(diag.span.col - 1, 0) + "^" * width)
        if diag.hint:
            out.append(f"  hint: {diag.hint}")
    return "\n".join(out)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return a `did you mean ...?` hint for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else ""
