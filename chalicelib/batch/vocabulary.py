"""Facts and attestations cells read as the API reads them, once per distinct cell.

In: the text of a `facts` cell (`name=value;name=value`) or an `attestations` cell
(`a|b`), and the pack's fact types and attestations. Out: the typed facts (a mapping, as
`Activity.facts` holds them) or the set of attestations, or None when the API would reject
the cell or the columnar core could not follow it exactly (then the row takes the row
evaluator, which gives its reason).

The reading is the row path's own: `rows.parse_facts` splits the cell, `engine.request`'s
typing types each value, so a vectorised row sees exactly the facts `decide()` sees. Numbers
are kept only below 2**45 in size, where float64 (the core's one number type) holds them,
their sums and their products with a unit's factor exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from typing import Any

from chalicelib.batch.rows import RowError, parse_facts
from chalicelib.dsl.types import BUILTINS, VType
from chalicelib.engine import fields as checks
from chalicelib.engine.request import typed_facts

SAFE_NUMBER = 1 << 45
EPOCH = dt.date(1970, 1, 1)
_CACHE_LIMIT = 200_000  # distinct cells remembered (bounded memory whatever the file)
_UNSEEN: Any = object()


class Vocabulary:
    """The pack's facts and attestations; reads cells with a bounded memory of each."""

    def __init__(self, fact_types: Mapping[str, VType], attestations: Collection[str]) -> None:
        self.fact_types = fact_types
        self.attestations = attestations
        self._facts: dict[str, Mapping[str, Any] | None] = {}
        self._attested: dict[str, frozenset[str] | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_facts": {}, "_attested": {}}

    def facts(self, text: str) -> Mapping[str, Any] | None:
        """The typed facts of a cell, or None (the row evaluator decides the row)."""
        found = self._facts.get(text, _UNSEEN)
        if found is _UNSEEN:
            found = self._read_facts(text)
            if len(self._facts) < _CACHE_LIMIT:
                self._facts[text] = found
        return found  # type: ignore[no-any-return]

    def _read_facts(self, text: str) -> Mapping[str, Any] | None:
        if not text:
            return {}
        try:
            raw = parse_facts(text)
        except RowError:
            return None
        # An unknown name is a reject (its reason, with a did-you-mean, is the row path's).
        if any(name not in self.fact_types or name in BUILTINS for name in raw):
            return None
        problems: list[Any] = []
        typed = typed_facts(raw, self.fact_types, problems)
        if problems:
            return None
        for value in typed.values():
            if isinstance(value, int | float) and not isinstance(value, bool) and not (
                -SAFE_NUMBER < value < SAFE_NUMBER
            ):
                return None
        return typed

    def attested(self, text: str) -> frozenset[str] | None:
        """The attestations a cell gives, or None when the API would reject them."""
        found = self._attested.get(text, _UNSEEN)
        if found is _UNSEEN:
            items = [item for item in text.split("|") if item] if text else []
            ok = len(items) <= checks.MAX_CODES and all(i in self.attestations for i in items)
            found = frozenset(items) if ok else None
            if len(self._attested) < _CACHE_LIMIT:
                self._attested[text] = found
        return found  # type: ignore[no-any-return]


def column_value(value: Any, vtype: VType) -> Any:
    """A typed fact as the core's columns hold it: numbers and dates (days since 1970) as
    float, booleans and text as they are."""
    if value is None:
        return None
    if vtype.kind == "number":
        return float(value)
    if vtype.kind == "date":
        return float((value - EPOCH).days)
    return value


__all__ = ["EPOCH", "SAFE_NUMBER", "Vocabulary", "column_value"]
