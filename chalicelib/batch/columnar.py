"""The columnar core: an Arrow record batch of activity in, the same rows with their decision out.

In: a `pyarrow.RecordBatch` holding at least `rows.COLUMNS` (strings, or dictionary-encoded
strings as Parquet and the CSV reader give them; other columns are carried through), and a
compiled `PolicySet`. Out (`ColumnarPack.classify`): one record batch with every input column,
then `rows.RESULT_COLUMNS`, then `REASON` (null for a classified row, else why it is rejected)
and `PATH` (`columnar` or `row`: which evaluator decided it). The function is engine-neutral:
`pss batch` calls it on batches it reads, Spark calls it inside `mapInArrow`.

How: the identification rules, the commissioner lookup and the policies are compiled from
the checked AST into `pyarrow.compute` kernels over the batch's columns. Every test runs on
the distinct values of a column (dictionary-encoded: a year of activity has tens of
thousands of distinct codes, not millions) and is spread back over the rows with one `take`.
Facts and attestations are read once per distinct cell, as the API reads them
(`vocabulary.Vocabulary`), into typed columns (null where a row does not give a fact), so
policy criteria and their Kleene unknowns run column-wise; an unknown answer lists its
missing inputs column-wise too, from the engine's own compiled leaves and their needs
(`_Condition`, mirroring `CompiledCondition.missing`). A row that fails exactly one of the
core's validity checks gets its reject reason from the reference path, asked once per
distinct cell (`_reasons`). The row evaluator (`rows.RowDecider`, i.e. `PolicySet.decide`)
takes what is left: rows failing several checks, cells the core doubts but the API may
accept, numbers it cannot hold exactly, conditions it cannot express (text literals, facts
in identification rules). So the answer on every row is `decide()`'s by construction; the
differential test (tests/batch/test_columnar.py) checks it.

pyarrow is an optional extra (`pss-rules[arrow]`): this module is never imported by the API.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from chalicelib.batch.rows import (
    COLUMNS,
    RESULT_COLUMNS,
    Layout,
    RowDecider,
    RowError,
    decide_reference,
)
from chalicelib.batch.vocabulary import EPOCH, Vocabulary, column_value
from chalicelib.codes import HIERARCHICAL
from chalicelib.dsl import ast
from chalicelib.dsl.ast import LEAF_TYPES, Selector
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.compiler import Compiler, in_units
from chalicelib.dsl.typecheck import list_keys
from chalicelib.dsl.types import BUILTINS, REGIONS, UNITS
from chalicelib.engine import fields as checks
from chalicelib.engine.policy_set import PolicySet

REASON, PATH = "reject_reason", "engine_path"
LINE = "_pss_line"  # optional int64 input column: the row's line in its file, for rejects
COLUMNAR, ROW = "columnar", "row"
# A row no identification rule matches (PolicySet.decide_activity with no rule).
# Nothing it rests on is unverified: `verified` is "true" (rows.result_fields).
NO_SERVICE = ("icb_core", "", "", "", "", "not_applicable", "", "", "true")
Arr = Any  # a pyarrow array (pyarrow ships no type information)
Mask = Any  # a pyarrow BooleanArray; null means unknown (Kleene logic)

# Whitespace Python's `\s` removes from an ASCII code (normalise), spelled out for RE2.
_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_PATTERNS = {
    "icd10": "^[A-Z][0-9]{2}[0-9A-Z]{0,2}$",
    "opcs4": "^[A-Z][0-9]{2}[0-9]?$",
    "drug": "^[a-z0-9][a-z0-9 ()+/.,'-]{0,79}$",
}
_SEX = {"1": "male", "2": "female", "9": "indeterminate", "0": "unknown"}
_SEX_VALUES = {**_SEX, **{v: v for v in _SEX.values()}}
_FIRST = ("dominant_procedure", "primary_diagnosis")  # one code per cell
_FACT_ARROW = {"bool": pa.bool_(), "number": pa.float64(), "date": pa.float64()}


def positions(n: int, start: int = 0, kind: Any = None) -> Arr:
    """start, start+1, ... (n of them) as an int64 array (or `kind`), built in C: building
    one from a Python `range` costs about a microsecond per item."""
    counted = pc.indices_nonzero(pa.repeat(pa.scalar(True), n))
    numbers = pc.add(pc.cast(counted, pa.int64()), start) if start else pc.cast(counted,
                                                                                 pa.int64())
    return numbers if kind is None else pc.cast(numbers, kind)


def _dict(column: Arr) -> Arr:
    """The column as a DictionaryArray of strings (nulls read as empty cells)."""
    if (
        pa.types.is_dictionary(column.type)
        and pa.types.is_string(column.type.value_type)
        and column.null_count == 0
    ):
        return column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return pc.dictionary_encode(pc.fill_null(column.cast(pa.string()), ""))


def _canonical(values: Arr, system: str) -> tuple[Arr, Mask]:
    """Canonical codes of distinct raw values and whether `codes.normalise` surely agrees.

    Only ASCII text is taken: on it Python's and RE2's notions of case and whitespace agree
    exactly. Anything else is left to the row evaluator.
    """
    ascii_ok = pc.string_is_ascii(values)
    if system in HIERARCHICAL:
        code = pc.ascii_upper(pc.replace_substring_regex(values, f"[{_SPACE}.]+", ""))
    else:  # drug
        trimmed = pc.utf8_trim(values, characters=_SPACE)
        code = pc.ascii_lower(pc.replace_substring_regex(trimmed, f"[{_SPACE}]+", " "))
    return code, pc.and_(ascii_ok, pc.match_substring_regex(code, _PATTERNS[system]))


@dataclass(frozen=True)
class _Codes:
    """A code column's distinct cells: each cell's codes (flat, with the cell they belong to)."""

    first: bool  # a single-code cell (dominant procedure, primary diagnosis)
    flat: Arr  # canonical codes of every cell, in order
    parents: Arr  # the dictionary entry each flat code belongs to
    count: Arr  # number of codes per entry
    ok: Mask  # every code of the entry is well formed

    @classmethod
    def of(cls, dictionary: Arr, system: str, first: bool) -> _Codes:
        """Split (`|`, empty items dropped) and normalise every distinct cell."""
        n = len(dictionary)
        if first:
            parts = dictionary
            parents = positions(n, kind=pa.int32())
        else:
            lists = pc.split_pattern(dictionary, "|")
            parts = pc.list_flatten(lists)
            parents = pc.list_parent_indices(lists)
            keep = pc.not_equal(parts, "")
            parts, parents = pc.filter(parts, keep), pc.filter(parents, keep)
        non_empty = pc.not_equal(parts, "")
        codes, ok = _canonical(parts, system)
        bad_rows = pc.filter(parents, pc.invert(ok))
        ok_entry = pc.invert(pc.is_in(positions(n, kind=pa.int32()), value_set=bad_rows))
        counted = pc.filter(parents, non_empty)
        count = _count(counted, n)
        if first:  # an empty cell holds no code, not an empty code
            codes = pc.if_else(non_empty, codes, pa.scalar(None, pa.string()))
            ok_entry = pc.or_(ok_entry, pc.invert(non_empty))
        return cls(first, codes, parents, count, ok_entry)

    def member(self, matcher: _Matcher) -> Mask:
        """Per dictionary entry: does any of its codes belong to the set?"""
        hits = matcher(self.flat)
        if self.first:
            return pc.fill_null(hits, False)
        n = len(self.count)
        return pc.is_in(positions(n, kind=pa.int32()), value_set=pc.filter(self.parents, hits))


def _count(indices: Arr, n: int) -> Arr:
    """How many times each of 0..n-1 occurs in `indices`."""
    counts = [0] * n
    for i in indices.to_pylist():
        counts[i] += 1
    return pa.array(counts, pa.int32())


_Matcher = Callable[[Arr], Mask]


def _set_matcher(codeset: CodeSet) -> _Matcher:
    """Membership of canonical codes in a compiled code set (prefixes for ICD-10/OPCS-4)."""
    keys = pa.array(sorted(codeset.keys), pa.string())
    if not codeset.hierarchical:
        return lambda codes: pc.is_in(codes, value_set=keys)
    lengths = codeset.lengths

    def match(codes: Arr) -> Mask:
        found = pc.is_in(pc.utf8_slice_codeunits(codes, 0, lengths[0]), value_set=keys)
        for n in lengths[1:]:
            found = pc.or_(found, pc.is_in(pc.utf8_slice_codeunits(codes, 0, n), value_set=keys))
        return pc.if_else(pc.is_null(codes), pa.scalar(None, pa.bool_()), found)

    return match


class _Frame:
    """One batch's activity columns, read once: dictionary indices and per-entry values.

    `rows` selects the rows a later stage works on (all of them at first); `take` narrows it.
    Every per-row array is the dictionary result spread with `take(result, indices)`.
    """

    def __init__(self, columns: dict[str, Arr], covers_from: dt.date,
                 vocabulary: Vocabulary) -> None:
        self.n = len(columns["record_id"])
        self.vocabulary = vocabulary
        self.indices: dict[str, Arr] = {}
        self.dictionaries: dict[str, Arr] = {}
        for name in COLUMNS[1:]:
            if name == "setting":
                continue
            encoded = _dict(columns[name])
            self.indices[name] = encoded.indices
            self.dictionaries[name] = encoded.dictionary
        self.memo: dict[Any, Any] = {}  # per-entry arrays (code-set tests, facts), once a batch
        self.covers_from = covers_from
        systems = {"dominant_procedure": "opcs4", "other_procedures": "opcs4",
                   "primary_diagnosis": "icd10", "secondary_diagnoses": "icd10", "drugs": "drug"}
        self.codes = {
            name: _Codes.of(self.dictionaries[name], system, name in _FIRST)
            for name, system in systems.items()
        }
        self.values = self._values()
        # Each distinct facts and attestations cell, read as the API reads it (None: unsure).
        self.fact_cells = [vocabulary.facts(t) for t in self.dictionaries["facts"].to_pylist()]
        self.attested_cells = [
            vocabulary.attested(t) for t in self.dictionaries["attestations"].to_pylist()
        ]
        self.sure = self._sure(columns["record_id"])

    def spread(self, name: str, per_entry: Arr) -> Arr:
        """A per-dictionary-entry array spread over the current rows of column `name`."""
        return pc.take(per_entry, self.indices[name])

    def take(self, rows: Arr) -> None:
        """Keep only `rows` (positions among the current rows)."""
        for name, idx in self.indices.items():
            self.indices[name] = pc.take(idx, rows)
        self.n = len(rows)

    def narrowed(self, rows: Arr) -> _Frame:
        """A frame of only `rows` (positions among the current rows), sharing this one's
        per-entry arrays: a service line's policies run on its own rows only."""
        sub = copy.copy(self)
        sub.indices = {name: pc.take(idx, rows) for name, idx in self.indices.items()}
        sub.n = len(rows)
        return sub

    # --- typed values of the scalar columns, per dictionary entry -----------------------

    def _values(self) -> dict[str, tuple[Arr, Mask]]:
        """(value or null, the fast path is sure of it) per entry of each scalar column."""
        d = self.dictionaries
        out: dict[str, tuple[Arr, Mask]] = {}
        # Dates: YYYY-MM-DD that survive a round trip (strptime rolls 02-30 over to March).
        text = d["activity_date"]
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        shape = pc.match_substring_regex(text, checks.anchored(checks.ISO_DATE))
        same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
        day = pc.cast(parsed, pa.date32())
        in_pack = pc.greater_equal(day, pa.scalar(self.covers_from, pa.date32()))
        out["activity_date"] = (day, pc.fill_null(pc.and_(pc.and_(shape, same), in_pack), False))
        # Age: digits only, at most MAX_AGE (an empty age is the API's to reject).
        text = d["age"]
        digits = pc.match_substring_regex(text, "^0*[0-9]{1,3}$")
        age = pc.cast(pc.if_else(digits, text, pa.scalar(None, pa.string())), pa.int64())
        age_ok = pc.fill_null(pc.less_equal(age, checks.MAX_AGE), False)
        out["age"] = (age, age_ok)
        out["sex"] = self._mapped("sex", _SEX_VALUES)
        out["region"] = self._mapped("region", {r: r for r in REGIONS})
        out["icb"] = self._pattern("icb", checks.anchored(checks.ICB), upper=False)
        out["provider_code"] = self._pattern("provider_code", checks.anchored(checks.ODS), True)
        out["treatment_function"] = self._pattern(
            "treatment_function", checks.anchored(checks.TREATMENT_FUNCTION), False
        )
        return out

    def _mapped(self, name: str, table: dict[str, str]) -> tuple[Arr, Mask]:
        text = self.dictionaries[name]
        keys = pa.array(list(table), pa.string())
        values = pa.array(list(table.values()), pa.string())
        value = pc.take(values, pc.index_in(text, value_set=keys))
        return value, pc.or_(pc.is_valid(value), pc.equal(text, ""))

    def _pattern(self, name: str, pattern: str, upper: bool) -> tuple[Arr, Mask]:
        text = self.dictionaries[name]
        ok = pc.match_substring_regex(text, pattern)
        shown = pc.ascii_upper(text) if upper else text
        value = pc.if_else(ok, shown, pa.scalar(None, pa.string()))
        return value, pc.or_(ok, pc.equal(text, ""))

    def _sure(self, record_id: Arr) -> Mask:
        """Rows the vectorised path may decide: cells the API accepts as the core reads them.

        Each check is kept (`self.checks`: the columns it reads, rows passing it) for
        `ColumnarPack._reasons`, which gives a row failing only one its reason.
        """
        self.record_id = record_id
        length = pc.utf8_length(pc.fill_null(record_id.cast(pa.string()), ""))
        self.checks: list[tuple[tuple[str, ...], Mask]] = [
            (("record_id",), pc.less_equal(length, checks.MAX_REFERRAL_ID))]
        add = self.checks.append
        for name, cells in (("facts", self.fact_cells), ("attestations", self.attested_cells)):
            add(((name,), self.spread(name, pa.array([c is not None for c in cells],
                                                     pa.bool_()))))
        for name, (_, ok) in self.values.items():
            add(((name,), self.spread(name, ok)))
        for first, rest in (
            ("dominant_procedure", "other_procedures"),
            ("primary_diagnosis", "secondary_diagnoses"),
        ):
            a, b = self.codes[first], self.codes[rest]
            add(((first,), self.spread(first, a.ok)))
            add(((rest,), self.spread(rest, b.ok)))
            # Subsidiary codes with no first code: the API rejects the row.
            has_first = self.spread(first, pc.greater(a.count, 0))
            add(((first, rest), pc.or_(has_first, self.spread(rest, pc.equal(b.count, 0)))))
            total = pc.add(self.spread(first, a.count), self.spread(rest, b.count))
            add(((first, rest), pc.less_equal(total, checks.MAX_CODES)))
        drugs = self.codes["drugs"]
        add((("drugs",), self.spread("drugs", drugs.ok)))
        add((("drugs",), self.spread("drugs", pc.less_equal(drugs.count, checks.MAX_CODES))))
        sure = self.checks[0][1]
        for _, ok in self.checks[1:]:
            sure = pc.and_(sure, ok)
        return sure

    def single_faults(self, rows: Arr) -> tuple[Mask, Arr]:
        """Of `rows` (positions, before `take`), which fail exactly one check, and for each
        a key naming the check and the distinct cells it read."""
        failed = [pc.invert(pc.take(ok, rows)) for _, ok in self.checks]
        count = _sum(pc.cast(bad, pa.int32()) for bad in failed)
        key = _full(len(rows), 0, pa.int64())
        for k, ((cells, _), bad) in enumerate(zip(self.checks, failed, strict=True)):
            part = pa.scalar((k + 1) << 42, pa.int64())
            for shift, cell in zip((21, 0), cells, strict=False):
                if cell == "record_id":
                    continue  # its reason never repeats the value: one key for all
                entry = pc.cast(pc.take(self.indices[cell], rows), pa.int64())
                part = pc.add(part, pc.multiply(entry, 1 << shift) if shift else entry)
            key = pc.if_else(bad, pc.add(key, part), key)
        return pc.equal(count, 1), key

    def cell(self, name: str, entry: int) -> str:
        """The text of dictionary entry `entry` of column `name`."""
        value = self.dictionaries[name][entry].as_py()
        return value if isinstance(value, str) else ""

    def value(self, name: str) -> Arr:
        """Per row: the typed value of a scalar column (null when not given)."""
        return self.spread(name, self.values[name][0])

    def age_months(self) -> Arr:
        """Per row: the age in months, as `Activity.age_months` (whole years times 12)."""
        key = ("age months",)
        if key not in self.memo:
            self.memo[key] = pc.multiply(pc.cast(self.values["age"][0], pa.float64()), 12.0)
        return self.spread("age", self.memo[key])

    def day_number(self) -> Arr:
        """Per row: the decision date as days since 1970."""
        key = ("day number",)
        if key not in self.memo:
            days = pc.cast(pc.cast(self.values["activity_date"][0], pa.int32()), pa.float64())
            self.memo[key] = days
        return self.spread("activity_date", self.memo[key])

    def fact(self, name: str) -> Arr:
        """Per row: the typed fact (`vocabulary.column_value`), null when not given."""
        key = ("fact", name)
        if key not in self.memo:
            if ("facts by name",) not in self.memo:  # shared with narrowed frames
                self.memo[("facts by name",)] = self._gather_facts()
            kind = _FACT_ARROW.get(self.vocabulary.fact_types[name].kind, pa.string())
            given = self.memo[("facts by name",)].get(name)
            self.memo[key] = pa.array(given, kind) if given else pa.nulls(
                len(self.fact_cells), kind)
        return self.spread("facts", self.memo[key])

    def _gather_facts(self) -> dict[str, list[Any]]:
        """Per fact name, its value in each distinct facts cell (one pass over the cells)."""
        found: dict[str, list[Any]] = {}
        types = self.vocabulary.fact_types
        for at, cell in enumerate(self.fact_cells):
            for name, value in (cell or {}).items():
                column = found.get(name)
                if column is None:
                    column = found[name] = [None] * len(self.fact_cells)
                column[at] = column_value(value, types[name])
        return found

    def attested(self, name: str) -> Mask:
        """Per row: True when the row attests `name`, else unknown (`Compiler.leaf`)."""
        key = ("attested", name)
        if key not in self.memo:
            self.memo[key] = pa.array(
                [True if c and name in c else None for c in self.attested_cells], pa.bool_()
            )
        return self.spread("attestations", self.memo[key])


