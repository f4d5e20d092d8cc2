"""The activity a decision is about: the validated, normalised form of a request.

Built once at the edge (`engine.request`) and read by compiled evaluators. Codes are already
canonical (`K262`), facts already typed (dates are `datetime.date`), so evaluation does no
parsing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Activity:
    """One referral or activity record, as the evaluators see it."""

    date: dt.date
    age: int | None = None
    sex: str | None = None
    procedures: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()
    treatment_function: str | None = None
    provider: str | None = None
    region: str | None = None
    icb: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    attestations: frozenset[str] = frozenset()
