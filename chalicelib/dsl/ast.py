"""The policy language's abstract syntax tree: frozen dataclasses with source spans.

Produced by `lowering` from the Lark tree, read by `checker`, `compiler` and `printer`.
Spans never take part in equality, so `parse(format(parse(text)))` equals
`parse(text)` whenever formatting preserves meaning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.dsl.source import NOWHERE, Diagnostic, Span

# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number literal with an optional unit: `18`, `4 weeks`, `6 cm`."""

    value: int | float
    unit: str | None = None
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class DateLit:
    """A date literal: `2025-04-01`."""

    value: dt.date
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class StrLit:
    """A string literal where a value is expected (always a type error, kept for the checker)."""

    value: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Ref:
    """A name where a value is expected: a fact, `age`, `decision_date`, an assessment input."""

    name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class BinOp:
    """`left + right` or `left - right` over numbers, quantities and dates."""

    op: str
    left: Value
    right: Value
    span: Span = field(default=NOWHERE, compare=False, repr=False)


Value = Num | DateLit | StrLit | Ref | BinOp


# --- selectors ---------------------------------------------------------------------------


class Selector(StrEnum):
    """What part of the activity a code test reads: the one definition of the selectors.

    Each selector names an `Activity` field (`field`), the code system its values are in
    (`system`, None for plain values such as a treatment function or a region), and whether
    it reads only the first code of a list (`first_only`: the dominant procedure, the primary
    diagnosis) or any of them. A `StrEnum`, so it prints as the policy text writes it.
    """

    DOMINANT_PROCEDURE = "dominant procedure"
    ANY_PROCEDURE = "any procedure"
    PRIMARY_DIAGNOSIS = "primary diagnosis"
    ANY_DIAGNOSIS = "any diagnosis"
    ANY_DRUG = "any drug"
    TREATMENT_FUNCTION = "treatment function"
    PROVIDER = "provider"
    REGION = "region"
    ICB = "icb"

    @classmethod
    def named(cls, text: str) -> Selector | None:
        """The selector written `text`, or None when `text` is not one (e.g. `sex`)."""
        try:
            return cls(text)
        except ValueError:
            return None

    @property
    def field(self) -> str:
        """The `Activity` attribute this selector reads."""
        return _SELECTOR_PARTS[self][0]

    @property
    def system(self) -> str | None:
        """The code system of the values read (`opcs4`, `icd10`, `drug`, `ods`), or None."""
        return _SELECTOR_PARTS[self][1]

    @property
    def first_only(self) -> bool:
        """True when only the first code of the list counts (dominant / primary)."""
        return _SELECTOR_PARTS[self][2]

    @property
    def many(self) -> bool:
        """True when the field holds a list of codes (procedures, diagnoses, drugs)."""
        return self.field in _LIST_FIELDS

    @property
    def single_valued(self) -> bool:
        """True when an activity has at most one value here (not `any ...` of a list)."""
        return self.first_only or not self.many

    @property
    def takes_codeset(self) -> bool:
        """True when `in CODESET` is allowed (coded values); else only `in ("...")`."""
        return self.system is not None

    @property
    def implies(self) -> Selector | None:
        """The `any` selector a first-only one implies (dominant procedure ⇒ any procedure)."""
        if not self.first_only:
            return None
        return next(s for s in Selector if s.field == self.field and not s.first_only)


_LIST_FIELDS = frozenset({"procedures", "diagnoses", "drugs"})
# selector -> (Activity field, code system, first code only)
_SELECTOR_PARTS: dict[Selector, tuple[str, str | None, bool]] = {
    Selector.DOMINANT_PROCEDURE: ("procedures", "opcs4", True),
    Selector.ANY_PROCEDURE: ("procedures", "opcs4", False),
    Selector.PRIMARY_DIAGNOSIS: ("diagnoses", "icd10", True),
    Selector.ANY_DIAGNOSIS: ("diagnoses", "icd10", False),
    Selector.ANY_DRUG: ("drugs", "drug", False),
    Selector.TREATMENT_FUNCTION: ("treatment_function", None, False),
    Selector.PROVIDER: ("provider", "ods", False),
    Selector.REGION: ("region", None, False),
    Selector.ICB: ("icb", None, False),
}


# --- conditions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """`left OP right` with OP one of `>= <= == != > <`."""

    op: str
    left: Value
    right: Value
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Between:
    """`value between low and high`, both ends included."""

    value: Value
    low: Value
    high: Value
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class IsValue:
    """`fact is value` or `fact is not value` for enum and bool facts."""

    name: str
    value: str
    negated: bool = False
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class InSet:
    """`selector in CODESET`, e.g. `dominant procedure in TAVI`."""

    selector: Selector
    set_name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class InList:
    """`selector in ("a", "b")` or `fact in (a, b)`; `fact` is set when it names a fact."""

    selector: Selector | None
    fact: str | None
    items: tuple[str, ...]
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class BoolRef:
    """A bool fact, assessment factor or conclusion used as a condition."""

    name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Attested:
    """`attested NAME`: true when the request lists the attestation, else unknown."""

    name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Known:
    """`fact is known`: true when the request gives the fact (never unknown itself)."""

    name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    """`not condition`."""

    operand: Condition
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Group:
    """A combination of conditions.

    `kind` is `all` or `any` (written `all of { }`/`any of { }` when `braced`, else with
    `and`/`or`), `exactly_one`, or `at_least` with its count `n`.
    """

    kind: str
    items: tuple[Condition, ...]
    n: int = 0
    braced: bool = True
    span: Span = field(default=NOWHERE, compare=False, repr=False)


