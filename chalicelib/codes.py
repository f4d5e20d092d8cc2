"""Clinical and organisation codes: normalised once, at the edge.

In: a code as a person or a record system wrote it (`k26.2`, ` K262 `, `Cetuximab`).
Out: the one form the engine compares (`K262`, `cetuximab`), or None when malformed.
ICD-10 and OPCS-4 codes lose their dot, spaces and case; drug names are lowercased with
single spaces; ODS codes are uppercased.
"""

from __future__ import annotations

import re
from functools import lru_cache

SYSTEMS = ("icd10", "opcs4", "drug", "ods")
# ICD-10 (5th Edition, UK): a letter, two digits, then up to two characters below the
# three-character category (`I35.0`, `G01X`). OPCS-4: a letter, two digits, an optional digit.
_PATTERNS = {
    "icd10": re.compile(r"[A-Z][0-9]{2}[0-9A-Z]{0,2}"),
    "opcs4": re.compile(r"[A-Z][0-9]{2}[0-9]?"),
    "drug": re.compile(r"[a-z0-9][a-z0-9 ()+/.,'-]{0,79}"),
    "ods": re.compile(r"[A-Z0-9]{3,6}"),
}
_SEPARATORS = re.compile(r"[\s.]+")
_SPACES = re.compile(r"\s+")
HIERARCHICAL = frozenset({"icd10", "opcs4"})


def normalise(system: str, raw: str) -> str | None:
    """Return the canonical form of `raw` in `system`, or None when it is not well formed."""
    if len(raw) > _REMEMBERED_LENGTH:
        return _normalise(system, raw)
    return _remembered(system, raw)


def _normalise(system: str, raw: str) -> str | None:
    if system in HIERARCHICAL:
        code = _SEPARATORS.sub("", raw).upper()
    elif system == "drug":
        code = _SPACES.sub(" ", raw.strip().lower())
    else:
        code = raw.strip().upper()
    return code if _PATTERNS[system].fullmatch(code) else None


# Requests repeat a small set of codes; remembering the last few tens of thousands saves the
# regular expressions on every decision. Only texts as short as a real code (a drug name is
# at most 80 characters) are remembered, so the memory stays bounded (under 10 MiB) however
# long the garbage a caller sends: a 256 KiB body of one long "drug" after another would
# otherwise keep gigabytes alive.
_REMEMBERED_LENGTH = 96
_remembered = lru_cache(maxsize=1 << 16)(_normalise)


def display(system: str, code: str) -> str:
    """Return a canonical code with its dot back (`K262` -> `K26.2`) for messages."""
    if system in HIERARCHICAL and len(code) > 3:
        return f"{code[:3]}.{code[3:]}"
    return code


def expand_range(low: str, high: str) -> list[str] | None:
    """Return every code from `low` to `high` at their level, or None if not a range.

    Both ends must have the same length and be a letter followed by digits, e.g.
    `K261`-`K265` or `Q20`-`Q28`; the letter may change (`C00`-`D48`).
    """
    if len(low) != len(high) or not (low[1:].isdigit() and high[1:].isdigit()):
        return None
    if (low[0], int(low[1:])) > (high[0], int(high[1:])):
        return None
    width = len(low) - 1
    top = 10**width - 1
    codes: list[str] = []
    for letter_code in range(ord(low[0]), ord(high[0]) + 1):
        letter = chr(letter_code)
        start = int(low[1:]) if letter == low[0] else 0
        stop = int(high[1:]) if letter == high[0] else top
        codes.extend(f"{letter}{n:0{width}d}" for n in range(start, stop + 1))
    return codes
