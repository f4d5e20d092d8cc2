"""The errors PSS rules raises, as one tree.

Our exception hierarchy:

* PssError                  -- anything this library raises on purpose
  + PolicyError             -- a policy pack failed to parse or check; carries diagnostics
  + RequestError            -- a decision request is malformed; carries `details` (field, problem)
  + NotCoveredError         -- a valid request dated outside every policy set (HTTP 422)
  + UnknownNameError        -- a policy, assessment or decision asked for by id does not exist
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.dsl.source import Diagnostic


class PssError(Exception):
    """Base class of every error raised on purpose."""


class PolicyError(PssError):
    """A policy pack has errors; `diagnostics` lists every one found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], rendered: str = "") -> None:
        self.diagnostics = tuple(diagnostics)
        self.rendered = rendered
        first = self.diagnostics[0].headline() if self.diagnostics else "policy error"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


@dataclass(frozen=True)
class Problem:
    """One problem with a request: the JSON path of the field and what is wrong with it."""

    field: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        """Return the problem as the `details` item of the error body."""
        return {"field": self.field, "problem": self.problem}


class RequestError(PssError):
    """A request failed validation; `details` holds one `Problem` per bad field."""

    def __init__(self, details: Sequence[Problem]) -> None:
        self.details = tuple(details)
        super().__init__("; ".join(f"{d.field}: {d.problem}" for d in self.details))


class NotCoveredError(PssError):
    """The request is valid but no policy set is in force at its date."""


class UnknownNameError(PssError):
    """A policy, assessment or other named thing was asked for and does not exist."""