Condition = Compare | Between | IsValue | InSet | InList | BoolRef | Attested | Known | Not | Group
LEAF_TYPES = (Compare, Between, IsValue, InSet, InList, BoolRef, Attested, Known)


# --- provenance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """What a declaration rests on: its `source` URLs and any `unverified` reasons.

    Verified means: at least one source and no reason to doubt it. The lines are where the
    clauses were written (for the formatter), so they take no part in equality.
    """

    sources: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    source_line: int = field(default=0, compare=False, repr=False)
    unverified_line: int = field(default=0, compare=False, repr=False)

    @property
    def verified(self) -> bool:
        """True when the item cites a source and nothing marks it unverified."""
        return bool(self.sources) and not self.unverified

    @property
    def declared(self) -> bool:
        """True when the item says anything about its provenance (a source or a reason)."""
        return bool(self.sources or self.unverified)


NO_PROVENANCE = Provenance()


# --- declarations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pack:
    """The pack header: name, version and the first date it covers."""

    name: str
    version: str
    covers_from: dt.date
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class FactType:
    """A fact's type: bool, int, decimal, date, code or enum (with its values)."""

    kind: str
    values: tuple[str, ...] = ()
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class FactDecl:
    """`fact NAME: TYPE [unit U] "description"` (also an assessment `input`)."""

    name: str
    type: FactType
    unit: str | None
    description: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class AttestationDecl:
    """`attestation NAME "description"`."""

    name: str
    description: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class CodeItem:
    """One item of a code set: `single`, `range`, `string`, `name`, `include` or `file`."""

    kind: str
    value: str
    high: str = ""
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class CodeSetDecl:
    """`codeset NAME: SYSTEM = items`."""

    name: str
    system: str
    items: tuple[CodeItem, ...]
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class LineDecl:
    """`line CODE "name"`: a service line code."""

    code: str
    name: str
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class CommissionerEntry:
    """`commissioner OUTCOME from DATE [in region|icb "a", "b"]`."""

    outcome: str
    start: dt.date
    scope_kind: str | None = None
    scope_values: tuple[str, ...] = ()
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class ServiceDecl:
    """A prescribed specialised service and its effective-dated commissioners."""

    id: str
    name: str
    lines: tuple[str, ...]
    programme: str | None
    portfolio: str | None
    highly_specialised: bool
    commissioners: tuple[CommissionerEntry, ...]
    line_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)
    field_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class RuleDecl:
    """An identification rule: activity condition → service line, tried by rank."""

    name: str
    title: str
    line: str
    rank: int
    when: Condition
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class Outcome:
    """An eligibility and the route (form or process) via which it is sought."""

    eligibility: str
    route: str | None = None
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class PolicyDecl:
    """A clinical commissioning policy version."""

    id: str
    version: int
    title: str
    effective_from: dt.date | None
    effective_to: dt.date | None
    governs: tuple[str, ...] | None  # None: any line
    rank: int
    applies: Condition | None
    criteria: Condition | None
    met: Outcome | None
    not_met: Outcome | None
    field_lines: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class Factor:
    """A named factor of an assessment: a comparison of an input with its threshold."""

    name: str
    title: str
    condition: Condition
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Conclusion:
    """`conclude NAME when condition`: a named result of an assessment."""

    name: str
    when: Condition
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class AssessmentDecl:
    """An assessment such as the four-factor framework."""

    name: str
    title: str
    inputs: tuple[FactDecl, ...]
    factors: tuple[Factor, ...]
    conclusions: tuple[Conclusion, ...]
    span: Span = field(default=NOWHERE, compare=False, repr=False)
    provenance: Provenance = NO_PROVENANCE


@dataclass(frozen=True)
class Expectation:
    """`expect KEY VALUE` in an author test; VALUE is a name, string, list or None."""

    key: str
    value: str | tuple[str, ...] | None
    span: Span = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class TestDecl:
    """An author test: a request (or assessment inputs) and the expected answer."""

    name: str
    assessment: str | None  # None: a decision request under `given`
    input: Any  # the JSON object, as Python data
    expectations: tuple[Expectation, ...]
    span: Span = field(default=NOWHERE, compare=False, repr=False)


Declaration = (
    Pack
    | FactDecl
    | AttestationDecl
    | CodeSetDecl
    | LineDecl
    | ServiceDecl
    | RuleDecl
    | PolicyDecl
    | AssessmentDecl
    | TestDecl
)


@dataclass(frozen=True)
class Module:
    """One parsed policy file: its path (as shown in diagnostics) and declarations."""

    path: str
    items: tuple[Declaration, ...]
    # Problems lowering found (impossible dates); reported with the syntax errors.
    problems: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)
