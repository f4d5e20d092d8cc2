"""One test per kind of diagnostic: position, message and hint a policy author acts on."""

from __future__ import annotations

from chalicelib.dsl.source import Diagnostic, SourceMap, render
from tests.conftest import HEADER, diagnose

BASE = """
fact ras_status: enum(wild_type, mutant, unknown) "RAS status"
fact who_performance_status: int "WHO performance status"
fact last_dose_date: date "date of the last dose"
attestation mdt_agreed "the MDT agreed"
codeset AORTIC_STENOSIS: icd10 = I35.0 source "https://example.org/codes"
codeset TAVI: opcs4 = K26.2 source "https://example.org/codes"
codeset VALVES: opcs4 = K25.1-K25.5, K26 source "https://example.org/codes"
line NCBPS13A "Adult specialist cardiac services" source "https://example.org/lines"
service "7" "Adult specialist cardiac services" {
  source "https://example.org/services"
  lines NCBPS13A
  programme internal_medicine
  portfolio acute
  highly_specialised no
  commissioner nhs_england from 2013-04-01 source "https://example.org/services"
}
"""
# Rules and policies the tests below add cite nothing; that warning has its own tests
# (tests/dsl/test_provenance.py), so the helpers here leave it out.
_NO_SOURCE = "cites no source"


def errors(text: str) -> list[Diagnostic]:
    return [d for d in diagnose(BASE + text) if d.severity == "error"]


def warnings(text: str) -> list[Diagnostic]:
    return [
        d for d in diagnose(BASE + text) if d.severity == "warning" and _NO_SOURCE not in d.message
    ]


def only(found: list[Diagnostic]) -> Diagnostic:
    assert len(found) == 1, [d.headline() for d in found]
    return found[0]


def test_base_is_clean() -> None:
    assert diagnose(BASE) == []


def test_syntax_error_has_position_and_human_hint() -> None:
    diag = only(diagnose('fact x: int "a"\nrule broken "x" { line NCBPS13A rank 1 when age >= }\n'))
    assert diag.span.line == 3 and diag.span.col > 40
    assert "unexpected `}`" in diag.message
    assert "expected" in diag.hint and "Token" not in diag.hint


def test_syntax_error_on_uppercase_fact_name_suggests_case() -> None:
    diag = only(diagnose('fact Ras: bool "x"\n'))
    assert "lowercase" in diag.hint


def test_missing_closing_brace() -> None:
    diag = only(diagnose('service "1" "x" {\n  programme trauma\n'))
    assert "}" in diag.hint


def test_unknown_code_set_with_did_you_mean() -> None:
    diag = only(
        errors('rule r "r" { line NCBPS13A rank 1 when primary diagnosis in AORTIC_STENOSYS }\n')
    )
    assert diag.message == "unknown code set `AORTIC_STENOSYS`"
    assert diag.hint == "did you mean `AORTIC_STENOSIS`?"
    rendered = render([diag], SourceMap({"t.pss": HEADER + BASE + "rule r ...\n"}))
    assert rendered.startswith(f"t.pss:{diag.span.line}:{diag.span.col}: error:")


def test_enum_compared_with_number_is_a_type_error() -> None:
    diag = only(errors(_policy("ras_status == 1")))
    assert "`ras_status` is one of wild_type, mutant, unknown" in diag.message
    assert "ras_status is" in diag.hint


def test_number_compared_with_string_is_a_type_error() -> None:
    diag = only(errors(_policy('age >= "x"')))
    assert diag.message == "cannot compare a quantity in months with a string"


def test_unknown_enum_value_suggests_the_right_one() -> None:
    diag = only(errors(_policy("ras_status is wild_typ")))
    assert "did you mean `wild_type`" in diag.hint


def test_facts_are_not_allowed_in_identification_rules() -> None:
    diag = only(errors('rule r "r" { line NCBPS13A rank 1 when who_performance_status <= 2 }\n'))
    assert "identification rules may only use activity" in diag.message


def test_malformed_codes_are_reported_at_the_code() -> None:
    found = errors("codeset BAD: opcs4 = K26.2, K2X.1\ncodeset BAD2: icd10 = C20-C18\n")
    assert [d.message for d in found] == [
        "`K2X.1` is not a valid opcs4 code",
        "`C20-C18` is not a range: both ends must be at the same level and the first must "
        "not come after the second",
    ]


def test_rules_with_equal_rank_that_overlap_are_ambiguous() -> None:
    diag = only(
        errors(
            'rule a "a" { line NCBPS13A rank 5 when dominant procedure in TAVI }\n'
            'rule b "b" { line NCBPS13A rank 5 when any procedure in VALVES and age >= 18 }\n'
        )
    )
    assert "no precedence between them (both rank 5)" in diag.message


def test_rules_on_disjoint_dominant_codes_do_not_overlap() -> None:
    assert (
        errors(
            'rule a "a" { line NCBPS13A rank 5 when dominant procedure in TAVI }\n'
            'rule b "b" { line NCBPS13A rank 5 when dominant procedure in ("K25.1") }\n'
        )
        == []
    )


