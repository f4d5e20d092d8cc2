"""Input shapes `pss batch` reads: its own columns, or SUS-shaped extracts (`--profile`).

In: a record batch as read from the file. Out (`Profile.canonical`): a batch holding exactly
`rows.COLUMNS`, the shape the columnar core decides, row for row; the file's own columns are
what the output carries. Column names are matched exactly; where SUS spells a field more than
one way, the first name present wins (`Source.names`).

SUS+ (nhs-domain.md §1.2): `Der_Procedure_All` and `Der_Diagnosis_All` hold every procedure and
diagnosis of the spell or appointment, `||`-delimited (leading, trailing and doubled
delimiters are ignored); `Spell_Dominant_Procedure` is the spell's dominant procedure. When it
is empty the first of `Der_Procedure_All` is taken as dominant, as the API takes the first
procedure. The first of `Der_Diagnosis_All` is the primary diagnosis. Sex is the NHS Data
Dictionary code (1 male, 2 female, 9 indeterminate, 0 or X not known).
[U] the identifier, date, ICB and region columns are our reading of SUS+ naming, not checked
against the SUS+ data dictionary (which is not public).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chalicelib.batch.rows import COLUMNS

Arr = Any


class ProfileError(Exception):
    """The file lacks a column the profile needs (exit 2, one line)."""


@dataclass(frozen=True)
class Source:
    """Where a canonical column comes from: the first of `names` present, else `default`."""

    names: tuple[str, ...]
    required: bool = False
    default: str = ""


@dataclass(frozen=True)
class Profile:
    """A named input shape: for each canonical column, its SUS source."""

    name: str
    setting: str
    sources: dict[str, Source]
    procedures: str  # the `||` list of every procedure
    diagnoses: str  # the `||` list of every diagnosis
    dominant: str | None  # the spell's dominant procedure, if the shape has one

    def columns(self) -> list[tuple[str, str]]:
        """(canonical column, the SUS column documented first) for the README and `synth`."""
        out = [(c, s.names[0]) for c, s in self.sources.items()]
        out += [("dominant_procedure", self.dominant or f"first of {self.procedures}")]
        out += [("other_procedures", self.procedures), ("primary_diagnosis",
                f"first of {self.diagnoses}"), ("secondary_diagnoses", f"rest of {self.diagnoses}")]
        return out

    def check(self, names: Sequence[str]) -> None:
        """Raise `ProfileError` naming every required column the header lacks."""
        missing = [
            " or ".join(s.names) for s in self.sources.values()
            if s.required and not any(n in names for n in s.names)
        ]
        missing += [c for c in (self.procedures, self.diagnoses) if c not in names]
        if missing:
            raise ProfileError(f"not a {self.name} extract: missing column(s): "
                               + ", ".join(missing))

    def names(self, header: Sequence[str]) -> dict[str, str]:
        """Canonical column -> the extract's column it is read from (for reject reasons)."""
        found = {c: next((n for n in s.names if n in header), s.names[0])
                 for c, s in self.sources.items()}
        dominant = self.dominant if self.dominant in header else self.procedures
        return {**found, "dominant_procedure": dominant or self.procedures,
                "other_procedures": self.procedures, "primary_diagnosis": self.diagnoses,
                "secondary_diagnoses": self.diagnoses}

    def canonical(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch in `rows.COLUMNS`, row for row."""
        n, names = batch.num_rows, batch.schema.names
        cells: dict[str, Arr] = {}
        for column, source in self.sources.items():
            found = next((s for s in source.names if s in names), None)
            cells[column] = (
                _text(batch.column(found)) if found else pa.array([source.default] * n, pa.string())
            )
        cells["setting"] = pa.array([self.setting] * n, pa.string())
        cells["sex"] = pc.if_else(pc.equal(pc.ascii_upper(cells["sex"]), "X"), "0", cells["sex"])
        procedures = _items(_text(batch.column(self.procedures)))
        diagnoses = _items(_text(batch.column(self.diagnoses)))
        first_procedure = pc.fill_null(pc.list_element(procedures, 0), "") if n else _empty(0)
        dominant = _text(batch.column(self.dominant)) if self.dominant in names else None
        if dominant is None:
            cells["dominant_procedure"] = first_procedure
            cells["other_procedures"] = _join(pc.list_slice(procedures, 1))
        else:
            # The dominant one stands first; the list keeps every procedure (`any procedure`).
            given = pc.not_equal(dominant, "")
            cells["dominant_procedure"] = pc.if_else(given, dominant, first_procedure)
            rest = _join(pc.list_slice(procedures, 1))
            cells["other_procedures"] = pc.if_else(given, _join(procedures), rest)
        cells["primary_diagnosis"] = pc.fill_null(pc.list_element(diagnoses, 0), "") if n else (
            _empty(0)
        )
        cells["secondary_diagnoses"] = _join(pc.list_slice(diagnoses, 1))
        for column in ("drugs", "facts", "attestations"):
            cells.setdefault(column, _empty(n))
        return pa.RecordBatch.from_arrays([cells[c] for c in COLUMNS], names=list(COLUMNS))


def _empty(n: int) -> Arr:
    return pa.array([""] * n, pa.string())


def _text(column: Arr) -> Arr:
    """Any column as text (SUS ages and dates often arrive typed), nulls as empty cells."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
        column = pc.strftime(column, format="%Y-%m-%d")
    return pc.fill_null(column.cast(pa.string()), "")


def _items(column: Arr) -> Arr:
    """A `||`-delimited cell as a list of its non-empty items, trimmed of spaces."""
    trimmed = pc.replace_substring_regex(column, r"^(\|\|)+|(\|\|)+$", "")
    collapsed = pc.replace_substring_regex(trimmed, r"(\|\|){2,}", "||")
    return pc.split_pattern(pc.utf8_trim_whitespace(collapsed), "||")


def _join(lists: Arr) -> Arr:
    """Lists of codes back to the `|`-separated cell the core reads."""
    items = pc.utf8_trim_whitespace(pc.list_flatten(lists)) if len(lists) else _empty(0)
    rebuilt = pa.ListArray.from_arrays(_offsets(lists), items)
    return pc.fill_null(pc.binary_join(rebuilt, "|"), "")


def _offsets(lists: Arr) -> Arr:
    """Offsets of a (possibly sliced) list array, rebased to its flattened values."""
    offsets = lists.offsets
    return pc.subtract(offsets, offsets[0]) if len(offsets) else offsets


_COMMON = {
    "provider_code": Source(("Provider_Code", "Der_Provider_Code"), required=True),
    "sex": Source(("Sex", "Person_Stated_Gender_Code", "Gender")),
    "region": Source(("Region", "Der_Postcode_Region")),
    "icb": Source(("ICB_Code", "Der_Postcode_ICB_Code")),
}
PROFILES = {
    "sus-apc": Profile(
        "sus-apc",
        "APC",
        {
            "record_id": Source(("APCS_Ident", "Spell_Ident", "Record_Identifier")),
            "activity_date": Source(("Discharge_Date", "Admission_Date"), required=True),
            "age": Source(("Age_At_Start_of_Spell_SUS",), required=True),
            "treatment_function": Source(
                ("Treatment_Function_Code", "Spell_Treatment_Function_Code")
            ),
            **_COMMON,
        },
        procedures="Der_Procedure_All",
        diagnoses="Der_Diagnosis_All",
        dominant="Spell_Dominant_Procedure",
    ),
    "sus-op": Profile(
        "sus-op",
        "OP",
        {
            "record_id": Source(("OPA_Ident", "Attendance_Ident", "Record_Identifier")),
            "activity_date": Source(("Appointment_Date",), required=True),
            "age": Source(("Age_At_Appointment", "Age_At_Start_of_Spell_SUS"), required=True),
            "treatment_function": Source(("Treatment_Function_Code",)),
            **_COMMON,
        },
        procedures="Der_Procedure_All",
        diagnoses="Der_Diagnosis_All",
        dominant=None,
    ),
}
