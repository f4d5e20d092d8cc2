"""Hostile policy text: `pss check` exits 1 with a located message, never a traceback or hang.

Each case of issue 10: 10,000 nested groups, 10,000 `not`s, a 5,000-term `-` chain, `given`
JSON 10,000 deep, a 5,000-digit integer, byte-order marks. Limits are those of
`chalicelib.limits`; text just inside them still checks, compiles and decides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.cli import main
from chalicelib.limits import MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_NESTING
from tests.conftest import build, diagnose
from tests.dsl.test_semantics import PACK

HEADER = 'pack "p" version "1" covers from 2013-04-01\n'


def _rule(condition: str) -> str:
    return f'rule deep "deep" {{ line NCBPS13A rank 9 when {condition} }}\n'


def _policy(criteria: str) -> str:
    return ('policy "DEEP" version 1 "deep" {\n effective from 2020-04-01\n governs NCBPS02Z\n'
            f" rank 5\n criteria {criteria}\n when met: eligible\n when not met: not_eligible\n}}\n")


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> str:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    (folder / "pack.pss").write_text(text, encoding="utf-8")
    code = main(["check", str(folder)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output and "RecursionError" not in output
    assert code == 1, output
    return output


HOSTILE = {
    "10,000 nested all of": (_rule("all of { " * 10_000 + "age >= 1" + " }" * 10_000),
                             f"nesting deeper than {MAX_NESTING}"),
    "10,000 not": (_rule("not " * 10_000 + "attested consultant"),
                   f"nesting deeper than {MAX_NESTING}"),
    "5,000-term minus chain": (_policy("line_of_therapy" + " - line_of_therapy" * 5_000 + " > 1"),
                               f"nesting deeper than {MAX_NESTING}"),
    "given JSON 10,000 deep": ('test "t" { given {"a": ' + "[" * 10_000 + "]" * 10_000
                               + "} expect commissioner none }\n",
                               f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
    "5,000-digit rank": (_rule("age >= 1").replace("rank 9", "rank " + "9" * 5_000),
                         "a number of 5,000 digits is too long"),
    "5,000-digit quantity": (_rule("age >= " + "9" * 5_000), "a number of 5,000 digits is too long"),
    "5,000-digit JSON number": ('test "t" { given {"a": ' + "9" * 5_000
                                + "} expect commissioner none }\n",
                                "a number of 5,000 digits is too long"),
    "huge exponent": ('test "t" { given {"a": 1e999} expect commissioner none }\n',
                      "`1e999` is out of range"),
    "BOM inside the text": ("\ufeff" + _rule("age >= 1"), "unexpected character U+FEFF BYTE ORDER MARK"),
    "zero-width space": ("rule\u200b" + _rule("age >= 1"), "unexpected character U+200B ZERO WIDTH SPACE"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_is_a_located_error(name: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    text, message = HOSTILE[name]
    output = _check(tmp_path, HEADER + PACK + text, capsys)
    headline = next(x for x in output.splitlines() if ": error: " in x)
    assert headline.startswith(str(tmp_path.name) + "/policies/pack.pss:") or "pack.pss:" in headline
    file_line_col = headline.split(": error: ")[0].rsplit("pack.pss:", 1)[1]
    assert all(part.isdigit() and int(part) > 0 for part in file_line_col.split(":")), headline
    assert message in headline, output


def test_a_byte_order_mark_at_the_start_is_accepted(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "pack.pss").write_text("\ufeff" + HEADER + PACK, encoding="utf-8")
    assert main(["check", str(folder)]) == 0, capsys.readouterr()


def test_a_diagnostic_after_a_leading_bom_keeps_its_column() -> None:
    found = diagnose("\ufeffrule x \"x\" { line NOPE rank 1 when age >= 1 }\n", header=False)
    assert any(d.span.line == 1 and d.span.col == 6 for d in found), found


def test_nesting_at_the_limit_checks_compiles_and_decides() -> None:
    criteria = "all of { " * MAX_NESTING + "line_of_therapy >= 2" + " }" * MAX_NESTING
    pack = build(PACK + _policy(criteria))
    decision = pack.decide({"date": "2025-06-01", "patient": {"age": 60}, "drugs": ["cetuximab"],
                            "diagnoses": ["C18.1"], "facts": {"line_of_therapy": 2}})
    assert decision.policy is not None and decision.policy.id == "DEEP"
    assert decision.eligibility == "eligible"


def test_one_level_past_the_limit_is_refused_at_the_innermost_group() -> None:
    criteria = "all of { " * (MAX_NESTING + 1) + "line_of_therapy >= 2" + " }" * (MAX_NESTING + 1)
    found = [d for d in diagnose(PACK + _policy(criteria)) if d.severity == "error"]
    assert [d.message for d in found] == [f"nesting deeper than {MAX_NESTING}"]
    line = (PACK + _policy(criteria)).splitlines().index(f" criteria {criteria}") + 2
    assert found[0].span.line == line
    assert found[0].span.col == len(" criteria ") + 1 + len("all of { ") * MAX_NESTING


def test_numbers_at_the_digit_limit_are_fine() -> None:
    pack = build(PACK + _rule("age >= 1").replace("rank 9", "rank " + "9" * MAX_INT_DIGITS))
    assert max(r.rank for r in pack.checked.rules) == int("9" * MAX_INT_DIGITS)


def test_pss_eval_of_a_case_nested_10000_deep_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "pack.pss").write_text(HEADER + PACK, encoding="utf-8")
    case = tmp_path / "case.json"
    case.write_text('{"date": ' + "[" * 10_000 + "]" * 10_000 + "}", encoding="utf-8")
    code = main(["eval", str(case), "--policies", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().endswith(f"nests deeper than {MAX_JSON_DEPTH} levels")
    assert len(err.strip().splitlines()) == 1


def test_a_file_that_is_not_utf8_is_located_at_the_bad_byte(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "pack.pss").write_bytes((HEADER + PACK).encode() + b"# caf\xe9\n")
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr()
    lines = (HEADER + PACK).count("\n") + 1
    assert f"policies/pack.pss:{lines}:6: error: not valid UTF-8 text: byte 0xe9" in (
        out.out + out.err)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/etc/hostname", "codes/\\u0000.csv",
                                  "a" * 300 + ".csv", "codes/x.csv/y.csv", "\\u202ecodes.csv"])
def test_hostile_code_file_names_are_a_located_error(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + PACK + f'codeset HOSTILE: drug = file "{name}"\n'
    output = _check(tmp_path, text, capsys)
    assert "\0" not in output and "\u202e" not in output
    line = text.count("\n")
    assert f"policies/pack.pss:{line}:30: error: cannot read code file `" in output, output
