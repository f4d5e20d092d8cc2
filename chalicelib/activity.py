"""The activity a decision is about: the validated, normalised form of a request.

Built once at the edge (`engine.request`) and read by compiled evaluators. Codes are already
canonical (`K262`), facts already typed (dates are `datetime.date`), so evaluation does no
parsing. Age is carried in exact whole months (`age_in_months`), so `age < 18 months` and
`age >= 2 years` are answered from the same number on every path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

_NO_FACTS: Mapping[str, Any] = MappingProxyType({})


class Activity(NamedTuple):
    """One referral or activity record, as the evaluators see it.

    Immutable like the frozen dataclasses elsewhere, but a `NamedTuple`: one is built for
    every decision and every batch row, and a tuple is built about three times faster than a
    frozen dataclass, while its fields read as fast.
    """

    date: dt.date
    age_months: int | None = None
    sex: str | None = None
    procedures: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()
    treatment_function: str | None = None
    provider: str | None = None
    region: str | None = None
    icb: str | None = None
    facts: Mapping[str, Any] = _NO_FACTS
    attestations: frozenset[str] = frozenset()


def age_in_months(born: dt.date, on: dt.date) -> int:
    """Whole months from `born` to `on` (`on` not before `born`).

    A month is completed on the day of the month one was born on; when that month has no
    such day (born on the 31st, or on 29 February), on the first day of the next month — so
    someone born on 29 February 2024 is 11 months old on 28 February 2025 and 12 months
    (1 year) old on 1 March 2025 (the convention this service follows). Whole years are
    always `age_in_months(...) // 12`.
    """
    return (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