def test_rule_shadowed_by_an_earlier_rule_is_a_warning() -> None:
    diag = only(
        warnings(
            'rule broad "b" { line NCBPS13A rank 1 when any procedure in VALVES }\n'
            'rule narrow "n" { line NCBPS13A rank 2 when dominant procedure in TAVI and age >= 18 }\n'
        )
    )
    assert diag.message.startswith("rule `narrow` can never apply: rule `broad` (rank 1)")


def test_contradictory_thresholds_can_never_be_true() -> None:
    diag = only(errors(_policy("age >= 18 and age < 16")))
    assert "`age >= 18` and `age < 16` cannot both hold" in diag.message


def test_contradiction_in_all_of_group_with_units() -> None:
    diag = only(
        errors(
            _policy(
                "all of { decision_date - last_dose_date > 4 weeks  decision_date - last_dose_date "
                "<= 28 days }"
            )
        )
    )
    assert "cannot both hold" in diag.message


def test_overlapping_versions_of_one_policy() -> None:
    text = _policy("age >= 18", version=1, start="2014-04-01", end="2020-03-31")
    text += _policy("age >= 18", version=2, start="2020-01-01")
    diag = only(errors(text))
    assert "versions 1 and 2 of policy `P1` are both in force on 2020-01-01" in diag.message


def test_highly_specialised_service_must_stay_with_nhs_england() -> None:
    diag = only(
        errors(
            'service "56" "Heart transplantation" {\n  programme internal_medicine\n'
            "  portfolio highly_specialised\n  highly_specialised yes\n"
            "  commissioner nhs_england from 2013-04-01\n"
            "  commissioner icb_delegated from 2025-04-01\n}\n"
        )
    )
    assert "highly specialised service is commissioned by NHS England" in diag.message


def test_unknown_line_code_is_rejected() -> None:
    diag = only(errors(_policy("age >= 18").replace("governs NCBPS13A", "governs NCBPS13Q")))
    assert diag.message == "unknown service line `NCBPS13Q`"


def test_prior_approval_needs_a_route() -> None:
    diag = only(errors(_policy("age >= 18").replace(' via "Blueteq X"', "")))
    assert diag.message == "`prior_approval` needs a route"


def test_all_problems_reported_at_once() -> None:
    found = errors(_policy('ras_status == 1 and attested mdt_agred and who >= "x"'))
    assert len(found) == 3


def test_months_and_days_do_not_compare() -> None:
    diag = only(errors(_policy("decision_date - last_dose_date > 6 months")))
    assert diag.message == "cannot compare days with months"


def _policy(criteria: str, version: int = 1, start: str = "2014-04-01", end: str = "") -> str:
    to = f" to {end}" if end else ""
    return (
        f'policy "P1" version {version} "Test" {{\n  effective from {start}{to}\n'
        f"  governs NCBPS13A\n  criteria {criteria}\n"
        '  when met: prior_approval via "Blueteq X"\n}\n'
    )


def test_impossible_date_in_a_condition_is_reported_at_the_date() -> None:
    diag = only(errors(_policy("decision_date >= 2025-02-30")))
    assert diag.message == "`2025-02-30` is not a real date"
    assert diag.span.col > 10


def test_expected_values_are_checked() -> None:
    found = errors(
        'test "t" {\n  given {"date": "2025-01-01", "patient": {"age": 3}}\n'
        "  expect eligibility maybe\n  expect commissioner nhs_englnd\n}\n"
    )
    assert [d.message for d in found] == ["`maybe` is not a possible eligibility",
                                          "`nhs_englnd` is not a possible commissioner"]
    assert found[1].hint == "did you mean `nhs_england`?"


def test_bool_written_yes_and_true_is_not_a_contradiction() -> None:
    text = 'fact flag: bool "f"\n' + _policy("flag is yes and flag is true")
    assert errors(text) == []


def test_age_in_years_and_months_compare_in_the_overlap_check() -> None:
    line_b = ('line NCBPS13B "b"\nservice "8" "b" {\n  lines NCBPS13B\n  programme trauma\n'
              "  portfolio acute\n  highly_specialised no\n"
              "  commissioner nhs_england from 2013-04-01\n}\n")
    disjoint = line_b + ('rule a "a" { line NCBPS13A rank 1 when age >= 18 }\n'
                         'rule b "b" { line NCBPS13B rank 1 when age < 2 years }\n')
    assert errors(disjoint) == []
    overlapping = line_b + ('rule a "a" { line NCBPS13A rank 1 when age >= 1 year }\n'
                            'rule b "b" { line NCBPS13B rank 1 when age < 6 }\n')
    assert "no precedence between them" in only(errors(overlapping)).message


def test_a_yes_no_fact_compared_is_the_one_named() -> None:
    diag = only(errors('fact flag: bool "f"\n' + _policy("age >= flag")))
    assert diag.message.startswith("`flag` is yes/no and cannot be compared with a quantity")


def test_a_comparison_left_without_its_value_says_it_runs_on_to_the_next_line() -> None:
    # `age >=` at the end of a line takes the next clause as its value.
    text = 'fact flag: bool "f"\n' + _policy("all of {\n    age >=\n    flag\n  }")
    diag = only(errors(text))
    assert diag.message.startswith("`flag` is yes/no")
    assert diag.hint == (f"the comparison runs on to line {diag.span.line + 1}: is a value "
                         f"missing after the operator on line {diag.span.line}?")
