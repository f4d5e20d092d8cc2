"""What decisions mean: identification, commissioners over time, policies, three-valued logic."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import NotCoveredError, RequestError
from tests.conftest import build

PACK = """
fact ras_status: enum(wild_type, mutant, unknown) "RAS status"
fact line_of_therapy: int "line of therapy"
fact last_dose_date: date "last dose"
fact expected_cycle_length_days: int unit days "cycle length"
fact largest_metastasis_cm: decimal unit cm "largest metastasis"
attestation consultant "prescribed by a consultant"
codeset TAVI: opcs4 = K26.2
codeset TAVI_APPROACH: opcs4 = Y49.4, Y53.1-Y53.9, Y79.1-Y79.4, Y79.8, Y79.9
codeset HEART_TRANSPLANT: opcs4 = K01, K02
codeset CHD: icd10 = Q20-Q28
codeset COLORECTAL: icd10 = C18-C20
codeset CETUXIMAB: drug = cetuximab
line NCBPS13A "Adult specialist cardiac services"
line NCBPS13T "Heart transplantation"
line NCBPS02Z "Cancer drugs"
service "7" "Adult specialist cardiac services" {
  lines NCBPS13A
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
  commissioner icb_delegated from 2024-04-01 in region "East of England", "Midlands", "North West"
  commissioner icb_delegated from 2025-04-01
}
service "56" "Heart transplantation" {
  lines NCBPS13T
  programme internal_medicine
  portfolio highly_specialised
  highly_specialised yes
  commissioner nhs_england from 2013-04-01
}
service "105" "Cancer drugs" {
  lines NCBPS02Z
  programme cancer_and_blood
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
}
rule transplant "Heart transplant" { line NCBPS13T rank 1 when dominant procedure in HEART_TRANSPLANT }
rule tavi "TAVI" { line NCBPS13A rank 2 when dominant procedure in TAVI and any procedure in TAVI_APPROACH }
rule chd "ACHD" { line NCBPS13A rank 3 when primary diagnosis in CHD and age >= 16 }
rule cetuximab "Cetuximab" { line NCBPS02Z rank 4 when any drug in CETUXIMAB }
policy "CET5" version 2 "Cetuximab" {
  effective from 2020-04-01
  governs NCBPS02Z
  rank 10
  applies when any diagnosis in COLORECTAL
  criteria all of {
    attested consultant
    ras_status is wild_type
    line_of_therapy == 1
  }
  when met: prior_approval via "Blueteq CET5"
  when not met: not_eligible
}
policy "CET5" version 1 "Cetuximab (2014)" {
  effective from 2014-04-01 to 2020-03-31
  governs NCBPS02Z
  rank 10
  applies when any diagnosis in COLORECTAL
  criteria line_of_therapy == 1
  when met: prior_approval via "CDF form"
  when not met: not_eligible
}
policy "BREAK" version 1 "Break in treatment" {
  effective from 2016-04-01
  governs NCBPS02Z
  rank 1
  applies when last_dose_date is known
  criteria decision_date - last_dose_date - expected_cycle_length_days <= 4 weeks
  when met: eligible
  when not met: prior_approval via "SSC1726"
}
"""


@pytest.fixture(scope="module")
def pack() -> Any:
    return build(PACK)


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"date": "2025-06-01", "patient": {"age": 60}}
    body.update(overrides)
    return body


def test_tavi_identified_and_commissioned_by_nhs_england_in_2020(pack: Any) -> None:
    d = pack.decide(request(date="2020-06-01", procedures=["K26.2", "Y53.1"]))
    assert (d.commissioner, d.service.line, d.eligibility) == (
        "nhs_england",
        "NCBPS13A",
        "not_applicable",
    )
    assert [r[0].rule for r in d.reasons][:2] == ["tavi", "tavi"]


def test_tavi_needs_the_approach_code(pack: Any) -> None:
    d = pack.decide(request(procedures=["K26.2", "Y50.1"]))
    assert (d.commissioner, d.service, d.eligibility) == ("icb_core", None, "not_applicable")


def test_delegation_by_region_and_year(pack: Any) -> None:
    tavi = ["K26.2", "Y79.1"]
    in_2024_region = pack.decide(
        request(date="2024-06-01", procedures=tavi, patient={"age": 80, "region": "Midlands"})
    )
    elsewhere_2024 = pack.decide(
        request(date="2024-06-01", procedures=tavi, patient={"age": 80, "region": "London"})
    )
    london_2025 = pack.decide(
        request(date="2025-04-01", procedures=tavi, patient={"age": 80, "region": "London"})
    )
    day_before = pack.decide(
        request(date="2024-03-31", procedures=tavi, patient={"age": 80, "region": "Midlands"})
    )
    assert in_2024_region.commissioner == "icb_delegated"
    assert elsewhere_2024.commissioner == "nhs_england"
    assert london_2025.commissioner == "icb_delegated"
    assert day_before.commissioner == "nhs_england"


def test_highly_specialised_wins_by_rank_and_stays_with_nhs_england(pack: Any) -> None:
    d = pack.decide(request(procedures=["K02.1", "K26.2", "Y53.1"]))
    assert d.commissioner == "nhs_england"
    assert d.service.highly_specialised and d.service.id == "56"


def test_age_boundary_on_identification(pack: Any) -> None:
    assert pack.decide(request(diagnoses=["Q21.1"], patient={"age": 16})).service.line == "NCBPS13A"
    assert pack.decide(request(diagnoses=["Q21.1"], patient={"age": 15})).service is None


def test_policy_met_gives_prior_approval_with_route(pack: Any) -> None:
    d = pack.decide(
        request(
            drugs=["Cetuximab"],
            diagnoses=["C18.7"],
            attestations=["consultant"],
            facts={"ras_status": "wild_type", "line_of_therapy": 1},
        )
    )
    assert (d.policy.id, d.policy.version, d.eligibility, d.route) == (
        "CET5",
        2,
        "prior_approval",
        "Blueteq CET5",
    )


def test_failed_criterion_decides_even_with_unknowns(pack: Any) -> None:
    d = pack.decide(
        request(drugs=["cetuximab"], diagnoses=["C18.7"], facts={"ras_status": "mutant"})
    )
    assert (d.eligibility, d.missing) == ("not_eligible", ())
    failing = [r for r in d.reasons if r[1] is False]
    assert [r[0].clause for r in failing] == ["ras_status is wild_type"]


def test_incomplete_lists_exactly_the_missing_inputs(pack: Any) -> None:
    d = pack.decide(
        request(drugs=["cetuximab"], diagnoses=["C18.7"], facts={"ras_status": "wild_type"})
    )
    assert d.eligibility == "incomplete"
    assert set(d.missing) == {"consultant", "line_of_therapy"}


def test_date_selects_the_policy_version(pack: Any) -> None:
    body = request(drugs=["cetuximab"], diagnoses=["C19"], facts={"line_of_therapy": 1})
    old = pack.decide({**body, "date": "2020-03-31"})
    new = pack.decide({**body, "date": "2020-04-01"})
    assert (old.policy.version, old.eligibility, old.route) == (1, "prior_approval", "CDF form")
    assert (new.policy.version, new.eligibility) == (2, "incomplete")


@pytest.mark.parametrize(
    ("days_since_dose", "cycle", "expected"),
    [
        (49, 21, "eligible"),  # exactly 4 weeks beyond the cycle
        (50, 21, "prior_approval"),  # one day more
        (21, 21, "eligible"),
    ],
)
def test_date_arithmetic_with_units(
    pack: Any, days_since_dose: int, cycle: int, expected: str
) -> None:
    import datetime as dt

    last = (dt.date(2025, 6, 1) - dt.timedelta(days=days_since_dose)).isoformat()
    d = pack.decide(
        request(
            drugs=["cetuximab"], facts={"last_dose_date": last, "expected_cycle_length_days": cycle}
        )
    )
    assert (d.policy.id, d.eligibility) == ("BREAK", expected)


def test_date_before_the_pack_is_not_covered(pack: Any) -> None:
    with pytest.raises(NotCoveredError, match="2013-04-01"):
        pack.decide(request(date="2013-03-31"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"date": "2025-02-30", "patient": {"age": 3}}, "date"),
        ({"patient": {"age": 3}}, "date"),
        ({"date": "2025-01-01", "patient": {}}, "patient"),
        ({"date": "2025-01-01", "patient": {"age": "3"}}, "patient.age"),
        ({"date": "2025-01-01", "patient": {"age": 3}, "colour": "red"}, "colour"),
        ({"date": "2025-01-01", "patient": {"age": 3}, "procedures": ["K2"]}, "procedures[0]"),
        ({"date": "2025-01-01", "patient": {"age": 3}, "facts": {"ras": "x"}}, "facts.ras"),
        (
            {"date": "2025-01-01", "patient": {"age": 3}, "facts": {"ras_status": 1}},
            "facts.ras_status",
        ),
        (
            {"date": "2025-01-01", "patient": {"age": 3}, "facts": {"line_of_therapy": 1.5}},
            "facts.line_of_therapy",
        ),
        (
            {"date": "2025-01-01", "patient": {"age": 3, "nhs_number": "9434765918"}},
            "patient.nhs_number",
        ),
        ({"date": "2025-01-01", "patient": {"age": 30, "birth_date": "2000-01-01"}}, "patient.age"),
        (
            {"date": "2025-01-01", "patient": {"age": 3}, "attestations": ["consultnt"]},
            "attestations[0]",
        ),
    ],
)
def test_bad_requests_name_the_field(pack: Any, body: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        pack.decide(body)
    assert field in [p.field for p in caught.value.details]


def test_valid_nhs_number_and_birth_date_accepted(pack: Any) -> None:
    d = pack.decide(
        {
            "date": "2025-06-01",
            "patient": {"birth_date": "1944-06-02", "nhs_number": "943 476 5919"},
            "diagnoses": ["Q21.1"],
        }
    )
    assert d.service.line == "NCBPS13A"


UNKNOWN_APPLIES = """
line LA "a"
service "1" "s" {
  lines LA
  programme trauma
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01
}
codeset PX: opcs4 = K26
rule r "r" { line LA rank 1 when dominant procedure in PX }
fact ras: enum(wild_type, mutant) "ras"
policy "NARROW" version 1 "n" {
  effective from 2013-04-01
  governs LA
  rank 1
  applies when ras is mutant
  when met: not_eligible
}
policy "GENERAL" version 1 "g" {
  effective from 2013-04-01
  governs LA
  rank 2
  when met: eligible
}
"""


def test_unknown_applicability_is_incomplete_not_the_next_policy() -> None:
    pack = build(UNKNOWN_APPLIES)
    body = {"date": "2025-06-01", "patient": {"age": 40}, "procedures": ["K26.1"]}
    unknown = pack.decide(body)
    assert (unknown.policy.id, unknown.eligibility, unknown.missing) == (
        "NARROW", "incomplete", ("ras",))
    assert pack.decide({**body, "facts": {"ras": "mutant"}}).eligibility == "not_eligible"
    general = pack.decide({**body, "facts": {"ras": "wild_type"}})
    assert (general.policy.id, general.eligibility) == ("GENERAL", "eligible")


@pytest.mark.parametrize(("body", "field"), [
    ({"date": "20250601", "patient": {"age": 3}}, "date"),
    ({"date": "2025-W10-1", "patient": {"age": 3}}, "date"),
    ({"date": "2025-06-01", "patient": {"birth_date": "1800-01-01"}}, "patient.birth_date"),
    ({"date": "2025-06-01", "patient": {"age": 3, "nhs_number": "٩٤٣٤٧٦٥٩١٩"}},
     "patient.nhs_number"),
    ({"date": "2025-06-01", "patient": {"age": 3}, "facts": {"line_of_therapy": float("nan")}},
     "facts.line_of_therapy"),
    ({"date": "2025-06-01", "patient": {"age": 3},
      "facts": {"largest_metastasis_cm": float("inf")}}, "facts.largest_metastasis_cm"),
])
def test_requests_the_review_found_accepted(pack: Any, body: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as caught:
        pack.decide(body)
    assert field in [p.field for p in caught.value.details]


def test_date_arithmetic_beyond_the_calendar_saturates_instead_of_crashing() -> None:
    pack = build(UNKNOWN_APPLIES.replace(
        'fact ras: enum(wild_type, mutant) "ras"',
        'fact last: date "last dose"\nfact cycle: int unit days "cycle"').replace(
        "applies when ras is mutant", "applies when last + cycle < decision_date"))
    body = {"date": "2025-06-01", "patient": {"age": 40}, "procedures": ["K26.1"]}
    far = pack.decide({**body, "facts": {"last": "2025-01-01", "cycle": 10_000_000}})
    near = pack.decide({**body, "facts": {"last": "2025-01-01", "cycle": 21}})
    assert (far.policy.id, near.policy.id) == ("GENERAL", "NARROW")


def test_three_millimetres_is_exactly_point_three_centimetres() -> None:
    pack = build(UNKNOWN_APPLIES.replace('fact ras: enum(wild_type, mutant) "ras"',
                                         'fact size: decimal unit cm "size"').replace(
        "applies when ras is mutant", "applies when size >= 3 mm"))
    body = {"date": "2025-06-01", "patient": {"age": 40}, "procedures": ["K26.1"]}
    assert pack.decide({**body, "facts": {"size": 0.3}}).policy.id == "NARROW"
    assert pack.decide({**body, "facts": {"size": 0.29}}).policy.id == "GENERAL"
