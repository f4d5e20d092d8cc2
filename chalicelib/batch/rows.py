"""The SUS-like activity CSV: its columns, and one row to a request or an `Activity`.

In: a CSV row as a list of strings, laid out by a header naming at least `COLUMNS` (any order;
other columns are carried through untouched). Out: either the request JSON of
`POST /v1/decisions` (`row_request`, the reference: `PolicySet.parse` validates it) or, on the
hot path, an `Activity` built by hand (`FastRows.activity`), or a `RowError` with the reason.

Layout (SUS carries a dominant procedure and a primary diagnosis; policies/SOURCES.md):

* lists (`secondary_diagnoses`, `other_procedures`, `drugs`, `attestations`) are `|`-separated;
  empty items are ignored;
* `sex` is the NHS Data Dictionary code (1 male, 2 female, 9 indeterminate, 0 not known) or the
  API's word;
* `facts` is `name=value;name=value` (`true`/`false`, whole and decimal numbers are typed, every
  other value is a string, e.g. a date `2025-01-31`).

The fast path accepts a row only when it is sure `PolicySet.parse` would accept the same request
and build the same `Activity`; on any doubt (and for rows with facts or attestations, whose
vocabulary belongs to the pack) it answers None and the caller takes the reference path, so
decisions and reject reasons are those of the API by construction.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.activity import Activity
from chalicelib.batch.lines import width_problem
from chalicelib.codes import normalise
from chalicelib.dsl.types import VType
from chalicelib.engine import fields as checks
from chalicelib.engine.decision import Decision
from chalicelib.engine.policy_set import PolicySet, RuleIndex
from chalicelib.engine.request import typed_facts
from chalicelib.errors import NotCoveredError, PssError, RequestError

COLUMNS = (
    "record_id",
    "setting",
    "activity_date",
    "provider_code",
    "age",
    "sex",
    "region",
    "icb",
    "treatment_function",
    "primary_diagnosis",
    "secondary_diagnoses",
    "dominant_procedure",
    "other_procedures",
    "drugs",
    "facts",
    "attestations",
)
# What `pss batch` appends to every classified row.
RESULT_COLUMNS = (
    "commissioner",
    "service_id",
    "service_line",
    "policy_id",
    "policy_version",
    "eligibility",
    "route",
    "missing",
    # "false" when the answer rests on a pack item marked unverified (the decision's
    # `unverified`); appended last so positions of the columns before it never move.
    "verified",
)
SEX_CODES = {"1": "male", "2": "female", "9": "indeterminate", "0": "unknown"}
_SEX_FAST = {**SEX_CODES, **{v: v for v in checks.SEXES}}
# A cell value pydantic would reject: the row takes the reference path to get its reason.
_BAD: Any = object()
# At most 18 digits (`limits.MAX_INT_DIGITS`): longer stays text, for validation to refuse.
_INT = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")
# Distinct codes in a year of activity number in the tens of thousands; the cache stops
# growing past this so memory stays constant whatever the file.
_CODE_CACHE_LIMIT = 200_000


class RowError(PssError):
    """A row cannot be classified; the message is the reason written to the rejects file."""

    code = "invalid_row"
    status = 400


class HeaderError(PssError):
    """The header lacks required columns (an input error: exit 2, nothing classified)."""

    code = "invalid_header"
    status = 400


def _column_names(header: Sequence[str]) -> list[str]:
    """A header's column names as written, without padding or a UTF-8 byte-order mark."""
    return [h.strip().lstrip("\ufeff") for h in header]


def added_column_clash(header: Sequence[str]) -> str | None:
    """Why an input that already has a column `pss batch` adds (most often a file
    `pss batch` wrote) cannot be classified, or None: the output would hold two columns of
    one name."""
    names = set(_column_names(header))
    clash = [c for c in (*RESULT_COLUMNS, "reject_reason", "engine_path") if c in names]
    if not clash:
        return None
    return ("it already has the column(s) the output adds: " + ", ".join(clash)
            + " (is it a classified file? give the activity file, or rename them)")


@dataclass(frozen=True)
class Layout:
    """Where each required column sits in the file's header."""

    header: tuple[str, ...]
    index: dict[str, int]

    @classmethod
    def from_header(cls, header: Sequence[str]) -> Layout:
        """Map `COLUMNS` to positions; raise `HeaderError` naming what is missing."""
        names = _column_names(header)
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise HeaderError("missing column(s): " + ", ".join(missing))
        return cls(tuple(names), {c: names.index(c) for c in COLUMNS})


def _split(text: str) -> list[str]:
    return [item for item in text.split("|") if item] if text else []


