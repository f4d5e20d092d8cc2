"""The decision request at the edge: pydantic shape checks, then the pack's vocabulary.

In: the JSON of `POST /v1/decisions` as Python data, and the pack's facts and attestations.
Out: an `Activity` with canonical codes and typed facts, or `RequestError` listing every bad
field as (`patient.nhs_number`, problem). Nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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
from chalicelib.dsl.types import REGIONS, Sex, VType
from chalicelib.engine.fields import (
    ICB,
    MAX_AGE,
    MAX_CODES,
    MAX_REFERRAL_ID,
    ODS,
    SEXES,
    TREATMENT_FUNCTION,
    anchored,
    date_text,
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

    # An explicit null is no birth date, as for every other optional member.
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

    The model is kept (the API stores its inputs); `parse_activity` is the same check when
    only the `Activity` is wanted. `age_months` is for re-deciding a recorded decision: its
    stored inputs keep `age` in years but not the birth date, so the exact months it was
    decided on are passed back in; they are used only when they agree with that `age`.
    """
    request = validate_shape(raw)
    return request, _activity(Shape.of(request), fact_types, attestations, age_months)


def validate_shape(raw: Any) -> DecisionRequest:
    """The request as the model, or `RequestError` naming every field pydantic refuses."""
    if not isinstance(raw, dict):
        raise RequestError([Problem("body", "must be a JSON object")])
    try:
        return _validate(raw)
    except ValidationError as exc:
        raise RequestError(validation_problems(exc)) from None


def parse_activity(
    raw: Any, fact_types: Mapping[str, VType], attestations: Mapping[str, Any] | set[str],
) -> Activity:
    """The `Activity` of a request (what `PolicySet.parse` answers), by the same checks as
    `parse_request`.

    A request whose every field is plainly of the model's shape (`_plain_fields`: most
    requests) skips building the three model objects, with the same field checks
    (`engine.fields`). Any other goes through `validate_shape`, so every refusal is
    pydantic's, worded as the API words it; the pack's vocabulary (codes, facts,
    attestations, age) is checked by one function either way (`_activity`).
    """
    plain = _plain_fields(raw)
    if plain is None:
        return parse_request(raw, fact_types, attestations)[1]
    return _activity(plain, fact_types, attestations)


class Shape(NamedTuple):
    """What a request of the right shape says, as `_activity` reads it (from the model, or
    straight from a plainly valid request)."""

    date: dt.date
    age: int | None
    birth_date: dt.date | None
    sex: str | None
    region: str | None
    icb: str | None
    ods_code: str | None
    procedures: list[str]
    diagnoses: list[str]
    drugs: list[str]
    treatment_function: str | None
    facts: dict[str, Any]
    attestations: list[str]

    @classmethod
    def of(cls, request: DecisionRequest) -> Shape:
        """The shape of a validated model."""
        patient, provider = request.patient, request.provider
        return cls(request.date, patient.age, patient.birth_date, patient.sex, patient.region,
                   patient.icb, provider.ods_code if provider else None, request.procedures,
                   request.diagnoses, request.drugs, request.treatment_function, request.facts,
                   request.attestations)


# The members each object of the request may have: the models' own fields, each checked by
# `_plain_fields` below. A field added to a model and not to these checks would pass
# unchecked, so the import fails until both say the same.
_REQUEST_FIELDS = frozenset(DecisionRequest.model_fields)
_PATIENT_FIELDS = frozenset(PatientIn.model_fields)
_PROVIDER_FIELDS = frozenset(ProviderIn.model_fields)
if (
    frozenset({"referral_id", "date", "patient", "provider", "procedures", "diagnoses", "drugs",
               "treatment_function", "facts", "attestations"}),
    frozenset({"age", "birth_date", "sex", "nhs_number", "icb", "region"}),
    frozenset({"ods_code"}),
) != (_REQUEST_FIELDS, _PATIENT_FIELDS, _PROVIDER_FIELDS):
    raise ImportError("the request models and `_plain_fields` no longer name the same fields")