# --- conditions to kernels --------------------------------------------------------------

_Kernel = Callable[[_Frame], Mask]
_Number = Callable[[_Frame], Any]  # a float64 array, or a Python float for a constant
_COMPARE = {
    ">=": pc.greater_equal,
    "<=": pc.less_equal,
    ">": pc.greater,
    "<": pc.less,
    "==": pc.equal,
    "!=": pc.not_equal,
}
# Selector -> (code columns: first, then the rest), as `compiler._selector_test` reads them;
# the selectors themselves (and their code systems) are `ast.Selector`'s.
_CODE_SELECTORS: dict[str, tuple[str, ...]] = {
    Selector.DOMINANT_PROCEDURE: ("dominant_procedure",),
    Selector.ANY_PROCEDURE: ("dominant_procedure", "other_procedures"),
    Selector.PRIMARY_DIAGNOSIS: ("primary_diagnosis",),
    Selector.ANY_DIAGNOSIS: ("primary_diagnosis", "secondary_diagnoses"),
    Selector.ANY_DRUG: ("drugs",),
}
_VALUE_SELECTORS: dict[str, str] = {
    Selector.TREATMENT_FUNCTION: "treatment_function",
    Selector.PROVIDER: "provider_code",
    Selector.REGION: "region",
    Selector.ICB: "icb",
}
# Inputs a leaf may need that are activity columns, not facts (`compiler._ACTIVITY_NEEDS`).
_NEED_COLUMNS = {**_VALUE_SELECTORS, "sex": "sex"}
# date.min and date.max as days since 1970: where `compiler._binop` clamps a shifted date.
_FIRST_DAY = float((dt.date.min - EPOCH).days)
_LAST_DAY = float((dt.date.max - EPOCH).days)


