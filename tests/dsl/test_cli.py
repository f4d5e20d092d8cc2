"""The `pss` commands: exit codes, diagnostics with carets, JUnit XML, fmt --check, eval."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chalicelib.cli import main
from tests.dsl.test_semantics import PACK

HEADER = 'pack "p" version "1" covers from 2013-04-01\n'
TESTS = """
test "TAVI in 2020" {
  given {"date": "2020-06-01", "patient": {"age": 81}, "procedures": ["K26.2", "Y53.1"]}
  expect commissioner nhs_england
  expect line NCBPS13A
}
test "wrong on purpose" {
  given {"date": "2020-06-01", "patient": {"age": 81}, "procedures": ["W37.1"]}
  expect commissioner nhs_england
}
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "pack.pss").write_text(HEADER + PACK, encoding="utf-8")
    return folder


def test_check_ok(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(pack)]) == 0
    assert "ok — 3 services" in capsys.readouterr().out


def test_check_broken_file_exits_1_with_position_caret_and_hint(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pack / "broken.pss").write_text(
        'rule r "r" {\n  line NCBPS13A\n  rank 9\n  when primary diagnosis in COLORECTL\n}\n',
        encoding="utf-8",
    )
    assert main(["check", str(pack)]) == 1
    err = capsys.readouterr().err
    assert "policies/broken.pss:4:8: error: unknown code set `COLORECTL`" in err
    assert "^^^^" in err and "hint: did you mean `COLORECTAL`?" in err


def test_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["check", str(tmp_path / "nope")]) == 2


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


def test_test_reports_failures_and_writes_junit(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pack / "tests.pss").write_text(TESTS, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    assert main(["test", str(pack), "--junit", str(junit), "--coverage"]) == 1
    out = capsys.readouterr().out
    assert "FAIL policies/tests.pss:7: wrong on purpose" in out
    assert "expected commissioner nhs_england, got icb_core" in out
    assert "1/2 tests passed" in out and "clause coverage:" in out
    suite = ET.parse(junit).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "2", "1")
    assert len(suite.findall("testcase/failure")) == 1
    cases = suite.findall("testcase")
    # classname: the file's stem (no dots for Jenkins to split on); name: the test's title
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("tests", "TAVI in 2020"), ("tests", "wrong on purpose")]
    assert [c.get("line") for c in cases] == ["2", "7"]  # TESTS opens with a newline
    assert all(c.get("file", "").endswith("tests.pss") for c in cases)
    times = [float(c.get("time", "-1")) for c in cases]
    assert all(t >= 0 for t in times)
    assert float(suite.get("time", "-1")) == pytest.approx(sum(times), abs=1e-5)


def test_junit_time_is_what_the_timer_measured() -> None:
    from chalicelib.testing import TestResult, junit_xml

    results = [TestResult("A title. With dots", "policies/tests/cancer.pss:3", (), 0.25),
               TestResult("Another", "policies/tests/cancer.pss:9", ("expected x",), 1.5)]
    suite = ET.fromstring(junit_xml(results))
    assert suite.get("time") == "1.750000"
    first, second = suite.findall("testcase")
    assert (first.get("classname"), first.get("name"), first.get("time")) == (
        "cancer", "A title. With dots", "0.250000")
    assert second.find("failure").text == "policies/tests/cancer.pss:9\nexpected x"


def test_fmt_check_then_fix(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / "messy.pss").write_text('fact   x : int "x"', encoding="utf-8")
    assert main(["fmt", "--check", str(pack)]) == 1
    assert main(["fmt", str(pack)]) == 0
    assert (pack / "messy.pss").read_text(encoding="utf-8") == 'fact x: int "x"\n'
    assert main(["fmt", "--check", str(pack)]) == 0


def test_eval_explains(pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = tmp_path / "case.json"
    case.write_text(
        json.dumps(
            {
                "date": "2025-06-01",
                "patient": {"age": 70},
                "drugs": ["cetuximab"],
                "diagnoses": ["C18.7"],
                "facts": {"ras_status": "mutant"},
            }
        ),
        encoding="utf-8",
    )
    assert main(["eval", str(case), "--policies", str(pack), "--explain"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["eligibility"] == "not_eligible"  # stdout is pure JSON
    assert "✗ ras_status is wild_type  [CET5]" in captured.err


def test_eval_bad_request_is_a_usage_error(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "case.json"
    case.write_text('{"date": "2025-13-01", "patient": {"age": 1}}', encoding="utf-8")
    assert main(["eval", str(case), "--policies", str(pack)]) == 2
    assert "date:" in capsys.readouterr().err


def test_bundle_caches_the_ast_and_a_stale_cache_is_ignored(pack: Path, tmp_path: Path) -> None:
    from chalicelib.dsl.loader import AST_CACHE, load_pack

    target = tmp_path / "bundle"
    assert main(["bundle", str(pack), "--output", str(target)]) == 0
    bundled = target / "policies"
    assert (target / "pss.lark").is_file() and (bundled / AST_CACHE).is_file()
    assert (target / "DIGEST").read_text().strip() == load_pack(bundled).digest
    # Edit a policy after bundling: the cached AST no longer matches and must not be used.
    source = bundled / "pack.pss"
    source.write_text(source.read_text().replace("rank 2 when", "rank 7 when"), encoding="utf-8")
    ranks = {r.name: r.rank for r in load_pack(bundled).checked.rules}
    assert ranks["tavi"] == 7


def test_check_rejects_a_test_whose_request_is_invalid(
    pack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pack / "tests.pss").write_text(
        'test "bad ras" {\n  given {"date": "2025-06-01", "patient": {"age": 60}, '
        '"facts": {"ras_status": "wildtype"}}\n  expect eligibility incomplete\n}\n',
        encoding="utf-8")
    assert main(["check", str(pack)]) == 1
    err = capsys.readouterr().err
    assert "policies/tests.pss:1:6: error: test `bad ras` gives an invalid request: " in err
    assert "facts.ras_status: must be one of: wild_type, mutant, unknown" in err


def test_a_junit_file_that_cannot_be_written_is_a_usage_error(
    pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["test", str(pack), "--junit", str(tmp_path / "no" / "x.xml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pss test: error: cannot write") and "Traceback" not in err


def test_a_reader_that_goes_away_ends_the_command_quietly(pack: Path) -> None:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "chalicelib.cli", "test", str(pack)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `pss test ... | true`
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports it
    assert "Traceback" not in err and "BrokenPipeError" not in err
