"""Value types of the policy language and the units numbers may carry.

Numbers with a unit are quantities. Days and weeks are one dimension (base: days), months
and years another (base: months); a bare number takes the unit of what it is compared with.
Quantities are converted to their base unit when compiled, so `4 weeks` is 28 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {
    "days": ("days", 1),
    "weeks": ("days", 7),
    "months": ("months", 1),
    "years": ("months", 12),
    # Lengths count in millimetres so `3 mm` against a fact in cm is exact (0.3, not 0.30...04).
    "cm": ("mm", 10),
    "mm": ("mm", 1),
    "kg": ("kg", 1),
    "gbp": ("gbp", 1),
    "percent": ("percent", 1),
}
FACT_KINDS = ("bool", "int", "decimal", "date", "code", "enum")
# NHS England's seven regions, as named in its delegation publications.
REGIONS = (
    "East of England",
    "London",
    "Midlands",
    "North East and Yorkshire",
    "North West",
    "South East",
    "South West",
)


@dataclass(frozen=True)
class VType:
    """The type of a value: `number` (with a dimension and scale), `date`, `bool`, `enum`
    (with its values), `code` or `string`."""

    kind: str
    dim: str | None = None
    scale: float = 1
    values: tuple[str, ...] = ()
    integer: bool = False
    # The class a given value of this type has when it is taken as it is (`bool` for yes/no,
    # `int` for an integer, `str` for an enum, one of `values`); None when every value is
    # checked and converted. Derived from the fields above, so not compared.
    exact: type | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        exact = {"bool": bool, "enum": str}.get(self.kind)
        if self.kind == "number" and self.integer:
            exact = int
        object.__setattr__(self, "exact", exact)

    def describe(self) -> str:
        """Return the type as a policy author would say it."""
        if self.kind == "number" and self.dim:
            return f"a quantity in {self.dim}"
        if self.kind == "enum":
            return "one of " + ", ".join(self.values)
        return {"number": "a number", "date": "a date", "bool": "yes/no", "string": "a string"}.get(
            self.kind, self.kind
        )


NUMBER = VType("number")
DATE = VType("date")
BOOL = VType("bool")
STRING = VType("string")
DAYS = VType("number", "days", 1)
Sex = Literal["female", "male", "indeterminate", "unknown"]  # a request's `patient.sex` too
SEX_VALUES: tuple[str, ...] = get_args(Sex)

# Names every policy may use besides its declared facts.
BUILTINS: dict[str, VType] = {
    "age": VType("number", "months", 12),
    "decision_date": DATE,
    "sex": VType("enum", values=SEX_VALUES),
}


def fact_type(kind: str, values: tuple[str, ...], unit: str | None) -> VType:
    """Return the value type of a declared fact."""
    if kind in ("int", "decimal"):
        dim, scale = UNITS[unit] if unit else (None, 1)
        return VType("number", dim, scale, integer=kind == "int")
    if kind == "enum":
        return VType("enum", values=values)
    return {"bool": BOOL, "date": DATE, "code": VType("code")}[kind]