class _ConditionCompiler:
    """Compiles conditions to kernels; None for what it cannot express.

    `compiler` is the engine's (`PolicySet.compiler`: value types and units). With `facts`
    (policies) clauses over facts and attestations read the frame's typed fact columns, null
    where a row does not give the fact, so Kleene logic gives `decide()`'s unknowns; without
    (identification rules) such clauses are not compiled and their rules take the row path.
    """

    def __init__(self, codesets: dict[str, CodeSet], compiler: Compiler,
                 facts: bool = False) -> None:
        self.codesets = codesets
        self.compiler = compiler
        self.facts = facts

    def compile(self, cond: ast.Condition) -> _Kernel | None:
        """A kernel giving the condition's Kleene value per row, or None."""
        if isinstance(cond, ast.Group):
            parts = [self.compile(item) for item in cond.items]
            if any(p is None for p in parts):
                return None
            return _group(cond.kind, cond.n, [p for p in parts if p is not None])
        if isinstance(cond, ast.Not):
            inner = self.compile(cond.operand)
            return None if inner is None else (lambda f: pc.invert(inner(f)))
        if isinstance(cond, ast.InSet) and cond.set_name in self.codesets:
            return self._selector(cond.selector, self.codesets[cond.set_name])
        if isinstance(cond, ast.InList) and cond.selector is not None:
            system, keys = list_keys(cond.selector, cond.items)
            return self._selector(cond.selector, CodeSet.build("(list)", system or "", keys))
        if isinstance(cond, ast.IsValue) and cond.name == "sex":
            test = pc.not_equal if cond.negated else pc.equal
            wanted = cond.value
            return lambda f: test(f.value("sex"), wanted)
        if isinstance(cond, ast.Compare):
            return self._compare(cond.op, cond.left, cond.right)
        if isinstance(cond, ast.Between):
            low = self._compare(">=", cond.value, cond.low)
            high = self._compare("<=", cond.value, cond.high)
            if low is None or high is None:
                return None
            return lambda f: pc.and_kleene(low(f), high(f))
        if not self.facts:
            return None  # facts and attestations in a rule: the row evaluator decides
        return self._fact_leaf(cond)

    # --- clauses over facts and attestations ------------------------------------------------

    def _fact_leaf(self, cond: ast.Condition) -> _Kernel | None:
        if isinstance(cond, ast.Known):
            known = cond.name
            if known in BUILTINS:  # never among the facts
                return lambda f: _full(f.n, False, pa.bool_())
            return lambda f: pc.is_valid(f.fact(known))
        if isinstance(cond, ast.Attested):
            attestation = cond.name
            return lambda f: f.attested(attestation)
        if isinstance(cond, ast.BoolRef) and self._kind(cond.name) == "bool":
            name = cond.name
            return lambda f: f.fact(name)
        if isinstance(cond, ast.IsValue) and cond.name not in BUILTINS:
            return self._is_value(cond)
        if isinstance(cond, ast.InList) and cond.fact is not None:
            return self._in_list(cond.fact, cond.items)
        return None

    def _is_value(self, cond: ast.IsValue) -> _Kernel | None:
        kind = self._kind(cond.name)
        wanted: Any = cond.value
        if kind == "bool":
            wanted = cond.value in ("yes", "true")
        elif kind not in ("enum", "code", "string"):
            return None
        test = pc.not_equal if cond.negated else pc.equal
        name = cond.name
        return lambda f: test(f.fact(name), pa.scalar(wanted))

    def _in_list(self, name: str, items: Sequence[str]) -> _Kernel | None:
        if name in BUILTINS or self._kind(name) not in ("enum", "code", "string"):
            return None
        values = pa.array(sorted(set(items)), pa.string())

        def listed(f: _Frame) -> Mask:
            v = f.fact(name)
            return pc.if_else(pc.is_null(v), pa.scalar(None, pa.bool_()),
                              pc.is_in(v, value_set=values))

        return listed

    def _kind(self, name: str) -> str | None:
        vtype = self.compiler.types.get(name)
        return vtype.kind if vtype is not None else None

    def _compare(self, op: str, left: ast.Value, right: ast.Value) -> _Kernel | None:
        """As `Compiler._compare`: a name against a literal in the name's own unit, else
        both sides in base units."""
        test = _COMPARE[op]
        lt, rt = self.compiler.type_of(left), self.compiler.type_of(right)
        if isinstance(left, ast.Ref) and isinstance(right, ast.Num) and lt.kind == "number":
            read = self._read(left.name)
            if read is None:
                return None
            reader, read_scale = read
            threshold = float(in_units(right, lt.scale, read_scale))
            return lambda f: _broadcast(f, test(reader(f), threshold))
        lf = self._value(left, rt.scale if lt.dim is None else 1)
        rf = self._value(right, lt.scale if rt.dim is None else 1)
        if lf is None or rf is None:
            return None
        return lambda f: _broadcast(f, test(lf(f), rf(f)))

    def _read(self, name: str) -> tuple[_Number, float] | None:
        """A number name's reader and the scale of what it reads (`Compiler._reader`)."""
        if name == "age":
            return (lambda f: f.age_months()), 1
        vtype = self.compiler.types.get(name)
        if not self.facts or name in BUILTINS or vtype is None or vtype.kind != "number":
            return None
        return (lambda f: f.fact(name)), vtype.scale

    def _value(self, value: ast.Value, adopt: float = 1) -> _Number | None:
        """As `Compiler.value`: a number (or a date, as days since 1970) in base units."""
        if isinstance(value, ast.Num):
            constant = float(value.value) * (UNITS[value.unit][1] if value.unit else adopt)
            return lambda f: constant
        if isinstance(value, ast.DateLit):
            day = float((value.value - EPOCH).days)
            return lambda f: day
        if isinstance(value, ast.Ref):
            if value.name == "decision_date":
                return lambda f: f.day_number()
            if self.facts and value.name != "age" and self._kind(value.name) == "date":
                name = value.name
                return lambda f: f.fact(name)
            read = self._read(value.name)
            if read is None:
                return None
            reader, scale = read
            if scale == 1:
                return reader
            return lambda f: pc.multiply(reader(f), float(scale))
        if isinstance(value, ast.BinOp):
            return self._binop(value, adopt)
        return None  # a text literal: the row evaluator

    def _binop(self, value: ast.BinOp, adopt: float) -> _Number | None:
        lt, rt = self.compiler.type_of(value.left), self.compiler.type_of(value.right)
        lf = self._value(value.left, rt.scale if lt.dim is None else adopt)
        rf = self._value(value.right, lt.scale if rt.dim is None else adopt)
        if lf is None or rf is None:
            return None
        if lt.kind == "date" and rt.kind == "date":
            return lambda f: pc.subtract(lf(f), rf(f))
        if lt.kind == "date":
            sign = 1.0 if value.op == "+" else -1.0

            def shift(f: _Frame) -> Any:
                # x + timedelta(days=sign * round(y)), clamped to the calendar as Python's
                # OverflowError is (the far past or future still compares right).
                days = pc.round(pc.multiply(pc.cast(rf(f), pa.float64()), sign),
                                round_mode="half_to_even")
                moved = pc.add(lf(f), days)
                return pc.max_element_wise(pc.min_element_wise(moved, _LAST_DAY), _FIRST_DAY)

            return shift
        combine_op = pc.add if value.op == "+" else pc.subtract
        return lambda f: combine_op(lf(f), rf(f))

    # --- code and value selectors -----------------------------------------------------------

    @staticmethod
    def _selector(selector: str, codeset: CodeSet) -> _Kernel | None:
        matcher = _set_matcher(codeset)
        if selector in _CODE_SELECTORS:
            columns = _CODE_SELECTORS[selector]
            key = id(matcher)  # lives as long as the compiled pack

            def codes(f: _Frame) -> Mask:
                # Per-entry membership depends only on the batch's dictionaries: once a batch.
                if key not in f.memo:
                    f.memo[key] = [f.codes[c].member(matcher) for c in columns]
                parts = [f.spread(c, m) for c, m in zip(columns, f.memo[key], strict=True)]
                return parts[0] if len(parts) == 1 else pc.or_(parts[0], parts[1])

            return codes
        if selector in _VALUE_SELECTORS:
            column = _VALUE_SELECTORS[selector]
            keys = pa.array(sorted(codeset.keys), pa.string())

            def value(f: _Frame) -> Mask:
                entries = f.values[column][0]
                found = pc.is_in(entries, value_set=keys)
                return f.spread(column, pc.if_else(pc.is_null(entries), None, found))

            return value
        return None


