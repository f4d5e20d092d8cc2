"""The request edge: an explicit null birth date, and the bounded memory of code checks."""

from __future__ import annotations

from pathlib import Path

from chalicelib import codes, load_policy_set
from chalicelib.engine.request import PatientIn
from chalicelib.errors import RequestError

ROOT = Path(__file__).resolve().parents[2]
PACK = load_policy_set(ROOT / "policies")


def test_a_null_birth_date_is_no_birth_date_as_the_schema_says() -> None:
    # The OpenAPI document (from the model) allows null, as for every optional member; the
    # server refused it with "must be a date written YYYY-MM-DD" until this test.
    schema = PatientIn.model_json_schema()["properties"]["birth_date"]
    assert {"type": "null"} in schema["anyOf"]
    with_age = {"date": "2025-06-01", "patient": {"age": 64, "birth_date": None}}
    assert PACK.parse(with_age).age_months == 64 * 12
    try:
        PACK.parse({"date": "2025-06-01", "patient": {"birth_date": None}})
    except RequestError as exc:
        assert [(p.field, p.problem) for p in exc.details] == [
            ("patient", "give `age` or `birth_date`")]
    else:
        raise AssertionError("a request with neither age nor birth date was accepted")


def test_codes_longer_than_any_real_code_are_not_remembered() -> None:
    # A 256 KiB body of long garbage "drugs", again and again, would otherwise keep
    # gigabytes alive in the 65,536-entry cache.
    before = codes._remembered.cache_info().currsize
    for i in range(50):
        assert codes.normalise("drug", f"{i} " + "x" * 10_000) is None
    assert codes._remembered.cache_info().currsize == before
    assert codes.normalise("drug", "Probe Drug 7f3a ") == "probe drug 7f3a"  # a short one is
    assert codes._remembered.cache_info().currsize == before + 1
