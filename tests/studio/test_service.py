"""The studio's use cases over the national pack: check, test, decide, what-if, export, save."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.whatif import WhatIfService
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import Problem, PssError
from chalicelib.limits import PACK_FILE_RULE
from chalicelib.studio.service import StudioService
from chalicelib.studio.workspace import Workspace
from chalicelib.testing import run_tests
from tests.studio.conftest import POLICIES, WHO_LIMIT, WHO_LIMIT_EDITED, cancer_with, example
from tests.support.pack_names import HOSTILE_PACK_FILE_NAMES


def body(reply: Any) -> dict[str, Any]:
    data: dict[str, Any] = reply.body.model_dump(mode="json")
    return data


def problems(exc: pytest.ExceptionInfo[PssError]) -> dict[str, str]:
    return {d.field: d.problem for d in exc.value.details}


def test_files_lists_every_pack_file_as_on_disk_and_the_examples(studio: StudioService) -> None:
    data = body(studio.files())
    on_disk = sorted(f"policies/{p.relative_to(POLICIES).as_posix()}" for p in POLICIES.rglob("*")
                     if p.suffix in (".pss", ".csv"))
    assert [f["path"] for f in data["files"]] == on_disk
    cardiac = next(f for f in data["files"] if f["path"] == "policies/cardiac.pss")
    assert cardiac["text"] == (POLICIES / "cardiac.pss").read_text()
    assert "tavi" in {e["name"] for e in data["examples"]}
    assert data["pack"]["folder"] == "policies" and data["can_save"] is False


def test_check_of_the_served_pack_finds_no_error(studio: StudioService) -> None:
    data = body(studio.check({"files": {}}))
    assert data["ok"] is True and data["errors"] == 0


def test_a_syntax_error_is_located_at_its_line_and_column(studio: StudioService,
                                                         workspace: Workspace) -> None:
    text = workspace.texts["policies/cardiac.pss"] + 'rule broken "x" { line NCBPS13A rank 5 when age >= }\n'
    line = text.count("\n")
    data = body(studio.check({"files": {"policies/cardiac.pss": text}}))
    assert data["ok"] is False
    [problem] = data["diagnostics"]
    assert (problem["file"], problem["line"]) == ("policies/cardiac.pss", line)
    assert text.splitlines()[line - 1][problem["col"] - 1] == "}"
    assert problem["headline"].startswith(f"policies/cardiac.pss:{line}:{problem['col']}: error:")


def test_an_unknown_code_set_says_did_you_mean(studio: StudioService,
                                               workspace: Workspace) -> None:
    text = workspace.texts["policies/cardiac.pss"].replace(
        "dominant procedure in TAVI_VALVE", "dominant procedure in TAVI_VALVES", 1)
    data = body(studio.check({"files": {"policies/cardiac.pss": text}}))
    [problem] = [d for d in data["diagnostics"] if d["severity"] == "error"]
    assert "TAVI_VALVES" in problem["message"] and "TAVI_VALVE" in problem["hint"]
    assert "TAVI_VALVES" in text.splitlines()[problem["line"] - 1][problem["col"] - 1:]


def test_check_also_rejects_a_test_whose_request_could_never_run(studio: StudioService,
                                                               workspace: Workspace) -> None:
    text = workspace.texts["policies/tests/cardiac.pss"].replace('"age": 81', '"age": "old"', 1)
    assert text != workspace.texts["policies/tests/cardiac.pss"]
    data = body(studio.check({"files": {"policies/tests/cardiac.pss": text}}))
    assert any("invalid request" in d["message"] for d in data["diagnostics"])
    with pytest.raises(PssError) as exc:
        studio.test({"files": {"policies/tests/cardiac.pss": text}})
    assert exc.value.status == 400


def _what_if_refusal(served: PolicySet, files: dict[str, str]) -> list[Problem]:
    with pytest.raises(PssError) as exc:
        WhatIfService(served, POLICIES).run({"files": files, "cases": [example("tavi")]})
    assert exc.value.status == 400
    return list(exc.value.details)


@pytest.mark.parametrize("case", list(HOSTILE_PACK_FILE_NAMES))
@pytest.mark.parametrize("use", ["check", "test", "decide", "export"])
def test_the_studio_refuses_each_name_what_if_refuses_with_the_same_problem(
        studio: StudioService, served: PolicySet, case: str, use: str) -> None:
    files = {HOSTILE_PACK_FILE_NAMES[case]: "# nothing\n"}
    refused = _what_if_refusal(served, files)
    assert [p.problem for p in refused] == [PACK_FILE_RULE]
    body: dict[str, Any] = {"files": files}
    if use == "decide":
        body["case"] = example("tavi")
    if use == "export":
        body["format"] = "diff"
    with pytest.raises(PssError) as exc:
        getattr(studio, use)(body)
    assert exc.value.status == 400 and list(exc.value.details) == refused


def test_the_studio_refuses_a_text_what_if_refuses_with_the_same_problem(
        studio: StudioService, served: PolicySet) -> None:
    files = {"policies/tests/cardiac.pss": "# \0\n", "policies/x.pss/y.pss": ""}
    refused = _what_if_refusal(served, files)
    assert [p.field for p in refused] == [f"files.{name}" for name in files]
    with pytest.raises(PssError) as exc:
        studio.check({"files": files})
    assert list(exc.value.details) == refused


def test_files_are_named_under_policies_whatever_the_folder_is_called(
        served: PolicySet, tmp_path: Path) -> None:
    folder = tmp_path / "my-pack"
    (folder / "tests").mkdir(parents=True)
    (folder / "cardiac.pss").write_text("# a\n")
    (folder / "tests" / "cardiac.pss").write_text("# b\n")
    workspace = Workspace.snapshot(served, folder)
    assert dict(workspace.texts) == {"policies/cardiac.pss": "# a\n",
                                     "policies/tests/cardiac.pss": "# b\n"}
    assert workspace.changed({"policies/cardiac.pss": "# c\n", "policies/tests/cardiac.pss": "# b\n"}
                             ) == {"policies/cardiac.pss": "# c\n"}


@pytest.mark.parametrize(("raw", "field"), [
    ({"files": {}, "extra": 1}, "extra"),
    ({"files": ["policies/a.pss"]}, "files"),
    ({"files": {"policies/a.pss": 3}}, "files.policies/a.pss"),
    ([], "body"),
])
def test_malformed_bodies_name_the_field(studio: StudioService, raw: Any, field: str) -> None:
    with pytest.raises(PssError) as exc:
        studio.check(raw)
    assert exc.value.status == 400 and field in problems(exc)


def test_tests_of_the_served_pack_all_pass_with_full_coverage(studio: StudioService,
                                                             served: PolicySet) -> None:
    data = body(studio.test({"files": {}}))
    assert data["total"] == len(run_tests(served)) and data["failed"] == 0
    assert data["passed"] == data["total"] > 100
    assert data["coverage"]["covered"] == data["coverage"]["clauses"] > 0


def test_a_broken_expectation_fails_with_what_came_back(studio: StudioService,
                                                        workspace: Workspace) -> None:
    text = workspace.texts["policies/tests/cardiac.pss"]
    edited = text.replace("expect commissioner nhs_england", "expect commissioner icb_core", 1)
    assert edited != text
    data = body(studio.test({"files": {"policies/tests/cardiac.pss": edited}}))
    assert data["failed"] == 1 and data["passed"] == data["total"] - 1
    [failure] = data["failures"]
    assert failure["at"].startswith("policies/tests/cardiac.pss:")
    assert failure["failures"] == ["expected commissioner icb_core, got nhs_england"]


def test_decide_answers_what_the_library_answers(studio: StudioService,
                                                 served: PolicySet) -> None:
    case = example("cet5_cetuximab")
    data = body(studio.decide({"files": {}, "case": case}))
    expected = served.decide(case).to_dict()
    assert data["eligibility"] == expected["eligibility"] == "prior_approval"
    assert data["reasons"] == expected["reasons"]
    assert all(r["at"].startswith("policies/") for r in data["reasons"])


def test_decide_uses_the_edited_pack(studio: StudioService, workspace: Workspace) -> None:
    case = example("cet5_cetuximab")
    before = body(studio.decide({"files": {}, "case": case}))
    edits = cancer_with(workspace, 'via "Blueteq CET5"', 'via "Blueteq CET5 (edited)"')
    after = body(studio.decide({"files": edits, "case": case}))
    assert before["route"] == "Blueteq CET5" and after["route"] == "Blueteq CET5 (edited)"


def test_decide_reports_bad_referrals_by_field(studio: StudioService) -> None:
    case = {**example("tavi"), "patient": {"age": "eighty"}}
    with pytest.raises(PssError) as exc:
        studio.decide({"files": {}, "case": case})
    assert exc.value.status == 400 and "case.patient.age" in problems(exc)
    with pytest.raises(PssError) as exc:
        studio.decide({"files": {}, "case": {**example("tavi"), "date": "2010-01-01"}})
    assert exc.value.status == 422 and "case.date" in problems(exc)


def test_a_pack_with_errors_is_not_decided(studio: StudioService, workspace: Workspace) -> None:
    edits = cancer_with(workspace, "codeset CETUXIMAB:", "codeset CETUXIMAB")
    with pytest.raises(PssError) as exc:
        studio.decide({"files": edits, "case": example("tavi")})
    assert exc.value.status == 400 and "files" in problems(exc)


def test_what_if_shows_the_cases_a_threshold_moves(studio: StudioService,
                                                   workspace: Workspace) -> None:
    edits = cancer_with(workspace, WHO_LIMIT, WHO_LIMIT_EDITED)
    data = body(studio.what_if({"files": edits, "synth": {"rows": 20000, "seed": 1}}))
    assert data["cases"] == 20000 and data["changed"] > 0
    assert data["changed"] == sum(m["cases"] for m in data["eligibility"])
    line = workspace.texts["policies/cancer.pss"].splitlines().index(f"    {WHO_LIMIT}") + 1
    assert all(f"at policies/cancer.pss:{line}" in c["clause"] for c in data["top_changed"])
    assert data["base"] != data["head"]
    # Eligibility moved within one service line: the report's chart says nothing moved.
    assert "No activity moved" in data["chart_svg"]


def test_what_if_charts_activity_an_age_threshold_moves_out_of_a_line(
        studio: StudioService, workspace: Workspace) -> None:
    text = workspace.texts["policies/cardiac.pss"]
    old = "primary diagnosis in CONGENITAL_HEART and age >= 16"
    edits = {"policies/cardiac.pss": text.replace(old, old.replace("16", "30"))}
    data = body(studio.what_if({"files": edits, "synth": {"rows": 20000, "seed": 1}}))
    assert data["changed"] > 0
    assert {"old": "NCBPS13N", "new": "(none)", "cases": data["changed"]} in data["service_line"]
    assert 0 < data["shift"]["nhs_england_to_icb"] <= data["changed"]
    assert data["chart_svg"].startswith("<svg") and ">NCBPS13N</text>" in data["chart_svg"]


def test_what_if_of_the_unchanged_pack_moves_nothing(studio: StudioService) -> None:
    data = body(studio.what_if({"files": {}, "synth": {"rows": 500, "seed": 3}}))
    assert data["cases"] == 500 and data["changed"] == 0 and data["top_changed"] == []


def test_what_if_reads_an_uploaded_csv(studio: StudioService, workspace: Workspace) -> None:
    from pss_dev.synth import write_csv

    text = io.StringIO()
    write_csv(text, 300, 9)
    data = body(studio.what_if({"files": {}, "csv": text.getvalue()}))
    assert data["cases"] == 300
    with pytest.raises(PssError) as exc:
        studio.what_if({"files": {}, "csv": "not,an,activity\nfile\n"})
    assert exc.value.status == 400 and "csv" in problems(exc)


@pytest.mark.parametrize("corpus", [
    {}, {"synth": {"rows": 10}, "csv": "a"}, {"synth": {"rows": 0}},
    {"synth": {"rows": "10"}}, {"synth": {"rows": 10_000_000}}, {"synth": {"rows": 5, "x": 1}},
])
def test_what_if_corpus_is_validated(studio: StudioService, corpus: dict[str, Any]) -> None:
    with pytest.raises(PssError) as exc:
        studio.what_if({"files": {}, **corpus})
    assert exc.value.status == 400 and exc.value.details


def test_the_diff_download_applies_with_git_apply(studio: StudioService, workspace: Workspace,
                                                  pack_copy: Path) -> None:
    edits = cancer_with(workspace, WHO_LIMIT, WHO_LIMIT_EDITED)
    download = studio.export({"files": edits, "format": "diff"})
    assert download.filename.endswith(".diff")
    patch = download.body.decode()
    assert f"-    {WHO_LIMIT}\n" in patch and f"+    {WHO_LIMIT_EDITED}\n" in patch
    (pack_copy.parent / "change.diff").write_bytes(download.body)
    done = subprocess.run(["git", "apply", "change.diff"], cwd=pack_copy.parent,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (pack_copy / "cancer.pss").read_text() == edits["policies/cancer.pss"]


def test_the_files_download_holds_only_the_changed_files(studio: StudioService,
                                                         workspace: Workspace) -> None:
    edits = {**cancer_with(workspace, WHO_LIMIT, WHO_LIMIT_EDITED),
             "policies/cardiac.pss": workspace.texts["policies/cardiac.pss"]}  # unchanged
    download = studio.export({"files": edits, "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(download.body)) as archive:
        assert archive.namelist() == ["policies/cancer.pss"]
        assert archive.read("policies/cancer.pss").decode() == edits["policies/cancer.pss"]


def test_nothing_to_download_without_a_change(studio: StudioService) -> None:
    with pytest.raises(PssError) as exc:
        studio.export({"files": {}, "format": "diff"})
    assert exc.value.status == 400


def test_saving_is_refused_when_off(studio: StudioService, workspace: Workspace) -> None:
    edits = cancer_with(workspace, WHO_LIMIT, WHO_LIMIT_EDITED)
    with pytest.raises(PssError) as exc:
        studio.save({"files": edits, "confirm": True})
    assert exc.value.status == 403


def test_save_writes_only_on_confirmation(saving_studio: StudioService, pack_copy: Path) -> None:
    text = (pack_copy / "cancer.pss").read_text()
    edits = {"policies/cancer.pss": text.replace(WHO_LIMIT, WHO_LIMIT_EDITED)}
    with pytest.raises(PssError) as exc:
        saving_studio.save({"files": edits})
    assert exc.value.status == 400 and (pack_copy / "cancer.pss").read_text() == text
    data = body(saving_studio.save({"files": edits, "confirm": True}))
    assert data["saved"] == ["policies/cancer.pss"]
    assert (pack_copy / "cancer.pss").read_text() == edits["policies/cancer.pss"]
    assert not [p for p in pack_copy.iterdir() if p.name.startswith(".cancer.pss")]


def test_save_refuses_a_pack_that_fails_check(saving_studio: StudioService,
                                              pack_copy: Path) -> None:
    text = (pack_copy / "cancer.pss").read_text()
    with pytest.raises(PssError) as exc:
        saving_studio.save({"files": {"policies/cancer.pss": text + "rule {\n"}, "confirm": True})
    assert exc.value.status == 400 and (pack_copy / "cancer.pss").read_text() == text


def test_save_refuses_when_the_file_changed_on_disk(saving_studio: StudioService,
                                                    pack_copy: Path) -> None:
    text = (pack_copy / "cancer.pss").read_text()
    (pack_copy / "cancer.pss").write_text(text + "# edited in another editor\n")
    with pytest.raises(PssError) as exc:
        saving_studio.save({"files": {"policies/cancer.pss": text.replace(WHO_LIMIT, WHO_LIMIT_EDITED)},
                            "confirm": True})
    assert exc.value.status == 409
    assert (pack_copy / "cancer.pss").read_text() == text + "# edited in another editor\n"


def test_texts_that_are_not_unicode_are_refused_before_any_use(studio: StudioService) -> None:
    for use in (studio.check, lambda raw: studio.export({**raw, "format": "zip"})):
        with pytest.raises(PssError) as exc:
            use({"files": {"policies/pack.pss": "# \ud800 lone surrogate\n"}})
        assert exc.value.status == 400 and "files.policies/pack.pss" in problems(exc)
