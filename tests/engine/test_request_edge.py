"""The request edge has one meaning on both of its paths.

`PolicySet.parse` reads a plainly valid request straight into an `Activity` (`_plain_fields`)
and sends every other one through the pydantic model (`parse_request`). These tests hold the
two to one meaning: on generated requests, valid and not, the plain path accepts only what
the model accepts, and the answer — the `Activity`, or the refusal with its fields — is the
same whichever path was taken.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import codes, load_policy_set
from chalicelib.activity import Activity
from chalicelib.engine.request import (
    Shape,
    _plain_fields,
    parse_activity,
    parse_request,
    validate_shape,
)
from chalicelib.errors import RequestError

ROOT = Path(__file__).resolve().parents[2]
PACK = load_policy_set(ROOT / "policies")
FACT_TYPES, ATTESTATIONS = PACK.checked.fact_types, PACK.checked.attestations

# Values each field may take: first what the contract accepts, then (after the `|`) near
# misses and wrong types. A request is drawn valid, then zero to two of its fields replaced by
# any value of theirs (or left out), so both paths are taken often.
_WHOLE = {
    "date": (["2025-06-01", "2024-02-29", "2013-04-01"],
             ["2025-02-29", "20250601", "2025-6-1", "2025-06-01T00:00:00", "", " 2025-06-01",
              20250601, None, 1.5, ["2025-06-01"], dt.date(2025, 6, 1),
              dt.datetime(2025, 6, 1, 12, 0), "2012-01-01"]),
    "referral_id": (["example-1", "x" * 128, None], ["", "x" * 129, 12]),
    "treatment_function": (["320", None], ["32", "3200", "abc", 320]),
    "procedures": ([[], ["K26.2"], ["O02.1", "k262"]],
                   [["??"], [7], ("K26.2",), "K26.2", None, ["K26.2"] * 51]),
    "diagnoses": ([[], ["C18.7"], ["c187", "I35.0"]], [[""], ["x" * 200], None, [None]]),
    "drugs": ([[], ["cetuximab", "fluorouracil"], ["Cetuximab "]],
              [["cetuximab"] * 51, [1.5], {"cetuximab"}]),
    "facts": ([{}, {"ras_status": "wild_type", "line_of_therapy": 1, "msi_h_or_dmmr": False},
               {"last_dose_date": "2025-05-01", "pd_l1_cps": 12.5}],
              [{"ras_status": "purple"}, {"line_of_therapy": 1.0}, {"line_of_therapy": 1.5},
               {"line_of_therapy": True}, {"msi_h_or_dmmr": 0}, {"last_dose_date": "May"},
               {"not_a_fact": 1}, {"age": 3}, {"pd_l1_cps": None}, {1: True}, None, []]),
    "attestations": ([[], ["prescriber_consultant_or_accredited_trainee"]],
                     [["mdtt"], [""], [42], "aortic_valve_mdm_agreed", None]),
    "provider": ([None, {"ods_code": "RBV"}, {"ods_code": "rbv"}, {}],
                 ["RBV", ["RBV"], {"ods_code": "R1"}, {"ods_code": "RB-V"}, {"ods_code": 5},
                  {"ods_code": "RBV", "name": "x"}]),
    "patient": ([{"age": 64}], [None, [], "patient"]),
    "extra": ([], [True]),
}
_PATIENT = {
    "age": ([0, 17, 18, 64, 130, None], [131, -1, True, False, 64.0, "64", 2**70]),
    "birth_date": (["1961-03-01", "2023-10-01", "2024-02-29", None],
                   ["2025-06-02", "1890-01-01", "1990-13-01", 19900101]),
    "sex": (["female", "male", "indeterminate", "unknown", None], ["Male", "1", "", 1]),
    "nhs_number": (["9434765919", "943 476 5919", "943-476-5919", None],
                   ["9434765918", "943476591", "943476591\u0669", "", 9434765919]),
    "icb": (["QWE", "QE1", None], ["qwe", "QWERTY", "Q", "QW\n", 42]),
    "region": (["North West", "London", None], ["north west", "Nowhere", "", 7]),
    "postcode": ([], ["LS1 4AP"]),
}
_ABSENT = object()


def _valid(table: dict[str, tuple[list[Any], list[Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        name: st.sampled_from(good) for name, (good, _) in table.items() if good})


def _any(table: dict[str, tuple[list[Any], list[Any]]]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from([(name, value) for name, (good, bad) in table.items()
                            for value in (*good, *bad, _ABSENT)])


def _changed(base: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(base)
    for name, value in changes:
        if value is _ABSENT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


_patients = st.builds(_changed, _valid(_PATIENT), st.lists(_any(_PATIENT), max_size=2))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    request = draw(_valid(_WHOLE))
    request["date"] = draw(st.sampled_from(_WHOLE["date"][0]))
    request["patient"] = draw(_patients)
    return _changed(request, draw(st.lists(_any(_WHOLE), max_size=2)))


def _answer(parse: Any, raw: Any) -> Activity | list[tuple[str, str]]:
    """The activity, or the refused fields and problems."""
    try:
        return parse(raw)
    except RequestError as exc:
        return [(p.field, p.problem) for p in exc.details]


def _reference(raw: Any) -> Activity:
    return parse_request(raw, FACT_TYPES, ATTESTATIONS)[1]


def _either(raw: Any) -> Activity:
    return parse_activity(raw, FACT_TYPES, ATTESTATIONS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_both_paths_give_one_answer(raw: dict[str, Any]) -> None:
    plain = _plain_fields(raw)
    if plain is not None:
        # Taken without the model: the model accepts the same shape, with the same values.
        assert plain == Shape.of(validate_shape(raw))
    # Whichever path `parse_activity` took, its answer is the model's.
    assert _answer(_either, raw) == _answer(_reference, raw)


def _examples() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text(encoding="utf-8")))
            for p in sorted((ROOT / "examples").glob("*.json"))]


@pytest.mark.parametrize(("name", "body"), _examples())
def test_every_example_referral_takes_the_plain_path(name: str, body: dict[str, Any]) -> None:
    assert _plain_fields(body) is not None, name
    assert _either(body) == _reference(body)


@pytest.mark.parametrize(("field", "value"), [
    ("date", "20250601"), ("date", dt.date(2025, 6, 1)), ("patient", {"age": True}),
    ("patient", {"age": 64, "postcode": "LS1"}), ("patient", {"age": 64, "icb": "qwe"}),
    ("patient", {"age": 64, "nhs_number": "9434765918"}), ("drugs", ("cetuximab",)),
    ("drugs", [7]), ("facts", {1: True}), ("provider", {"ods_code": "R"}),
    ("referral_id", "x" * 129), ("treatment_function", 320), ("extra", 1),
])
def test_a_doubtful_field_goes_to_the_model(field: str, value: Any) -> None:
    raw = {"date": "2025-06-01", "patient": {"age": 64}, field: value}
    assert _plain_fields(raw) is None
    assert _answer(_either, raw) == _answer(_reference, raw)


def test_codes_longer_than_any_real_code_are_not_remembered() -> None:
    before = codes._remembered.cache_info().currsize
    for i in range(50):
        assert codes.normalise("drug", f"{i} " + "x" * 10_000) is None
    assert codes._remembered.cache_info().currsize == before
    assert codes.normalise("drug", "Cetuximab ") == "cetuximab"