_NO_CODES: list[str] = []
_NO_FACTS: dict[str, Any] = {}
_REGIONS = frozenset(REGIONS)


def _plain_fields(raw: Any) -> Shape | None:
    """The `Shape` read straight from the request, or None when any field is not plainly
    what the model accepts (then the model decides, and says why).

    Only exact JSON types are taken (a `str`, an `int` that is not a bool, a `list` of `str`,
    a `dict` with `str` keys), with the models' own limits and patterns from `engine.fields`:
    whatever this accepts, the model accepts with the same values (a property test checks
    that against the model on generated requests, valid and not).
    """
    if raw.__class__ is not dict or not _REQUEST_FIELDS.issuperset(raw):
        return None
    get = raw.get
    date, patient, provider = get("date"), get("patient"), get("provider")
    if date.__class__ is not str or patient.__class__ is not dict:
        return None
    try:
        day = date_text(date)
    except ValueError:
        return None
    person = _plain_patient(patient)
    ods = None if provider is None else _plain_provider(provider)
    if person is None or ods is False:
        return None
    referral, function = get("referral_id"), get("treatment_function")
    if referral is not None and (referral.__class__ is not str
                                 or len(referral) > MAX_REFERRAL_ID):
        return None
    if function is not None and (function.__class__ is not str
                                 or not TREATMENT_FUNCTION.fullmatch(function)):
        return None
    procedures, diagnoses, drugs, attested, facts = (
        get("procedures", _NO_CODES), get("diagnoses", _NO_CODES), get("drugs", _NO_CODES),
        get("attestations", _NO_CODES), get("facts", _NO_FACTS))
    # Each list is a `list` of at most MAX_CODES `str`s; the facts a `dict` keyed by `str`
    # (a member left out is none: most requests leave most of them out).
    if not ((procedures is _NO_CODES or _plain_list(procedures))
            and (diagnoses is _NO_CODES or _plain_list(diagnoses))
            and (drugs is _NO_CODES or _plain_list(drugs))
            and (attested is _NO_CODES or _plain_list(attested))
            and (facts is _NO_FACTS or (facts.__class__ is dict
                                        and _ONLY_STR.issuperset(map(type, facts))))):
        return None
    # `tuple.__new__`: the NamedTuple at C speed, from every field in field order.
    return _new_tuple(Shape, (day, *person, ods, procedures, diagnoses, drugs, function, facts,
                              attested))


def _plain_patient(patient: dict[str, Any]) -> tuple[Any, ...] | None:
    """(age, birth date, sex, region, ICB) of a plainly valid `patient`, else None."""
    if not _PATIENT_FIELDS.issuperset(patient):
        return None
    get = patient.get
    age, born, sex, number, icb, area = (
        get("age"), get("birth_date"), get("sex"), get("nhs_number"), get("icb"), get("region"))
    if age is not None and (age.__class__ is not int or not 0 <= age <= MAX_AGE):
        return None
    if sex is not None and (sex.__class__ is not str or sex not in SEXES):
        return None
    if area is not None and (area.__class__ is not str or area not in _REGIONS):
        return None
    if icb is not None and (icb.__class__ is not str or not ICB.fullmatch(icb)):
        return None
    if number is not None and (number.__class__ is not str or not nhs_number_valid(
            number.replace(" ", "").replace("-", "") if " " in number or "-" in number
            else number)):
        return None
    birth_date = None
    if born is not None:
        if born.__class__ is not str:
            return None
        try:
            birth_date = date_text(born)
        except ValueError:
            return None
    return age, birth_date, sex, area, icb


def _plain_provider(provider: Any) -> str | bool | None:
    """The ODS code of a plainly valid `provider` (None: none given), else False."""
    if provider.__class__ is not dict or not _PROVIDER_FIELDS.issuperset(provider):
        return False
    ods = provider.get("ods_code")
    if ods is not None and (ods.__class__ is not str or not ODS.fullmatch(ods)):
        return False
    return ods


