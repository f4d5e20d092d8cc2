"""Input limits, and the checks that enforce them before (or while) input is parsed.

Every place where outside input enters — HTTP bodies, CDS Hooks calls, FHIR prefetch, policy
text, what-if files, batch lines — is bounded here, so that hostile input meets a located
`LimitError` (a 4xx, or exit 1 with `file:line:col`) instead of a `RecursionError`, a
`ValueError` from `int()` or an unbounded loop. The numbers and why:

* `MAX_JSON_DEPTH` 64: the deepest legitimate body (a CDS Hooks call carrying a FHIR Bundle
  of MedicationRequests with extensions) nests about 12 levels; Python's JSON parser, pydantic
  and `json.dumps` each recurse per level, and Python's recursion limit is 1,000 frames.
* `MAX_INT_DIGITS` 18: every whole number we accept fits a signed 64-bit integer
  (|n| < 10**18 < 2**63), so DynamoDB (38 digits), SQLite (64-bit INTEGER) and every JSON
  client hold it exactly; it is also far below Python's 4,300-digit `int()` limit, whose
  `ValueError` would otherwise escape as a 500.
* `MAX_NESTING` 100 (policy text): no condition in the national pack nests deeper than 6;
  every stage after the parser (lowering, type checking, the compiler to Python, Python's
  own compiler, which refuses more than 200 nested parentheses) recurses per level.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 18
MAX_NESTING = 100


class LimitError(ValueError):
    """Input over a limit; `position` is the 0-based character offset where it was found."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        super().__init__(message)


# A JSON string (closed or not) or one bracket; strings are skipped whole, so brackets inside
# them never count. Unrolled-loop form: linear, no backtracking.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def check_json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise `LimitError` when arrays/objects in `text` nest deeper than `limit`.

    Runs before `json.loads`: a text with fewer brackets than the limit cannot be too deep
    and is not scanned at all.
    """
    if text.count("[") + text.count("{") <= limit:
        return
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                raise LimitError(f"nests deeper than {limit} levels", match.start())
        elif char in "]}":
            depth -= 1


def bounded_int(digits: str) -> int:
    """`int(digits)` for at most `MAX_INT_DIGITS` digits (a sign aside); else `LimitError`."""
    if len(digits.lstrip("+-")) > MAX_INT_DIGITS:
        raise LimitError(f"a whole number of more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise LimitError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of "
                         "range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not valid JSON")


def load_json(text: str | bytes) -> Any:
    """Parse JSON within the limits: depth, whole-number digits, finite numbers, and strings
    that are valid Unicode text (no lone UTF-16 surrogates, which cannot be stored as UTF-8).

    Raises `UnicodeDecodeError` for bytes that are not UTF-8, `LimitError` over a limit and
    `ValueError` (json's `JSONDecodeError`) for text that is not JSON.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    check_json_depth(text)
    data = json.loads(text, parse_int=bounded_int, parse_float=_finite_float,
                      parse_constant=_reject_constant)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise LimitError("a string holds a lone UTF-16 surrogate (`\\ud800`-`\\udfff` "
                             "escapes must come in pairs)") from None
    return data


def unicode_problem(text: str) -> str | None:
    """Why `text` is not storable UTF-8 text (a lone surrogate or a NUL), or None when it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone UTF-16 surrogate at character {exc.start}, which is not UTF-8"
    nul = text.find("\0")
    if nul >= 0:
        return f"holds a NUL character at character {nul}"
    return None


def visible(text: str, limit: int = 80) -> str:
    """`text` safe to echo in a message: invisible characters written as `\\xNN`/`\\uNNNN`,
    at most `limit` characters (then `...`)."""
    clean = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[: limit + 1])
    return clean if len(clean) <= limit and len(text) <= limit else clean[:limit] + "..."
