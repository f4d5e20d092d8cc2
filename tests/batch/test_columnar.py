"""The columnar core decides every row exactly as `PolicySet.decide` does (differential test).

The reference for a row is the API's own path: `row_request` turns it into the request JSON,
`PolicySet.decide` validates and decides it. The columnar answer (result columns, or the
reject reason) must equal it on every row: the national pack's golden referrals written as
rows, synthetic activity, and hypothesis-generated rows mixing real codes of the pack with the
cells real extracts get wrong.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pyarrow as pa  # the `arrow` extra: `make install` installs it
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import load_policy_set
from chalicelib.batch.columnar import COLUMNAR, PATH, REASON, ROW, ColumnarPack
from chalicelib.batch.rows import (
    COLUMNS,
    RESULT_COLUMNS,
    Layout,
    RowError,
    decide_reference,
    result_fields,
)
from chalicelib.engine.policy_set import PolicySet
from pss_dev.synth import generate
from tests.conftest import fixed_clock
from tests.pack.make_golden import GOLDEN, POLICIES

LAYOUT = Layout.from_header(COLUMNS)


@pytest.fixture(scope="module")
def national() -> PolicySet:
    return load_policy_set(POLICIES, fixed_clock)


@pytest.fixture(scope="module")
def columnar(national: PolicySet) -> ColumnarPack:
    return ColumnarPack(national)


def reference(policy_set: PolicySet, fields: list[str]) -> tuple[str, ...] | str:
    """The API's answer for a row: its result columns, or the reject reason."""
    try:
        return result_fields(decide_reference(fields, LAYOUT, policy_set))
    except RowError as exc:
        return str(exc)


def batch_of(rows: list[list[str]]) -> Any:
    return pa.RecordBatch.from_arrays(
        [pa.array([r[i] for r in rows], pa.string()) for i in range(len(COLUMNS))],
        names=list(COLUMNS),
    )


def answers(pack: ColumnarPack, rows: list[list[str]]) -> tuple[list[tuple[str, ...] | str], Counter[str]]:
    decided = pack.classify(batch_of(rows))
    assert decided.num_rows == len(rows)
    out: list[tuple[str, ...] | str] = []
    for row in decided.to_pylist():
        reason = row[REASON]
        out.append(reason if reason is not None else tuple(row[c] for c in RESULT_COLUMNS))
    return out, Counter(decided.column(PATH).to_pylist())


def assert_same(pack: ColumnarPack, policy_set: PolicySet, rows: list[list[str]]) -> Counter[str]:
    got, paths = answers(pack, rows)
    for fields, mine in zip(rows, got, strict=True):
        assert mine == reference(policy_set, fields), fields
    return paths


def _fact_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def golden_row(request: dict[str, Any]) -> list[str]:
    """A golden referral written as an activity row (the inverse of `row_request`)."""
    patient = request.get("patient", {})
    procedures, diagnoses = request.get("procedures", []), request.get("diagnoses", [])
    cells = {
        "record_id": request.get("referral_id", ""),
        "setting": "APC",
        "activity_date": request["date"],
        "provider_code": (request.get("provider") or {}).get("ods_code", ""),
        "age": str(patient.get("age", "")),
        "sex": patient.get("sex", ""),
        "region": patient.get("region", ""),
        "icb": patient.get("icb", ""),
        "treatment_function": request.get("treatment_function", ""),
        "primary_diagnosis": diagnoses[0] if diagnoses else "",
        "secondary_diagnoses": "|".join(diagnoses[1:]),
        "dominant_procedure": procedures[0] if procedures else "",
        "other_procedures": "|".join(procedures[1:]),
        "drugs": "|".join(request.get("drugs", [])),
        "facts": ";".join(f"{k}={_fact_text(v)}" for k, v in request.get("facts", {}).items()),
        "attestations": "|".join(request.get("attestations", [])),
    }
    return [cells[c] for c in COLUMNS]