def _plain_list(items: Any) -> bool:
    """A `list` of at most `MAX_CODES` `str`s."""
    return items.__class__ is list and (not items or (
        len(items) <= MAX_CODES and _ONLY_STR.issuperset(map(type, items))))


_ONLY_STR = frozenset({str})


def _activity(
    shape: Shape, fact_types: Mapping[str, VType], attestations: Mapping[str, Any] | set[str],
    age_months: int | None = None,
) -> Activity:
    """The pack's vocabulary over a request of the right shape: its `Activity`, or
    `RequestError` naming every code, fact, attestation or age the pack cannot take."""
    (date, age, birth_date, sex, area, icb, ods, raw_procedures, raw_diagnoses, raw_drugs,
     function, raw_facts, attested) = shape
    problems: list[Problem] = []
    months = _age(age, birth_date, date, problems)
    if age_months is not None and months is not None and age_months // 12 == months // 12:
        months = age_months
    # Empty lists (most of them) and declared attestations cost no call.
    procedures = _codes("opcs4", "procedures", raw_procedures, problems) if raw_procedures else ()
    diagnoses = _codes("icd10", "diagnoses", raw_diagnoses, problems) if raw_diagnoses else ()
    drugs = _codes("drug", "drugs", raw_drugs, problems) if raw_drugs else ()
    facts = _facts(raw_facts, fact_types, problems) if raw_facts else {}
    if attested and not all(map(attestations.__contains__, attested)):
        problems += attestation_problems(attested, attestations)
    if problems:
        raise RequestError(problems)
    # `tuple.__new__` builds the NamedTuple at C speed from every field, in field order: its
    # generated `__new__` is Python, and from keywords twice as slow again (every request pays).
    return _new_tuple(Activity, (
        date,  # date
        months,  # age_months
        sex,  # sex
        procedures,  # procedures
        diagnoses,  # diagnoses
        drugs,  # drugs
        function,  # treatment_function
        ods.upper() if ods else None,  # provider
        area,  # region
        icb,  # icb
        facts,  # facts
        frozenset(attested),  # attestations
    ))


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


def _age(age: int | None, born: dt.date | None, date: dt.date,
         problems: list[Problem]) -> int | None:
    """The patient's age in whole months on the decision date.

    From `birth_date` when given (exact); otherwise from `age` in whole years, as its first
    month (a child given as `age: 1` is taken as 12 months old).
    """
    if born is None:
        if age is None:
            problems.append(Problem("patient", "give `age` or `birth_date`"))
            return None
        return age * 12
    if born > date:
        problems.append(Problem("patient.birth_date", "is after the decision date"))
        return None
    months = age_in_months(born, date)
    years = months // 12
    if years > MAX_AGE:
        problems.append(Problem("patient.birth_date", f"gives an age over {MAX_AGE}"))
        return None
    if age is not None and age != years:
        problems.append(
            Problem("patient.age", f"does not match birth_date (age {years} on {date.isoformat()})")
        )
    return months


_new_tuple = tuple.__new__
_CODE_LABELS = {"opcs4": "OPCS-4 code", "icd10": "ICD-10 code", "drug": "drug name"}


def _codes(system: str, field: str, raw: list[str], problems: list[Problem]) -> tuple[str, ...]:
    out = []
    for i, code in enumerate(raw):
        canonical = normalise(system, code)
        if canonical is None:
            label = _CODE_LABELS[system]
            problems.append(Problem(f"{field}[{i}]", f"`{code}` is not a valid {label}"))
        else:
            out.append(canonical)
    return tuple(out)


def _facts(
    raw: Mapping[str, Any],
    fact_types: Mapping[str, VType],
    problems: list[Problem],
    where: str = "facts.",
) -> dict[str, Any]:
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


__all__ = ["DecisionRequest", "Shape", "nhs_number_valid", "parse_activity", "parse_request"]
