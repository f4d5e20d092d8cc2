"""The decision request at the edge: pydantic shape checks, then the pack's vocabulary.

In: the JSON of `POST /v1/decisions` as Python data, and the pack's facts and attestations.
Out: an `Activity` with canonical codes and typed facts, or `RequestError` listing every bad
field as (`patient.nhs_number`, problem). Nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from chalicelib.activity import Activity, age_in_months
from chalicelib.codes import normalise
from chalicelib.dsl.source import did_you_mean
from chalicelib.dsl.types import Sex, VType
from chalicelib.engine.fields import (
    ICB,
    MAX_AGE,
    MAX_CODES,
    MAX_REFERRAL_ID,
    ODS,
    TREATMENT_FUNCTION,
    anchored,
    iso_date,
    nhs_number_valid,
    region,
)
from chalicelib.errors import Problem, RequestError, validation_problems


class PatientIn(BaseModel):
    """The patient: age or birth date, sex, NHS number (hashed before storage), ICB, region."""

    # `age` or `birth_date` must be given; said in the schema so clients see it too.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["age"], "properties": {"age": {"type": "integer"}}},
        {"required": ["birth_date"], "properties": {"birth_date": {"type": "string"}}},
    ]})

    age: StrictInt | None = Field(default=None, ge=0, le=MAX_AGE,
                                  description="age in whole years")
    birth_date: dt.date | None = None
    sex: Sex | None = None
    nhs_number: StrictStr | None = Field(default=None, description="10 digits, modulus 11")
    icb: StrictStr | None = Field(
        default=None,
        pattern=anchored(ICB),
        description="ODS code of the patient's ICB, e.g. QWE",
    )
    region: StrictStr | None = Field(default=None, description="NHS England region")

    # An explicit null is no birth date, as for every other optional member (the OpenAPI
    # document says the member may be null).
    _birth = field_validator("birth_date", mode="before")(
        lambda value: None if value is None else iso_date(value))

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(" ", "").replace("-", "")
        if not nhs_number_valid(digits):
            raise ValueError("is not a valid NHS number (10 digits, modulus 11 check)")
        return digits

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else region(value)


class ProviderIn(BaseModel):
    """The provider organisation, by ODS code."""

    model_config = ConfigDict(extra="forbid")

    ods_code: StrictStr | None = Field(default=None, pattern=anchored(ODS))


class DecisionRequest(BaseModel):
    """The body of `POST /v1/decisions`."""

    model_config = ConfigDict(extra="forbid")

    referral_id: StrictStr | None = Field(default=None, max_length=MAX_REFERRAL_ID)
    date: dt.date = Field(description="the date the decision is for; selects policy versions")
    patient: PatientIn
    provider: ProviderIn | None = None
    procedures: list[StrictStr] = Field(
        default_factory=list,
        max_length=MAX_CODES,
        description="OPCS-4; the first is the dominant one",
    )
    diagnoses: list[StrictStr] = Field(
        default_factory=list,
        max_length=MAX_CODES,
        description="ICD-10; the first is the primary one",
    )
    drugs: list[StrictStr] = Field(default_factory=list, max_length=MAX_CODES)
    treatment_function: StrictStr | None = Field(default=None,
                                                 pattern=anchored(TREATMENT_FUNCTION))
    facts: dict[str, Any] = Field(default_factory=dict)
    attestations: list[StrictStr] = Field(default_factory=list, max_length=MAX_CODES)

    _date = field_validator("date", mode="before")(iso_date)


# `DecisionRequest.model_validate` without its Python-level wrapper (the same validator).
_validate: Callable[[Any], DecisionRequest] = DecisionRequest.__pydantic_validator__.validate_python


def parse_request(
    raw: Any, fact_types: Mapping[str, VType], attestations: Mapping[str, Any] | set[str],
    *, age_months: int | None = None,
) -> tuple[DecisionRequest, Activity]:
    """Validate a request against the shape and the pack's vocabulary; build its `Activity`.

    `age_months` is for re-deciding a recorded decision: its stored inputs keep `age` in
    years but not the birth date, so the exact months it was decided on are passed back in;
    they are used only when they agree with that `age`.
    """
    if not isinstance(raw, dict):
        raise RequestError([Problem("body", "must be a JSON object")])
    try:
        request = _validate(raw)
    except ValidationError as exc:
        raise RequestError(validation_problems(exc)) from None
    problems: list[Problem] = []
    age = _age(request, problems)
    if age_months is not None and age is not None and age_months // 12 == age // 12:
        age = age_months
    # Empty lists (most of them) and declared attestations cost no call.
    raw_codes = request.procedures
    procedures = _codes("opcs4", "procedures", raw_codes, problems) if raw_codes else ()
    raw_codes = request.diagnoses
    diagnoses = _codes("icd10", "diagnoses", raw_codes, problems) if raw_codes else ()
    raw_codes = request.drugs
    drugs = _codes("drug", "drugs", raw_codes, problems) if raw_codes else ()
    facts = typed_facts(request.facts, fact_types, problems) if request.facts else {}
    attested = request.attestations
    if attested and not all(map(attestations.__contains__, attested)):
        problems += attestation_problems(attested, attestations)
    if problems:
        raise RequestError(problems)
    patient, provider = request.patient, request.provider
    # `tuple.__new__` builds the NamedTuple at C speed from every field, in field order: its
    # generated `__new__` is Python, and from keywords twice as slow again (every request pays).
    activity = _new_tuple(Activity, (
        request.date,  # date
        age,  # age_months
        patient.sex,  # sex
        procedures,  # procedures
        diagnoses,  # diagnoses
        drugs,  # drugs
        request.treatment_function,  # treatment_function
        provider.ods_code.upper() if provider and provider.ods_code else None,  # provider
        patient.region,  # region
        patient.icb,  # icb
        facts,  # facts
        frozenset(attested),  # attestations
    ))
    return request, activity


def attestation_problems(
    names: list[str], attestations: Mapping[str, Any] | set[str]
) -> list[Problem]:
    """A problem at `attestations[i]` for each name the pack does not declare."""
    problems = []
    for i, name in enumerate(names):
        if name not in attestations:
            hint = did_you_mean(name, attestations)
            problems.append(Problem(f"attestations[{i}]", f"unknown attestation `{name}`"
                                    + (f"; {hint}" if hint else "")))
    return problems


def _age(request: DecisionRequest, problems: list[Problem]) -> int | None:
    """The patient's age in whole months on the decision date.

    From `birth_date` when given (exact); otherwise from `age` in whole years, as its first
    month (a child given as `age: 1` is taken as 12 months old).
    """
    patient = request.patient
    if patient.birth_date is None:
        if patient.age is None:
            problems.append(Problem("patient", "give `age` or `birth_date`"))
            return None
        return patient.age * 12
    born = patient.birth_date
    if born > request.date:
        problems.append(Problem("patient.birth_date", "is after the decision date"))
        return None
    months = age_in_months(born, request.date)
    years = months // 12
    if years > MAX_AGE:
        problems.append(Problem("patient.birth_date", f"gives an age over {MAX_AGE}"))
        return None
    if patient.age is not None and patient.age != years:
        problems.append(
            Problem(
                "patient.age",
                f"does not match birth_date (age {years} on {request.date.isoformat()})",
            )
        )
    return months


_new_tuple = tuple.__new__
_CODE_LABELS = {"opcs4": "OPCS-4 code", "icd10": "ICD-10 code", "drug": "drug name"}


def _codes(system: str, field: str, raw: list[str], problems: list[Problem]) -> tuple[str, ...]:
    if not raw:
        return ()
    out = []
    for i, code in enumerate(raw):
        canonical = normalise(system, code)
        if canonical is None:
            label = _CODE_LABELS[system]
            problems.append(Problem(f"{field}[{i}]", f"`{code}` is not a valid {label}"))
        else:
            out.append(canonical)
    return tuple(out)


def typed_facts(
    raw: Mapping[str, Any],
    fact_types: Mapping[str, VType],
    problems: list[Problem],
    where: str = "facts.",
) -> dict[str, Any]:
    """The facts the pack declares, each checked against its type and converted (a date text
    to a date, a whole decimal to an int); a problem at `{where}{name}` for each unknown name
    or bad value. The one reading of facts: the API, assessments and `pss batch` use it."""
    facts: dict[str, Any] = {}
    for name, value in raw.items():
        vtype = fact_types.get(name)
        if vtype is None or name in _NOT_FACTS:
            hint = did_you_mean(name, [n for n in fact_types if n not in ("age", "sex")])
            problems.append(
                Problem(f"{where}{name}", "unknown fact" + (f"; {hint}" if hint else ""))
            )
            continue
        # The common values pass at once (exactly a bool for yes/no, an int for an integer,
        # one of an enum's values: `VType.exact`); anything else gets the full check and its
        # problem. A decimal keeps the check, which accepts ints as they are too.
        if value.__class__ is vtype.exact and (not vtype.values or value in vtype.values):
            facts[name] = value
            continue
        if value is None:
            continue  # an explicit null is the same as not giving the fact
        typed = _typed(value, vtype)
        if isinstance(typed, Problem):
            problems.append(Problem(f"{where}{name}", typed.problem))
        else:
            facts[name] = typed
    return facts


# Names a request may not give as facts: the language's own (`types.BUILTINS`).
_NOT_FACTS = frozenset({"age", "decision_date", "sex"})


def _typed(value: Any, vtype: VType) -> Any:
    kind = vtype.kind
    if kind == "bool":
        return value if isinstance(value, bool) else Problem("", "must be true or false")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Problem("", "must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            return Problem("", "must be a finite number")
        if vtype.integer and not (isinstance(value, int) or value.is_integer()):
            return Problem("", "must be a whole number")
        return int(value) if vtype.integer else value
    if kind == "enum":
        if value not in vtype.values:
            return Problem("", "must be one of: " + ", ".join(vtype.values))
        return value
    if kind == "date":
        try:
            return iso_date(value)
        except ValueError as exc:
            return Problem("", str(exc))
    return value if isinstance(value, str) and value else Problem("", "must be a string")


__all__ = ["DecisionRequest", "nhs_number_valid", "parse_request", "typed_facts"]