def test_golden_cases_decide_alike(columnar: ColumnarPack, national: PolicySet) -> None:
    cases = json.loads(GOLDEN.read_text(encoding="utf-8"))
    rows = [golden_row(case["request"]) for case in cases]
    paths = assert_same(columnar, national, rows)
    assert paths[COLUMNAR] > len(rows) / 3, paths  # the vectorised path does most of them


def test_synthetic_activity_decides_alike(columnar: ColumnarPack, national: PolicySet) -> None:
    rows = list(generate(4000, 11, bad_share=0.05))
    rows = [r for r in rows if len(r) == len(COLUMNS)]  # short rows never reach the core
    paths = assert_same(columnar, national, rows)
    # Rejects with one bad cell get their reason column-wise too (once per distinct cell).
    assert paths[COLUMNAR] > 0.99 * len(rows), paths


def test_every_rule_is_vectorised(columnar: ColumnarPack) -> None:
    assert columnar.vectorised_rules == len(columnar.rules) > 40


# --- hypothesis: real codes of the pack, and the ways extracts spoil them ------------------

_SPOIL = ("", " ", "\u00a0", "\x1c", "\x0b", ".", "..", "x", "\u0130", "ß", "é")


def _codes(policy_set: PolicySet, system: str) -> list[str]:
    found = sorted(
        k for cs in policy_set.checked.codesets.values() if cs.system == system for k in cs.keys
    )
    return found[:400]


@st.composite
def code_cell(draw: st.DrawFn, pool: list[str], system: str) -> str:
    code = draw(st.sampled_from(pool))
    if len(code) < (5 if system == "icd10" else 4):
        code += draw(st.sampled_from(("", "", "0", "1", "9", "X")))
    if len(code) > 3 and draw(st.booleans()):
        code = code[:3] + "." + code[3:]
    if draw(st.sampled_from(range(5))) == 4:
        code = code.lower()
    if draw(st.sampled_from(range(13))) == 12:
        at = draw(st.integers(0, len(code)))
        code = code[:at] + draw(st.sampled_from(_SPOIL)) + code[at:]
    return code


def mostly(good: list[str] | st.SearchStrategy[str], bad: list[str]) -> st.SearchStrategy[str]:
    """A valid cell nine times in ten, else one of the ways extracts spoil it."""
    valid = st.sampled_from(good) if isinstance(good, list) else good
    return st.sampled_from(range(10)).flatmap(lambda i: st.sampled_from(bad) if i == 9 else valid)


@st.composite
def activity_row(draw: st.DrawFn, opcs: list[str], icd: list[str], drugs: list[str]) -> list[str]:
    def some(pool: list[str], system: str, most: int) -> str:
        return "|".join(draw(st.lists(code_cell(pool, system), max_size=most)))

    days = st.dates(min_value=dt.date(2013, 1, 1), max_value=dt.date(2027, 12, 31)).map(str)
    fields = {
        "record_id": draw(mostly(["r1", "x" * 128], ["x" * 129, ""])),
        "setting": draw(st.sampled_from(["APC", "OP"])),
        "activity_date": draw(mostly(days, ["2024-02-30", "2023-02-29", "2024-2-01", "20240601",
                                            "", " 2024-06-01", "2024-06-01 "])),
        "provider_code": draw(mostly(["RBQ", "rbv", "RR8", "RKL", "RWH", "RA7", ""],
                                     ["R", "RB Q", "RBQ\u00a0"])),
        "age": draw(mostly(["0", "15", "16", "17", "18", "19", "65", "130", "007"],
                           ["131", "", "abc", "-1", "\u0661\u0668", " 18", "18.0"])),
        "sex": draw(mostly(["1", "2", "9", "0", "", "female", "male", "indeterminate"],
                           ["Female", "3", "X"])),
        "region": draw(mostly(["London", "Midlands", "North West", "South West", ""],
                              ["london", "Narnia"])),
        "icb": draw(mostly(["QWE", "QMJ", "QHM", "QE1", ""], ["qwe", "Q", "QWERTY"])),
        "treatment_function": draw(mostly(
            ["700", "711", "712", "713", "720", "723", "724", "320", "370", ""], ["71", "abc"])),
        "primary_diagnosis": draw(mostly(code_cell(icd, "icd10"), [""])),
        "secondary_diagnoses": some(icd, "icd10", 3),
        "dominant_procedure": draw(mostly(code_cell(opcs, "opcs4"), [""])),
        "other_procedures": some(opcs, "opcs4", 3),
        "drugs": "|".join(draw(st.lists(st.sampled_from(drugs), max_size=2))),
        "facts": draw(mostly([""], ["ras_status=wild_type", "favourite=blue",
                                    "last_dose_date=2024-01-02;expected_cycle_length_days=21"])),
        "attestations": draw(mostly([""], ["prescriber_consultant_or_accredited_trainee", "x"])),
    }
    for first, rest in (("primary_diagnosis", "secondary_diagnoses"),
                        ("dominant_procedure", "other_procedures")):
        if not fields[first] and draw(st.sampled_from(range(10))) < 9:
            fields[rest] = ""  # mostly: no subsidiary codes without a first one
    return [fields[c] for c in COLUMNS]