def _broadcast(f: _Frame, value: Any) -> Mask:
    """A comparison's answer per row (two constants compare to one scalar)."""
    if isinstance(value, pa.Scalar):
        return _full(f.n, value.as_py(), pa.bool_())
    return value


def _true(mask: Mask) -> Mask:
    return pc.fill_null(mask, False)


def _false(mask: Mask) -> Mask:
    return pc.fill_null(pc.invert(mask), False)


def _group(kind: str, n: int, parts: list[_Kernel]) -> _Kernel:
    """Kleene all/any, exactly one, at least n (kleene.combine, column-wise)."""
    if kind in ("all", "any"):
        combine = pc.and_kleene if kind == "all" else pc.or_kleene

        def lazy(f: _Frame) -> Mask:
            value = parts[0](f)
            for part in parts[1:]:
                value = combine(value, part(f))
            return value

        return lazy
    return lambda f: _counted(kind, n, [p(f) for p in parts])


def _counted(kind: str, n: int, values: list[Mask]) -> Mask:
    """`kleene.counted` column-wise: decided only when the unknowns cannot change it."""
    true = _sum(pc.cast(pc.fill_null(v, False), pa.int32()) for v in values)
    unknown = _sum(pc.cast(pc.is_null(v), pa.int32()) for v in values)
    if kind == "exactly_one":
        yes = pc.and_(pc.equal(true, 1), pc.equal(unknown, 0))
        no = pc.or_(pc.greater(true, 1), pc.and_(pc.equal(true, 0), pc.equal(unknown, 0)))
    else:
        yes = pc.greater_equal(true, n)
        no = pc.less(pc.add(true, unknown), n)
    # True when `yes`, else False when `no`, else unknown.
    return pc.if_else(yes, True, pc.if_else(no, False, pa.scalar(None, pa.bool_())))


