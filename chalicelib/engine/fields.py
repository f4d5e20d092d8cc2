"""The field checks of a decision request, written once.

The pydantic models of `engine.request` (which serve the HTTP API, the Python API and the CDS
adapter) and `pss batch`'s fast row reader (`batch.rows.FastRows`) both take their limits,
patterns and value checks from here, so a value one accepts the other accepts too. Patterns
are unanchored; `anchored()` gives the form pydantic and the OpenAPI document use, the fast
path calls `fullmatch`.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any

from chalicelib.dsl.source import did_you_mean
from chalicelib.dsl.types import REGIONS, SEX_VALUES

MAX_CODES = 50  # codes in one list (procedures, diagnoses, drugs, attestations)
MAX_AGE = 130  # years
MAX_REFERRAL_ID = 128  # characters
ICB = re.compile(r"[A-Z0-9]{3,5}")  # ODS code of an integrated care board, e.g. QWE
ODS = re.compile(r"[A-Za-z0-9]{3,6}")  # ODS code of a provider organisation
TREATMENT_FUNCTION = re.compile(r"[0-9]{3}")
# Python 3.11's fromisoformat also takes `20240301` and `2024-W10-1`; the contract says
# YYYY-MM-DD, so nothing else is accepted.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SEXES = frozenset(SEX_VALUES)  # `patient.sex` (pydantic: `dsl.types.Sex`)
_REGIONS = frozenset(REGIONS)


def anchored(pattern: re.Pattern[str]) -> str:
    """The pattern matching whole values, as pydantic's `Field(pattern=...)` wants it."""
    return f"^{pattern.pattern}$"


def iso_date(value: Any) -> dt.date:
    """A `YYYY-MM-DD` string (or a date) as a date; `ValueError` saying what is wrong."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return _date_text(value)
    raise ValueError("must be a date written YYYY-MM-DD")


# Requests repeat the same dates (the decision date is mostly today): each text is read once.
@lru_cache(maxsize=1 << 14)
def _date_text(value: str) -> dt.date:
    if not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"`{value}` is not a real date written YYYY-MM-DD") from None


def region(value: str) -> str:
    """An NHS England region by name; `ValueError` with a did-you-mean otherwise."""
    if value not in _REGIONS:
        hint = did_you_mean(value, REGIONS)
        raise ValueError(f"unknown region `{value}`" + (f"; {hint}" if hint else ""))
    return value


def valid_age(years: int) -> bool:
    """An age in whole years the API accepts."""
    return 0 <= years <= MAX_AGE


# The ASCII codes of the nine digits, weighted 10 down to 2, add this much over the digits.
_NHS_ZEROS = ord("0") * sum(range(2, 11))


def nhs_number_valid(number: str) -> bool:
    """Modulus 11 check of a 10-digit NHS number (check digit 10 is never valid)."""
    if len(number) != 10 or not (number.isascii() and number.isdigit()):
        return False
    # On the ASCII codes of the digits, unrolled: every request carrying an NHS number pays
    # for this. `-total % 11` is 11 minus the remainder, with 11 read as 0.
    d1, d2, d3, d4, d5, d6, d7, d8, d9, check = number.encode()
    total = 10 * d1 + 9 * d2 + 8 * d3 + 7 * d4 + 6 * d5 + 5 * d6 + 4 * d7 + 3 * d8 + 2 * d9
    expected = -(total - _NHS_ZEROS) % 11
    return expected != 10 and expected == check - 48