_NATIONAL = load_policy_set(POLICIES, fixed_clock)
_COLUMNAR = ColumnarPack(_NATIONAL)
_OPCS, _ICD = _codes(_NATIONAL, "opcs4"), _codes(_NATIONAL, "icd10")
_DRUGS = [*_codes(_NATIONAL, "drug")[:40], " Cetuximab ", "CETUXIMAB", "cetuximab  x", "??", ""]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(rows=st.lists(activity_row(_OPCS, _ICD, _DRUGS), min_size=1, max_size=40))
def test_generated_rows_decide_alike(rows: list[list[str]]) -> None:
    assert_same(_COLUMNAR, _NATIONAL, rows)


def test_a_reject_with_several_bad_cells_takes_the_row_path(columnar: ColumnarPack,
                                                            national: PolicySet) -> None:
    good = ["R1", "APC", "2024-06-01", "RBQ", "80", "1", "London", "QWE", "320", "I35.0", "",
            "K26.2", "Y53.1", "", "", ""]
    one, two = list(good), list(good)
    one[COLUMNS.index("age")] = two[COLUMNS.index("age")] = "abc"
    two[COLUMNS.index("icb")] = "qwe"
    paths = assert_same(columnar, national, [good, one, two])
    assert paths == {COLUMNAR: 2, ROW: 1}




def test_dictionary_columns_decide_as_plain_ones(columnar: ColumnarPack) -> None:
    """Parquet and the CSV reader may hand over dictionary-encoded text: same answers."""
    rows = [r for r in generate(500, 3, bad_share=0.05) if len(r) == len(COLUMNS)]
    plain = batch_of(rows)
    encoded = pa.RecordBatch.from_arrays(
        [c.dictionary_encode() for c in plain.columns], names=plain.schema.names
    )
    a, b = columnar.classify(plain), columnar.classify(encoded)
    for name in (*RESULT_COLUMNS, REASON):
        assert a.column(name).to_pylist() == b.column(name).to_pylist()


def test_the_pack_survives_the_trip_to_spark_workers(columnar: ColumnarPack) -> None:
    """Spark ships the compiled pack with cloudpickle; the copy answers as the original."""
    from pyspark import cloudpickle

    copy = cloudpickle.loads(cloudpickle.dumps(columnar))
    rows = [r for r in generate(1500, 5, bad_share=0.05) if len(r) == len(COLUMNS)]
    assert copy.classify(batch_of(rows)).to_pylist() == columnar.classify(batch_of(rows)).to_pylist()


# --- facts and attestations column-wise: golden referrals with their facts reworked --------

_GOLDEN = [c["request"] for c in json.loads(GOLDEN.read_text(encoding="utf-8"))]
_WITH_FACTS = [r for r in _GOLDEN if r.get("facts") or r.get("attestations")]
_TYPES = {n: t for n, t in _NATIONAL.checked.fact_types.items() if n not in ("age", "sex",
                                                                             "decision_date")}