def _sum(arrays: Iterable[Arr]) -> Arr:
    total = None
    for a in arrays:
        total = a if total is None else pc.add(total, a)
    return total


# --- a policy condition with its missing inputs -----------------------------------------


@dataclass(frozen=True)
class _Node:
    """A condition's shape over its leaves, as `Compiler._shape` builds it."""

    kind: str  # "leaf", "not", or a group kind
    n: int = 0
    children: tuple[_Node, ...] = ()
    leaf: int = -1


@dataclass(frozen=True)
class _Needs:
    """One input a leaf needs: its name as `missing` lists it, and how a row lacks it."""

    name: str
    attestation: str | None = None
    column: str | None = None  # an activity column
    fact: str | None = None


class _Condition:
    """A policy condition column-wise: its value per row and, where unknown, what it waits
    for (`CompiledCondition.missing`, from the engine's own leaves and their needs)."""

    MAX_NEEDS = 62  # (leaf, input) pairs that fit one int64 key per row

    def __init__(self, shape: _Node, leaves: list[_Kernel], needs: list[tuple[_Needs, ...]]):
        self.shape = shape
        self.leaves = leaves
        self.needs = needs
        self.pairs = [(i, need) for i, leaf_needs in enumerate(needs) for need in leaf_needs]
        self.can_list = len(self.pairs) <= self.MAX_NEEDS

    @classmethod
    def build(cls, decl: ast.Condition, evaluator: Any,
              compiler: _ConditionCompiler) -> _Condition | None:
        """From the checked condition and the engine's compiled one; None when either part
        cannot be followed column-wise."""
        clauses: list[ast.Condition] = []
        shape = _shape(decl, clauses)
        engine_leaves = tuple(getattr(evaluator, "leaves", ()))
        if len(engine_leaves) != len(clauses) or any(
            getattr(leaf, "clause", None) is not clause
            for leaf, clause in zip(engine_leaves, clauses, strict=True)
        ):
            return None
        kernels = [compiler.compile(c) for c in clauses]
        needs = [_leaf_needs(leaf.needs, compiler) for leaf in engine_leaves]
        if any(k is None for k in kernels) or any(n is None for n in needs):
            return None
        return cls(shape, [k for k in kernels if k is not None],
                   [n for n in needs if n is not None])

    def evaluate(self, f: _Frame) -> tuple[Mask, dict[int, Mask]]:
        """The value per row, and every node's value (by id) for `missing`."""
        values: dict[int, Mask] = {}
        return self._eval(self.shape, f, values), values

    def _eval(self, node: _Node, f: _Frame, values: dict[int, Mask]) -> Mask:
        if node.kind == "leaf":
            value = self.leaves[node.leaf](f)
        elif node.kind == "not":
            value = pc.invert(self._eval(node.children[0], f, values))
        else:
            parts = [self._eval(c, f, values) for c in node.children]
            if node.kind in ("all", "any"):
                combine = pc.and_kleene if node.kind == "all" else pc.or_kleene
                value = parts[0]
                for part in parts[1:]:
                    value = combine(value, part)
            else:
                value = _counted(node.kind, node.n, parts)
        values[id(node)] = value
        return value

    def missing(self, f: _Frame, values: dict[int, Mask]) -> Arr:
        """Per row, the `|`-joined inputs an unknown value waits for (rows whose value is
        unknown only; others get whatever their unknown leaves would list)."""
        under: dict[int, Mask] = {}
        self._under(self.shape, _full(f.n, True, pa.bool_()), values, under, root=True)
        key = _full(f.n, 0, pa.int64())
        for bit, (leaf, need) in enumerate(self.pairs):
            hit = pc.and_(under[leaf], _lacks(f, need))
            key = pc.if_else(hit, pc.add(key, 1 << bit), key)
        encoded = pc.dictionary_encode(key)
        texts = []
        for k in encoded.dictionary.to_pylist():
            names = [need.name for bit, (_, need) in enumerate(self.pairs) if k >> bit & 1]
            texts.append("|".join(dict.fromkeys(names)))
        return pc.take(pa.array(texts, pa.string()), encoded.indices)

    def _under(self, node: _Node, path: Mask, values: dict[int, Mask],
               under: dict[int, Mask], root: bool = False) -> None:
        """`path`: rows where every node above is unknown (the walk descends there)."""
        if node.kind == "leaf":
            # The root leaf lists its inputs whatever; a lower one only when unknown.
            under[node.leaf] = path if root else pc.and_(path, pc.is_null(values[id(node)]))
            return
        here = path if root else pc.and_(path, pc.is_null(values[id(node)]))
        for child in node.children:
            self._under(child, here, values, under)


def _shape(cond: ast.Condition, clauses: list[ast.Condition]) -> _Node:
    """`Compiler._shape`: `not` over one clause is one clause; leaves numbered depth-first."""
    if isinstance(cond, ast.Group):
        children = tuple(_shape(item, clauses) for item in cond.items)
        return _Node(cond.kind, cond.n, children)
    if isinstance(cond, ast.Not) and not isinstance(cond.operand, LEAF_TYPES):
        return _Node("not", children=(_shape(cond.operand, clauses),))
    clauses.append(cond)
    return _Node("leaf", leaf=len(clauses) - 1)