def _fact_value(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if _INT.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        return float(raw)
    return raw


def parse_facts(text: str) -> dict[str, Any]:
    """`name=value;name=value` to a facts object; `RowError` on a malformed pair."""
    facts: dict[str, Any] = {}
    for pair in text.split(";"):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise RowError(f"facts: `{pair}` is not written name=value")
        if name in facts:
            raise RowError(f"facts: `{name}` is given twice")
        facts[name] = _fact_value(value)
    return facts


def row_request(fields: Sequence[str], layout: Layout) -> dict[str, Any]:
    """The request JSON for a row (the reference conversion); `RowError` for CSV-level faults."""
    problem = width_problem(len(fields), len(layout.header))
    if problem:
        raise RowError(problem)
    cell = {name: fields[i] for name, i in layout.index.items()}
    patient: dict[str, Any] = {k: cell[k] for k in ("region", "icb") if cell[k]}
    if cell["age"]:
        patient["age"] = int(cell["age"]) if _INT.fullmatch(cell["age"]) else cell["age"]
    if cell["sex"]:
        patient["sex"] = SEX_CODES.get(cell["sex"], cell["sex"])
    request: dict[str, Any] = {"date": cell["activity_date"], "patient": patient}
    optional = {"referral_id": cell["record_id"], "treatment_function": cell["treatment_function"]}
    request.update((k, v) for k, v in optional.items() if v)
    if cell["provider_code"]:
        request["provider"] = {"ods_code": cell["provider_code"]}
    request.update(_lists(cell))
    if cell["facts"]:
        request["facts"] = parse_facts(cell["facts"])
    return request


def _lists(cell: dict[str, str]) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    for first, rest, key in (
        ("dominant_procedure", "other_procedures", "procedures"),
        ("primary_diagnosis", "secondary_diagnoses", "diagnoses"),
    ):
        others = _split(cell[rest])
        if others and not cell[first]:
            # The first code is the dominant/primary one: promoting a subsidiary code would
            # classify the row on the wrong code.
            raise RowError(f"{first}: is empty but {rest} are given")
        codes = ([cell[first]] if cell[first] else []) + others
        if codes:
            lists[key] = codes
    for name in ("drugs", "attestations"):
        items = _split(cell[name])
        if items:
            lists[name] = items
    return lists


def reject_reason(exc: Exception) -> str:
    """One line saying why a request was refused, in the API's field names (`pss diff` of
    referral files); a row's reason is `row_reason`'s."""
    if isinstance(exc, RequestError):
        return "; ".join(f"{p.field}: {p.problem}" for p in exc.details)
    if isinstance(exc, NotCoveredError):
        return f"activity_date: {exc}"
    return str(exc)


# The column each field of the request `row_request` builds comes from.
_FIELD_COLUMNS = {
    "referral_id": "record_id",
    "date": "activity_date",
    "patient": "age",  # "give `age` or `birth_date`": the row has no age
    "patient.age": "age",
    "patient.sex": "sex",
    "patient.region": "region",
    "patient.icb": "icb",
    "provider": "provider_code",
    "provider.ods_code": "provider_code",
    "treatment_function": "treatment_function",
    "drugs": "drugs",
    "attestations": "attestations",
    "facts": "facts",
}
_FIRST_OF = {"procedures": ("dominant_procedure", "other_procedures"),
             "diagnoses": ("primary_diagnosis", "secondary_diagnoses")}
_LISTED = re.compile(r"(procedures|diagnoses|drugs|attestations)(?:\[(\d+)\])?")
_WHAT = {
    "icb": "an ICB code (3 to 5 capital letters or digits, e.g. QWE)",
    "provider_code": "an ODS organisation code (3 to 6 letters or digits, e.g. RBQ)",
    "treatment_function": "a treatment function code (3 digits, e.g. 320)",
}
_SHOWN = 40  # characters of a cell a reason repeats


def _column_of(field: str) -> tuple[str, str]:
    """(the row's column, the fact named in the path if any) for a request field path."""
    listed = _LISTED.fullmatch(field)
    if listed and listed[1] in _FIRST_OF:
        first, rest = _FIRST_OF[listed[1]]
        return (first if listed[2] == "0" else rest), ""
    if listed:
        return listed[1], ""
    if field.startswith("facts."):
        return "facts", field.removeprefix("facts.")
    return _FIELD_COLUMNS.get(field, field), ""


def _quoted(cell: str) -> str:
    if len(cell) <= _SHOWN:
        return f"`{cell}`"
    return f"`{cell[:_SHOWN]}...` ({len(cell):,} characters)"


_AGE_BOUND = re.compile(r"Input should be (less|greater) than or equal to (\d+)")
_AT_MOST = re.compile(r"(?:String|List) should have at most (\d+) (characters|items).*")


def _plain(column: str, fact: str, problem: str, cell: str) -> str:
    """The API's problem with a field, said of the row's cell."""
    if fact:
        if problem.startswith("unknown fact"):
            return f"`{fact}` is not a fact of this pack" + problem.removeprefix("unknown fact")
        return f"`{fact}` {problem}"
    if column == "age":
        return _plain_age(problem, cell)
    if problem.startswith("String should match pattern") and column in _WHAT:
        return f"{_quoted(cell)} is not {_WHAT[column]}"
    if column == "sex" and problem.startswith("Input should be"):
        return (f"{_quoted(cell)} is not a sex: 1 (male), 2 (female), 9 (indeterminate), "
                "0 (not known), or the word")
    at_most = _AT_MOST.fullmatch(problem)
    if at_most:
        return f"holds more than {at_most[1]} " + (
            "characters" if at_most[2] == "characters" else "codes")
    if problem == "must be a date written YYYY-MM-DD":
        return f"{_quoted(cell)} is not a date written YYYY-MM-DD"
    return problem


def _plain_age(problem: str, cell: str) -> str:
    if problem.startswith("give `age`"):
        return "is empty (give the age in whole years)"
    if problem == "Input should be a valid integer":
        return f"{_quoted(cell)} is not a whole number of years"
    bound = _AGE_BOUND.fullmatch(problem)
    if bound:
        return f"{_quoted(cell)} is {'over' if bound[1] == 'less' else 'under'} {bound[2]}"
    return problem


def row_reason(
    exc: RequestError | NotCoveredError, fields: Sequence[str], layout: Layout,
    names: Mapping[str, str] | None = None,
) -> str:
    """Why a row was rejected, in its own columns (`names`: canonical column -> the file's,
    e.g. a SUS column under a profile) and plain words."""
    def named(column: str) -> str:
        return (names or {}).get(column, column)

    if isinstance(exc, NotCoveredError):
        return f"{named('activity_date')}: {exc}"
    said = []
    for problem in exc.details:
        column, fact = _column_of(problem.field)
        at = layout.index.get(column)
        cell = fields[at] if at is not None and at < len(fields) else ""
        said.append(f"{named(column)}: {_plain(column, fact, problem.problem, cell)}")
    return "; ".join(said)


def decide_reference(
    fields: Sequence[str], layout: Layout, policy_set: PolicySet,
    names: Mapping[str, str] | None = None,
) -> Decision:
    """Decide a row through the API's own validation; raises `RowError` with the reason
    (`row_reason`: in the row's columns, `names` mapping them to the file's)."""
    try:
        return policy_set.decide(row_request(fields, layout))
    except (RequestError, NotCoveredError) as exc:
        raise RowError(row_reason(exc, fields, layout, names)) from None


def result_fields(decision: Decision) -> tuple[str, ...]:
    """The `RESULT_COLUMNS` values of a decision."""
    service, policy = decision.service, decision.policy
    return (
        decision.commissioner,
        service.id if service else "",
        service.line if service else "",
        policy.id if policy else "",
        str(policy.version) if policy else "",
        decision.eligibility,
        decision.route or "",
        "|".join(decision.missing),
        "false" if decision.unverified else "true",
    )


@dataclass(frozen=True, slots=True)
class Unreached:
    """A valid row none of whose codes reaches an identification rule: no service line.

    `RuleIndex.candidates` would return nothing for it, so `decide_activity` would answer
    `icb_core` / `not_applicable` (or `NotCoveredError` before the pack's first date); the
    caller answers that without building an `Activity` or a `Decision`.
    """

    date: dt.date


# Which RuleIndex dimensions each code list is looked up in (see RuleIndex.candidates),
# keyed by the code system the cell is normalised in ("tf": treatment function codes).
_FIELD_SYSTEMS = {"procedures": "opcs4", "diagnoses": "icd10", "drugs": "drug",
                  "treatment_function": "tf"}
_DIMENSIONS = {
    system: tuple(d for d in RuleIndex.DIMENSIONS if d.field == field)
    for field, system in _FIELD_SYSTEMS.items()
}
_Cell = tuple[tuple[str, ...], bool] | None  # (canonical codes, reaches a rule) or None: unsure


class FastRows:
    """Reads rows straight into `Activity`s, skipping pydantic, for rows it is sure about.

    In: the layout and the rule indexes of the policy sets the rows will be decided under
    (one for `pss batch`, two for `pss diff`). Out, per row: an `Activity`, an `Unreached`
    (valid, and no rule of any of those sets can match it), or None (take the reference path).
    Cells repeat a great deal in activity data, so each distinct cell is normalised and
    looked up in the indexes once.
    """

    def __init__(
        self,
        layout: Layout,
        indexes: Sequence[RuleIndex],
        fact_types: Mapping[str, VType] | None = None,
        attestations: Collection[str] = (),
    ) -> None:
        self.width = len(layout.header)
        # With the pack's vocabulary, rows with facts and attestations take the fast path too
        # when every fact and attestation is one the API would accept as given.
        self.fact_types = fact_types
        self.attestations = attestations
        self.vocabulary = (layout.index["facts"], layout.index["attestations"])
        self.pick = operator.itemgetter(*(layout.index[c] for c in COLUMNS))
        # A rule with no code test is a candidate for every row: no row is then unreached.
        self.shortcut = all(not i.unindexed for i in indexes)
        self.tables = {
            system: [(i.index[d], sorted(i.lengths[d])) for i in indexes for d in dims]
            for system, dims in _DIMENSIONS.items()
        }
        self.cells: dict[tuple[str, str, str], _Cell] = {}
        self.dates: dict[str, Unreached | None] = {}
        self.ages: dict[str, Any] = {}
        self.sexes: dict[str, Any] = {}
        self.regions: dict[str, Any] = {}
        self.icbs: dict[str, Any] = {}
        self.providers: dict[str, Any] = {}

    def _reaches(self, system: str, code: str) -> bool:
        for table, lengths in self.tables[system]:
            for n in lengths:
                if code[:n] in table:
                    return True
        return False

    def _cell(self, system: str, first: str, rest: str) -> _Cell:
        key = (system, first, rest)
        try:
            return self.cells[key]
        except KeyError:
            pass
        found: _Cell = None
        raw = ([first] if first else []) + _split(rest)
        # Subsidiary codes need a first one (procedures, diagnoses); drugs are one list.
        if not (rest and not first and system != "drug") and len(raw) <= checks.MAX_CODES:
            if system == "tf":
                found = (((first,), self._reaches(system, first))
                         if checks.TREATMENT_FUNCTION.fullmatch(first) else None)
            else:
                codes = [normalise(system, item) for item in raw]
                if None not in codes:
                    canonical = tuple(c for c in codes if c is not None)
                    found = (canonical, any(self._reaches(system, c) for c in canonical))
        if len(self.cells) < _CODE_CACHE_LIMIT:
            self.cells[key] = found
        return found

    @staticmethod
    def _date(text: str) -> Unreached | None:
        try:
            return Unreached(checks.iso_date(text))
        except ValueError:
            return None

    def read(self, fields: Sequence[str]) -> Activity | Unreached | None:
        """The row as an `Activity` or `Unreached`, or None when the reference path must run."""
        if len(fields) != self.width:
            return None
        (rid, _setting, date_s, provider, age_s, sex_s, region, icb, tf, diag1, diags, proc1,
         procs, drugs_s, facts, attestations) = self.pick(fields)  # fmt: skip
        if len(rid) > checks.MAX_REFERRAL_ID:
            return None
        if facts or attestations:
            return self._with_vocabulary(fields, facts, attestations)
        try:
            day, age, sex = self.dates[date_s], self.ages[age_s], self.sexes[sex_s]
            region_v, icb_v, provider_v = (
                self.regions[region],
                self.icbs[icb],
                self.providers[provider],
            )
        except KeyError:
            self._learn(date_s, age_s, sex_s, region, icb, provider)
            return self.read(fields)
        if day is None or _BAD in (age, sex, region_v, icb_v, provider_v):
            return None
        procedures = self._cell("opcs4", proc1, procs)
        diagnoses = self._cell("icd10", diag1, diags)
        drugs = self._cell("drug", "", drugs_s) if drugs_s else ((), False)
        tfs = self._cell("tf", tf, "") if tf else ((), False)
        if procedures is None or diagnoses is None or drugs is None or tfs is None:
            return None
        if self.shortcut and not (procedures[1] or diagnoses[1] or drugs[1] or tfs[1]):
            return day
        return Activity(
            date=day.date,
            age_months=age,
            sex=sex,
            procedures=procedures[0],
            diagnoses=diagnoses[0],
            drugs=drugs[0],
            treatment_function=tf or None,
            provider=provider_v,
            region=region_v,
            icb=icb_v,
        )

    def _with_vocabulary(
        self, fields: Sequence[str], facts: str, attestations: str
    ) -> Activity | Unreached | None:
        """A row with facts or attestations: typed as the API types them, or None if unsure."""
        if self.fact_types is None:
            return None
        try:
            raw = parse_facts(facts)
        except RowError:
            return None
        if any(name not in self.fact_types for name in raw):
            return None  # a reject: its reason (and did-you-mean) is the reference path's
        problems: list[Any] = []
        typed = typed_facts(raw, self.fact_types, problems)
        given = _split(attestations)
        if problems or len(given) > checks.MAX_CODES or any(
            a not in self.attestations for a in given
        ):
            return None
        plain = list(fields)
        plain[self.vocabulary[0]] = plain[self.vocabulary[1]] = ""
        found = self.read(plain)
        if isinstance(found, Activity):
            # Facts never change which rule matches: an unreached row stays unreached.
            return found._replace(facts=typed, attestations=frozenset(given))
        return found

    def _learn(
        self, date_s: str, age_s: str, sex_s: str, region: str, icb: str, provider: str
    ) -> None:
        """Judge each of these cells once: its value, or `_BAD` when pydantic would object."""
        caches = (self.dates, self.ages, self.sexes, self.regions, self.icbs, self.providers)
        if sum(len(c) for c in caches) > _CODE_CACHE_LIMIT:  # bounded memory: start afresh
            for cache in caches:
                cache.clear()
        self.dates[date_s] = self._date(date_s)
        # Ages in the file are whole years; the engine carries months. Length first:
        # `int()` of thousands of digits raises.
        whole = age_s.isascii() and age_s.isdigit() and len(age_s) <= 3
        self.ages[age_s] = int(age_s) * 12 if whole and checks.valid_age(int(age_s)) else _BAD
        self.sexes[sex_s] = _SEX_FAST.get(sex_s, _BAD) if sex_s else None
        self.regions[region] = _checked(checks.region, region)
        self.icbs[icb] = (icb if checks.ICB.fullmatch(icb) else _BAD) if icb else None
        self.providers[provider] = (
            (provider.upper() if checks.ODS.fullmatch(provider) else _BAD) if provider else None
        )

    def activity(self, fields: Sequence[str]) -> Activity | None:
        """The row's `Activity` (never `Unreached`), or None when the reference path must run."""
        found = self.read(fields)
        if isinstance(found, Unreached):
            shortcut, self.shortcut = self.shortcut, False
            try:
                return self.activity(fields)
            finally:
                self.shortcut = shortcut
        return found


def _checked(check: Callable[[str], Any], cell: str) -> Any:
    """The cell through one of `engine.fields`' checks: its value, None when empty, or
    `_BAD` when the API would reject it."""
    if not cell:
        return None
    try:
        return check(cell)
    except ValueError:
        return _BAD


class RowDecider:
    """Decides rows under one policy set: the fast path when sure, the API's path otherwise.

    `decide(fields)` returns the `RESULT_COLUMNS` values or raises `RowError` with the reason.
    """

    def __init__(self, policy_set: PolicySet, layout: Layout, fast: FastRows | None = None):
        self.policy_set = policy_set
        self.layout = layout
        checked = policy_set.checked
        self.fast = fast or FastRows(
            layout, [policy_set.rule_index], checked.fact_types, checked.attestations
        )
        self.covers_from = policy_set.covers_from
        # What any activity no rule can reach is decided as, asked of the engine itself.
        self.unreached = result_fields(policy_set.decide_activity(Activity(self.covers_from)))

    def decide_read(
        self, fields: Sequence[str], found: Activity | Unreached | None,
        names: Mapping[str, str] | None = None,
    ) -> tuple[str, ...]:
        """Decide a row already read by `FastRows.read`; `RowError` with the reason if bad
        (`names`: the file's name for each column, when not its own)."""
        try:
            if isinstance(found, Unreached):
                if found.date >= self.covers_from:
                    return self.unreached
                return result_fields(self.policy_set.decide_activity(Activity(found.date)))
            if found is not None:
                return result_fields(self.policy_set.decide_activity(found))
        except NotCoveredError as exc:
            raise RowError(row_reason(exc, fields, self.layout, names)) from None
        return result_fields(decide_reference(fields, self.layout, self.policy_set, names))

    def decide(
        self, fields: Sequence[str], names: Mapping[str, str] | None = None
    ) -> tuple[str, ...]:
        """The row's result columns, or `RowError` with the reason."""
        return self.decide_read(fields, self.fast.read(fields), names)