_ATTESTATIONS = sorted(_NATIONAL.checked.attestations)


def _values_of(name: str) -> st.SearchStrategy[str]:
    """Cells a fact may be given as: its type's values, near misses, and outright junk."""
    vtype = _TYPES[name]
    junk = st.sampled_from(["", "yes", "1.5", "-0", "1e3", "2024-02-30", "x", str(2**53),
                            "9" * 19, "0.1", "12.0", "true"])
    if vtype.kind == "bool":
        good: st.SearchStrategy[str] = st.sampled_from(["true", "false"])
    elif vtype.kind == "number":
        good = st.one_of(st.integers(-5, 400).map(str),
                         st.decimals(-10, 100, places=2, allow_nan=False).map(str))
    elif vtype.kind == "date":
        good = st.dates(dt.date(2010, 1, 1), dt.date(2027, 12, 31)).map(str)
    elif vtype.kind == "enum":
        good = st.sampled_from(vtype.values)
    else:
        good = st.text("abcXYZ019_", min_size=1, max_size=8)
    return st.sampled_from(range(8)).flatmap(lambda i: junk if i == 7 else good)


@st.composite
def reworked_row(draw: st.DrawFn) -> list[str]:
    """A golden referral with facts dropped, changed, added and spoiled; attestations too."""
    request = json.loads(json.dumps(draw(st.sampled_from(_WITH_FACTS))))
    facts = {k: _fact_text(v) for k, v in request.get("facts", {}).items()}
    for name in list(facts):
        move = draw(st.sampled_from(range(6)))
        if move == 0:
            del facts[name]
        elif move == 1:
            facts[name] = draw(_values_of(name))
    for name in draw(st.lists(st.sampled_from(sorted(_TYPES)), max_size=3)):
        facts[name] = draw(_values_of(name))
    pairs = [f"{k}={v}" for k, v in facts.items()]
    spoil = draw(st.sampled_from(range(12)))
    if spoil == 0 and pairs:
        pairs.append(pairs[0])  # given twice
    elif spoil == 1:
        pairs.append(draw(st.sampled_from(["favourite=blue", "age=40", "ras_status", "=1",
                                           ";;", "decision_date=2024-01-01"])))
    attestations = list(request.get("attestations", []))
    if draw(st.booleans()):
        attestations = draw(st.lists(st.sampled_from([*_ATTESTATIONS, "x"]), max_size=3))
    row = golden_row({**request, "facts": {}, "attestations": attestations})
    row[COLUMNS.index("facts")] = ";".join(pairs)
    if draw(st.sampled_from(range(4))) == 0:  # another decision date moves policy versions
        day = draw(st.dates(dt.date(2013, 1, 1), dt.date(2027, 12, 31)))
        row[COLUMNS.index("activity_date")] = str(day)
    return row


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(rows=st.lists(reworked_row(), min_size=1, max_size=40))
def test_rows_with_facts_decide_alike(rows: list[list[str]]) -> None:
    assert_same(_COLUMNAR, _NATIONAL, rows)


def test_facts_attestations_and_missing_inputs_take_the_columnar_path(
    columnar: ColumnarPack, national: PolicySet
) -> None:
    """The golden referrals with facts, and the same without them (incomplete answers,
    whose missing inputs are listed column-wise), are decided without the row evaluator."""
    rows = [golden_row(r) for r in _WITH_FACTS]
    bare = [golden_row({**r, "facts": {}, "attestations": []}) for r in _WITH_FACTS]
    paths = assert_same(columnar, national, rows + bare)
    got, _ = answers(columnar, bare)
    incomplete = [g for g in got if isinstance(g, tuple) and g[5] == "incomplete"]
    assert len(incomplete) > 20 and all(g[7] for g in incomplete)  # each lists its inputs
    assert paths[ROW] <= len(rows) / 20, paths