def _leaf_needs(needs: tuple[str, ...], compiler: _ConditionCompiler) -> tuple[_Needs, ...] | None:
    """A leaf's needs (`compiler._absent`'s reading of them), or None if one is unknown."""
    out = []
    for name in needs:
        if name.startswith("@"):
            out.append(_Needs(name[1:], attestation=name[1:]))
        elif name in _NEED_COLUMNS:
            out.append(_Needs(name, column=_NEED_COLUMNS[name]))
        elif compiler._kind(name) is not None and name not in BUILTINS:
            out.append(_Needs(name, fact=name))
        else:
            return None
    return tuple(out)


def _lacks(f: _Frame, need: _Needs) -> Mask:
    """Rows that do not give `need`."""
    if need.attestation is not None:
        return pc.is_null(f.attested(need.attestation))
    if need.column is not None:
        return pc.is_null(f.value(need.column))
    assert need.fact is not None
    return pc.is_null(f.fact(need.fact))


# --- the pack, compiled --------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """What the vectorised path needs of one service line: service, commissioners, policies."""

    code: str
    service_id: str
    entries: tuple[ast.CommissionerEntry, ...]  # best first: latest start, scoped before not
    policies: tuple[_Policy, ...]


@dataclass(frozen=True)
class _Policy:
    """A policy version as the vectorised path runs it."""

    start: dt.date
    end: dt.date
    applies: _Condition | None  # None: applies to every activity of its lines
    criteria: _Condition | None  # None: no criteria, the met outcome
    supported: bool  # both conditions compiled (else its rows take the row path)
    met: tuple[str, str, str, str]  # (policy id, version, eligibility, route)
    not_met: tuple[str, str, str, str]
    decl: ast.PolicyDecl


@dataclass
class BatchCounts:
    """Rows per evaluator in one batch."""

    columnar: int = 0
    row: int = 0


