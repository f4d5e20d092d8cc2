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
* Pack file names sent by a client (`POST /v1/what-if`, the studio): an allow-list, not a
  deny-list (`pack_files`). Only the pack's own layout is writable: `policies/<name>.pss`,
  `policies/tests/<name>.pss` (author tests) and `policies/codes/<name>.csv`, each `<name>`
  1 to 64 lowercase ASCII letters, digits, `_` or `-` (so no NUL, no `..`, no absolute path,
  no name longer than 84 characters, no `x.pss/y.pss`, and no name that is a file in one
  request and a folder in another: only `tests` and `codes` are folders, and a file always
  has a suffix).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import Problem, json_path

MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 18
MAX_NESTING = 100
# The pack as clients name it, whatever its folder is called on disk.
PACK_ROOT = "policies"
_PACK_NAME = r"[a-z0-9][a-z0-9_-]{0,63}"
_PACK_FILE = re.compile(rf"{PACK_ROOT}/((?:tests/)?{_PACK_NAME}\.pss|codes/{_PACK_NAME}\.csv)",
                        re.ASCII)
PACK_FILE_RULE = (f"must be `{PACK_ROOT}/<name>.pss`, `{PACK_ROOT}/tests/<name>.pss` or "
                  f"`{PACK_ROOT}/codes/<name>.csv`, `<name>` being 1 to 64 lowercase letters, "
                  "digits, `_` or `-`")


class LimitError(ValueError):
    """Input over a limit; `position` is the 0-based character offset where it was found,
    `field` the JSON path of the value (`patient.age`) when it is known."""

    def __init__(self, message: str, position: int | None = None,
                 field: str | None = None) -> None:
        self.position = position
        self.field = field
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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise LimitError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is out of "
                         "range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not valid JSON")


class _TooLong:
    """Where a whole number too long to read was (`load_json`)."""


_TOO_LONG = _TooLong()


def _path_to(data: Any, marker: object) -> tuple[int | str, ...] | None:
    """The path of the first `marker` in `data` (depth-first, in order), or None."""
    if data is marker:
        return ()
    items = data.items() if isinstance(data, dict) else (
        enumerate(data) if isinstance(data, list) else ())
    for key, value in items:
        found = _path_to(value, marker)
        if found is not None:
            return (key, *found)
    return None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose member names are unique: JSON parsers disagree on which of two
    `"date"`s wins (Python keeps the last, others the first), so a request that says two
    things is refused rather than read one way."""
    members = dict(pairs)
    if len(members) != len(pairs):
        names = [name for name, _ in pairs]
        twice = next(name for i, name in enumerate(names) if name in names[:i])
        raise LimitError(f"the member `{twice[:64]}` is given twice in one object")
    return members


def load_json(text: str | bytes) -> Any:
    """Parse JSON within the limits: depth, whole-number digits, finite numbers, member names
    unique in each object, and strings that are valid Unicode text (no lone UTF-16
    surrogates, which cannot be stored as UTF-8).

    Raises `UnicodeDecodeError` for bytes that are not UTF-8, `LimitError` over a limit and
    `ValueError` (json's `JSONDecodeError`) for text that is not JSON.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    check_json_depth(text)
    too_long = False

    def whole_number(digits: str) -> int | _TooLong:
        # Not converted (Python's own limit would raise), but kept as a marker, so that the
        # refusal can name where the number is (`patient.age`), found once parsing is done.
        nonlocal too_long
        if len(digits.lstrip("+-")) > MAX_INT_DIGITS:
            too_long = True
            return _TOO_LONG
        return int(digits)

    data = json.loads(text, parse_int=whole_number, parse_float=_finite_float,
                      parse_constant=_reject_constant, object_pairs_hook=_unique_members)
    if too_long:
        raise LimitError(f"a whole number of more than {MAX_INT_DIGITS} digits",
                         field=json_path(_path_to(data, _TOO_LONG) or ()))
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


@dataclass(frozen=True)
class PackFile:
    """A client's pack file that passed `pack_files`: its name, its path inside the pack
    folder (`("tests", "cardiac.pss")`) and its text."""

    name: str
    parts: tuple[str, ...]
    text: str


def pack_file_field(name: str) -> str:
    """The error field naming a client's pack file: `files.<name>`, made safe to echo."""
    return f"files.{visible(name, 80)}"


def pack_files(files: Mapping[str, str]) -> tuple[list[PackFile], list[Problem]]:
    """Check client pack files (name -> text) against the one file-name rule and the text
    rule (valid Unicode, no NUL): the files that pass, and one problem per file that does
    not, in the order given."""
    passed: list[PackFile] = []
    problems: list[Problem] = []
    for name, text in files.items():
        match = _PACK_FILE.fullmatch(name)
        if match is None:
            problems.append(Problem(pack_file_field(name), PACK_FILE_RULE))
            continue
        wrong = unicode_problem(text)
        if wrong is not None:
            problems.append(Problem(pack_file_field(name), f"is not valid UTF-8 text: it {wrong}"))
            continue
        passed.append(PackFile(name, tuple(match.group(1).split("/")), text))
    return passed, problems