class ColumnarPack:
    """A policy set compiled for record batches (built once; cloudpickle ships it to Spark)."""

    def __init__(self, policy_set: PolicySet) -> None:
        self.policy_set = policy_set
        checked = policy_set.checked
        self.covers_from = policy_set.covers_from
        self.vocabulary = Vocabulary(checked.fact_types, checked.attestations)
        compiler = _ConditionCompiler(checked.codesets, policy_set.compiler)
        self.rules = [compiler.compile(r.decl.when) for r in policy_set.rule_index.rules]
        self.rule_lines = [r.decl.line for r in policy_set.rule_index.rules]
        self.vectorised_rules = sum(k is not None for k in self.rules)
        self.lines = {code: self._line(code) for code in dict.fromkeys(self.rule_lines)}
        index = policy_set.rule_index
        # Rows none of whose codes reach a rule skip the rules (RuleIndex.candidates' test);
        # only possible when every rule is filed under a code.
        self.reach: dict[str, CodeSet] | None = None
        if not index.unindexed:
            self.reach = {
                d: CodeSet(d, _DIM_SYSTEM[d], frozenset(index.index[d]), tuple(sorted(
                    index.lengths[d])))
                for d in index.index
                if index.index[d]
            }
        self._decider: RowDecider | None = None

    def _line(self, code: str) -> _Line:
        service = self.policy_set.checked.line_service[code]
        # Best first, the order `PolicySet._entry_in_force_uncached` prefers: latest start,
        # then scoped; among equals the first written (a stable sort).
        entries = _stable_desc(service.commissioners)
        policies = []
        compiler = _ConditionCompiler(self.policy_set.checked.codesets, self.policy_set.compiler,
                                      facts=True)
        for policy in self.policy_set.by_line.get(code, ()):
            decl, info = policy.decl, policy.info
            applies = _Condition.build(decl.applies, policy.applies, compiler) if (
                decl.applies) else None
            criteria = _Condition.build(decl.criteria, policy.criteria, compiler) if (
                decl.criteria) else None
            supported = (decl.applies is None or applies is not None) and (
                decl.criteria is None or criteria is not None
            )
            met = decl.met or ast.Outcome("eligible")
            failed = decl.not_met or ast.Outcome("not_eligible")
            policies.append(_Policy(
                policy.start, policy.end, applies, criteria, supported,
                (info.id, str(info.version), met.eligibility, met.route or ""),
                (info.id, str(info.version), failed.eligibility, failed.route or ""),
                decl,
            ))
        return _Line(code, service.id, tuple(entries), tuple(policies))

    @property
    def decider(self) -> RowDecider:
        """The row evaluator over the canonical column order (built on first use)."""
        if self._decider is None:
            self._decider = RowDecider(self.policy_set, Layout.from_header(COLUMNS))
        return self._decider

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_decider"] = None
        return state


    # --- classification ---------------------------------------------------------------------

    def classify(
        self, batch: pa.RecordBatch, encoded: bool = False,
        names: Mapping[str, str] | None = None,
    ) -> pa.RecordBatch:
        """Every row of `batch` with its result columns, `REASON` and `PATH`.

        `encoded`: the result columns come dictionary-encoded (a handful of distinct values
        over many rows: cheaper to filter, ship between processes and write); else plain text.
        `names`: the file's name of each column, for reject reasons (a SUS profile's).
        """
        n = batch.num_rows
        missing = [c for c in COLUMNS if c not in batch.schema.names]
        if missing:
            raise ValueError("missing column(s): " + ", ".join(missing))
        if n == 0:
            return _assemble(batch, [], pa.array([], pa.int32()), pa.array([], pa.string()),
                             pa.array([], pa.string()), encoded)
        columns = {c: batch.column(c) for c in COLUMNS}
        frame = _Frame(columns, self.covers_from, self.vocabulary)
        table: list[tuple[str, ...]] = [NO_SERVICE]
        outcome = _full(n, 0, pa.int32())
        sure = frame.sure
        fallback = pc.invert(sure)
        unsure = pc.indices_nonzero(pc.invert(sure))
        # Keys pack two dictionary entries in 21 bits each: larger batches take the row path.
        small = all(len(d) <= _ENTRY for d in frame.dictionaries.values())
        faults = frame.single_faults(unsure) if len(unsure) and small else None
        chosen = sure if self.reach is None else pc.and_(sure, self._reaches(frame))
        candidates = pc.indices_nonzero(chosen)
        if len(candidates):
            frame.take(candidates)
            ids, sub_fallback = self._decide_rows(frame, table)
            outcome = pc.replace_with_mask(outcome, chosen, ids.cast(pa.int32()))
            fallback = pc.or_(fallback, _spread_mask(chosen, sub_fallback))
        reasons = pa.nulls(n, pa.string())
        if faults is not None:  # rows failing one check: their reason, once per cell
            reasons = self._reasons(frame, unsure, faults[0], faults[1], n, names)
            fallback = pc.and_(fallback, pc.is_null(reasons))
            outcome = pc.if_else(pc.is_valid(reasons), pa.scalar(None, pa.int32()), outcome)
        if pc.any(fallback).as_py():
            outcome, found = self._row_path(batch, fallback, outcome, table, names)
            reasons = pc.if_else(fallback, found, reasons)
        if encoded:
            path = pa.DictionaryArray.from_arrays(pc.cast(fallback, pa.int32()),
                                                  pa.array([COLUMNAR, ROW]))
        else:
            path = pc.if_else(fallback, ROW, COLUMNAR)
        return _assemble(batch, table, outcome, reasons, path, encoded)

    def _reaches(self, frame: _Frame) -> Mask:
        """Rows one of whose codes is filed under some rule (before `take`)."""
        assert self.reach is not None
        found = _full(frame.n, False, pa.bool_())
        for dimension, keys in self.reach.items():
            matcher = _set_matcher(keys)
            if dimension == Selector.TREATMENT_FUNCTION:
                entries = frame.values["treatment_function"][0]
                hit = pc.fill_null(pc.is_in(entries, value_set=pa.array(sorted(keys.keys))), False)
                found = pc.or_(found, frame.spread("treatment_function", hit))
                continue
            for column in _DIM_COLUMNS[dimension]:
                hit = frame.codes[column].member(matcher)
                found = pc.or_(found, frame.spread(column, hit))
        return found

    def _decide_rows(self, frame: _Frame, table: list[tuple[str, ...]]) -> tuple[Arr, Mask]:
        """Outcome ids (into `table`) for the frame's rows, and which need the row path."""
        winner = _full(frame.n, -1, pa.int32())  # -1: no rule, -2: row path
        for position in range(len(self.rules) - 1, -1, -1):
            kernel = self.rules[position]
            if kernel is None:  # a rule this module cannot express: from here, the row path
                winner = pc.if_else(pc.equal(winner, -1), -2, winner)
                continue
            fires = pc.fill_null(kernel(frame), False)
            winner = pc.if_else(fires, position, winner)
        fallback = pc.equal(winner, -2)
        ids = _full(frame.n, 0, pa.int32())
        for position in pc.unique(winner).to_pylist():
            if position < 0:
                continue
            mask = pc.equal(winner, position)
            line = self.lines[self.rule_lines[position]]
            sub_ids, sub_fallback = self._line_outcomes(
                position, line, frame, pc.indices_nonzero(mask), table
            )
            ids = pc.replace_with_mask(ids, mask, sub_ids.cast(pa.int32()))
            fallback = pc.or_(fallback, _spread_mask(mask, sub_fallback))
        return ids, fallback

    def _result(self, position: int, line: _Line, at: int, which: int,
                missing: str) -> tuple[str, ...]:
        """The result columns for rule `position`, commissioner entry `at`, policy code
        `which` (`_policies`) and, for an incomplete answer, what it waits for."""
        entry = line.entries[at] if at >= 0 else None
        who = entry.outcome if entry else "icb_core"
        chosen = line.policies[which // 3] if which >= 0 else None
        checked = self.policy_set.checked
        rests_on = self.policy_set.provenance.rests_on(
            self.policy_set.rule_index.rules[position].decl, checked.line_service[line.code],
            checked.lines[line.code], entry, chosen.decl if chosen else None,
        )
        verified = "true" if all(item.verified for item in rests_on) else "false"
        if chosen is None:
            return (who, line.service_id, line.code, "", "", "not_applicable", "", "", verified)
        if which % 3 == 2:
            pid, version = chosen.met[:2]
            return (who, line.service_id, line.code, pid, version, "incomplete", "", missing,
                    verified)
        pid, version, eligibility, route = chosen.not_met if which % 3 else chosen.met
        return (who, line.service_id, line.code, pid, version, eligibility, route, "", verified)

    def _line_outcomes(
        self, position: int, line: _Line, frame: _Frame, rows: Arr,
        table: list[tuple[str, ...]],
    ) -> tuple[Arr, Mask]:
        """Commissioner and policy outcome for rows identified by rule `position`."""
        frame = frame.narrowed(rows)
        day = frame.value("activity_date")
        region = frame.value("region")
        icb = frame.value("icb")
        # The commissioner entry in force (its index among `line.entries`; -1: none).
        entry_at = _full(len(rows), -1, pa.int32())
        for j in range(len(line.entries) - 1, -1, -1):  # best last: it overrides
            entry = line.entries[j]
            applies = pc.less_equal(pa.scalar(entry.start, pa.date32()), day)
            if entry.scope_kind is not None:
                scope = region if entry.scope_kind == "region" else icb
                inside = pc.fill_null(pc.is_in(scope, value_set=pa.array(entry.scope_values)),
                                      False)
                applies = pc.and_(applies, inside)
            entry_at = pc.if_else(applies, j, entry_at)
        policy, missing = self._policies(line, frame, day)
        fallback = pc.equal(policy, -2)
        # One small table row per distinct (commissioner entry, policy, missing) here.
        waits = pc.dictionary_encode(missing)
        waits_at = pc.fill_null(pc.cast(waits.indices, pa.int64()), -1)
        key = pc.add(pc.multiply(pc.cast(pc.add(entry_at, 1), pa.int64()), 1 << 40),
                     pc.add(pc.multiply(pc.cast(pc.add(policy, 2), pa.int64()), 1 << 20),
                            pc.add(waits_at, 1)))
        encoded = pc.dictionary_encode(key)
        base = len(table)
        texts = waits.dictionary.to_pylist()
        for k in encoded.dictionary.to_pylist():
            at, which, wait = (k >> 40) - 1, ((k >> 20) & 0xFFFFF) - 2, (k & 0xFFFFF) - 1
            table.append(self._result(position, line, at, which, texts[wait] if wait >= 0
                                      else ""))
        ids = pc.add(pc.cast(encoded.indices, pa.int32()), base)
        return ids, fallback

    @staticmethod
    def _policies(line: _Line, frame: _Frame, day: Arr) -> tuple[Arr, Arr]:
        """Per row: 3i (policy i met), 3i+1 (not met), 3i+2 (incomplete), -1 (none applies),
        -2 (row path); and for an incomplete answer the inputs it waits for.

        As `PolicySet._select_policy` then `_apply`: the first policy in force whose
        applicability is not false answers; an unknown applicability or unknown criteria
        answer `incomplete` with the missing inputs of that condition.
        """
        n = frame.n
        code = _full(n, -1, pa.int32())
        waits = pa.nulls(n, pa.string())
        choosing = _full(n, True, pa.bool_())
        for i, policy in enumerate(line.policies):
            in_force = pc.and_(pc.less_equal(pa.scalar(policy.start, pa.date32()), day),
                               pc.less_equal(day, pa.scalar(policy.end, pa.date32())))
            here = pc.and_(choosing, in_force)
            if not pc.any(here).as_py():
                continue
            if not policy.supported:
                code = pc.if_else(here, -2, code)
                choosing = pc.and_(choosing, pc.invert(here))
                continue
            if policy.applies is None:
                applies = _full(n, True, pa.bool_())
            else:
                applies, state = policy.applies.evaluate(frame)
                unknown = pc.and_(here, pc.is_null(applies))
                code, waits = _incomplete(policy.applies, frame, state, unknown, 3 * i + 2,
                                          code, waits)
            taken = pc.and_(here, pc.invert(_false(applies)))
            yes = pc.and_(here, _true(applies))
            if policy.criteria is None:
                code = pc.if_else(yes, 3 * i, code)
            else:
                met, state = policy.criteria.evaluate(frame)
                code = pc.if_else(pc.and_(yes, _true(met)), 3 * i, code)
                code = pc.if_else(pc.and_(yes, _false(met)), 3 * i + 1, code)
                unknown = pc.and_(yes, pc.is_null(met))
                code, waits = _incomplete(policy.criteria, frame, state, unknown, 3 * i + 2,
                                          code, waits)
            choosing = pc.and_(choosing, pc.invert(taken))
        return code, waits

    def _reasons(
        self, frame: _Frame, unsure: Arr, single: Mask, key: Arr, n: int,
        names: Mapping[str, str] | None,
    ) -> Arr:
        """Per row: the reject reason of a row failing one check, else null.

        The reason depends only on the cells that check reads (the row's other cells are
        valid), so it is asked of the reference path once per distinct cells, on an
        otherwise valid row; None when the reference does not reject that row (the check
        was the core's doubt, not the API's objection: the row takes the row path).
        """
        rows = pc.filter(unsure, single)  # positions in the batch
        if not len(rows):
            return pa.nulls(n, pa.string())
        keys = pc.filter(key, single)
        encoded = pc.dictionary_encode(keys)
        first_row: dict[int, int] = {}
        for at, k in zip(rows.to_pylist(), keys.to_pylist(), strict=True):
            first_row.setdefault(k, at)
        texts = [self._reason_of(frame, k, first_row[k], names)
                 for k in encoded.dictionary.to_pylist()]
        found = pc.take(pa.array(texts, pa.string()), encoded.indices)
        where = pc.is_in(positions(n), value_set=pc.cast(rows, pa.int64()))
        return pc.replace_with_mask(pa.nulls(n, pa.string()), where, found)

    def _reason_of(self, frame: _Frame, key: int, row: int,
                   names: Mapping[str, str] | None) -> str | None:
        cells, _ = frame.checks[(key >> 42) - 1]
        entries = ((key >> 21) & _ENTRY, key & _ENTRY)
        fields = dict(_TEMPLATE, activity_date=self.covers_from.isoformat())
        for name, entry in zip(cells, entries, strict=False):
            if name == "record_id":
                fields[name] = frame.record_id[row].as_py() or ""
            else:
                fields[name] = frame.cell(name, entry)
                if name in _FIRST_CODE and _FIRST_CODE[name][0] not in cells:
                    first, code = _FIRST_CODE[name]  # a subsidiary list needs a first code
                    fields[first] = code
        try:
            decide_reference([fields[c] for c in COLUMNS], self.decider.layout,
                             self.policy_set, names)
        except RowError as exc:
            return str(exc)
        return None

    def _row_path(
        self, batch: pa.RecordBatch, mask: Mask, outcome: Arr, table: list[tuple[str, ...]],
        names: Mapping[str, str] | None,
    ) -> tuple[Arr, Arr]:
        """Decide the rows of `mask` one by one with the row evaluator (the API's path)."""
        rows = pc.indices_nonzero(mask)
        picked = [
            pc.fill_null(pc.take(batch.column(c), rows).cast(pa.string()), "").to_pylist()
            for c in COLUMNS
        ]
        seen: dict[tuple[str, ...], int] = {}
        ids: list[int | None] = []
        reasons: list[str | None] = []
        decide = self.decider.decide
        for fields in zip(*picked, strict=True):
            try:
                result = decide(list(fields), names)
            except RowError as exc:
                reasons.append(str(exc))
                ids.append(None)
                continue
            if result not in seen:
                seen[result] = len(table)
                table.append(result)
            ids.append(seen[result])
            reasons.append(None)
        outcome = pc.replace_with_mask(outcome, mask, pa.array(ids, pa.int32()))
        n = len(mask)
        return outcome, pc.replace_with_mask(pa.nulls(n, pa.string()), mask,
                                             pa.array(reasons, pa.string()))


# The otherwise valid row a one-check reject's cells are put in (`_reasons`).
_TEMPLATE = {**dict.fromkeys(COLUMNS, ""), "age": "40"}
_FIRST_CODE = {"other_procedures": ("dominant_procedure", "A01"),
               "secondary_diagnoses": ("primary_diagnosis", "A00")}
_ENTRY = (1 << 21) - 1

# The code index's dimensions and the system their keys are in (treatment function codes,
# which `Selector` reads as plain values, are `tf` here as in `rows.py`).
_DIM_SYSTEM: dict[str, str] = {
    s: s.system or "tf" for s in map(Selector, (*_CODE_SELECTORS, Selector.TREATMENT_FUNCTION))}
_DIM_COLUMNS = {d: _CODE_SELECTORS.get(d, ()) for d in _DIM_SYSTEM}


def _incomplete(
    condition: _Condition, frame: _Frame, state: dict[int, Mask], unknown: Mask,
    which: int, code: Arr, waits: Arr,
) -> tuple[Arr, Arr]:
    """Mark the `unknown` rows incomplete (`which`) with what `condition` waits for; when
    it cannot list them column-wise, the row path."""
    if not pc.any(unknown).as_py():
        return code, waits
    if not condition.can_list:
        return pc.if_else(unknown, -2, code), waits
    listed = condition.missing(frame, state)
    return pc.if_else(unknown, which, code), pc.if_else(unknown, listed, waits)


def _stable_desc(entries: Sequence[ast.CommissionerEntry]) -> list[ast.CommissionerEntry]:
    """Best first; among equal keys the first written stays first (as `best` keeps it)."""
    keyed = sorted(
        range(len(entries)),
        key=lambda i: ((entries[i].start, entries[i].scope_kind is not None), -i),
        reverse=True,
    )
    return [entries[i] for i in keyed]


def _full(n: int, value: Any, kind: Any) -> Arr:
    """An array of n copies of `value`."""
    return pa.repeat(pa.scalar(value, kind), n)


def _spread_mask(where: Mask, values: Mask) -> Mask:
    """A mask as long as `where`: `values` in order at its True positions, False elsewhere."""
    return pc.replace_with_mask(_full(len(where), False, pa.bool_()), where, values)


def _assemble(
    batch: pa.RecordBatch, table: list[tuple[str, ...]], outcome: Arr, reasons: Arr, path: Arr,
    encoded: bool,
) -> pa.RecordBatch:
    """Input columns, result columns (taken from the outcome table), reason, path."""
    arrays = list(batch.columns)
    names = list(batch.schema.names)
    for i, name in enumerate(RESULT_COLUMNS):
        values = pa.array([row[i] for row in table], pa.string())
        if not len(table):
            arrays.append(pa.array([], pa.string()))
        elif encoded:
            arrays.append(pa.DictionaryArray.from_arrays(outcome.cast(pa.int32()), values))
        else:
            arrays.append(pc.take(values, outcome))
        names.append(name)
    return pa.RecordBatch.from_arrays([*arrays, reasons, path], names=[*names, REASON, PATH])


__all__ = ["COLUMNAR", "LINE", "PATH", "REASON", "ROW", "BatchCounts", "ColumnarPack",
           "positions"]
