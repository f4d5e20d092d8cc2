"""`pss diff` and what-if: a changed threshold moves exactly the cases it should."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from chalicelib.batch.cli import diff_main
from chalicelib.batch.diff import diff_csv
from chalicelib.batch.rows import COLUMNS, Layout, RowError, row_request
from chalicelib.batch.whatif import what_if
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import NotCoveredError, PolicyError, RequestError
from tests.batch.conftest import PACK_DIR, synth_text
from tests.conftest import build

OLD, NEW = "primary diagnosis in CHD and age >= 16", "primary diagnosis in CHD and age >= 18"
C = COLUMNS.index


def _head(pack_dir: Path) -> Path:
    pss = pack_dir / "pack.pss"
    text = pss.read_text()
    assert text.count(OLD) == 1
    pss.write_text(text.replace(OLD, NEW))
    return pack_dir


def _cases(tmp_path: Path) -> Path:
    """Synthetic activity plus congenital heart disease rows around the threshold."""
    extra = []
    for age in range(13, 21):
        for n, (dominant, other) in enumerate([("", ""), ("K26.2", "Y53.1"), ("K02.1", ""), ("W37.1", "")]):
            extra.append(f"CHD-{age}-{n},APC,2024-06-01,RBQ,{age},2,London,QWE,321,Q21.1,,{dominant},{other},,,")
    path = tmp_path / "cases.csv"
    path.write_text(synth_text(1500, 9, bad_share=0.05) + "\n".join(extra) + "\n")
    return path


def _expected_moves(path: Path, pack: PolicySet) -> set[str]:
    """Computed without the diff: valid rows the ACHD rule takes at 16-17 and no earlier rule."""
    rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
    layout = Layout.from_header(rows[0])
    moved = set()
    for row in rows[1:]:
        try:
            pack.decide(row_request(row, layout))  # valid under the API?
        except (RowError, RequestError, NotCoveredError):
            continue
        primary = row[C("primary_diagnosis")].replace(".", "").upper()
        procedures = [row[C("dominant_procedure")], *row[C("other_procedures")].split("|")]
        procedures = [p.replace(".", "").upper() for p in procedures if p]
        transplant = any(p[:3] in ("K01", "K02") for p in procedures)
        tavi = procedures[:1] == ["K262"] and any(p in {"Y494", "Y798", "Y799"} or (p[:3] == "Y53" and p != "Y530") or (p[:3] == "Y79" and p[3:] in "1234") for p in procedures)
        if primary[:3] in {f"Q2{d}" for d in range(9)} and 16 <= int(row[C("age")]) < 18 and not (transplant or tavi):
            moved.add(row[C("record_id")])
    return moved


@pytest.mark.parametrize("workers", [1, 2])
def test_changed_threshold_moves_exactly_the_expected_cases(
    tmp_path: Path, pack: PolicySet, pack_dir: Path, workers: int
) -> None:
    from chalicelib import load_policy_set

    cases = _cases(tmp_path)
    head = load_policy_set(_head(pack_dir))
    with cases.open("rb") as src:
        tally = diff_csv(src, pack, head, workers=workers, top=100_000)
    expected = _expected_moves(cases, pack)
    assert len(expected) >= 2
    assert {c.case for c in tally.top} == expected
    assert tally.changed == len(expected)
    assert tally.service_line[("NCBPS13A", "(none)")] == len(expected)
    assert tally.moved_out["NCBPS13A"] == len(expected)
    # Every moved case leaves the service for the ICB's core commissioning.
    assert tally.to_nhs_england == 0
    assert tally.to_icb + tally.commissioner[("icb_delegated", "icb_core")] == len(expected)
    case = next(c for c in tally.top if c.case == "CHD-17-0")
    assert case.clause.startswith("achd: `age >= 18` is false (was `age >= 16`: true) at policies/")


def test_cli_diff_between_folders_writes_text_json_and_offline_html(
    tmp_path: Path, pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases, html, out_json = _cases(tmp_path), tmp_path / "r.html", tmp_path / "r.json"
    code = diff_main(
        ["--base", str(PACK_DIR), "--head", str(_head(pack_dir)), str(cases), "--html", str(html), "--json", str(out_json), "--workers", "1"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "NCBPS13A" in text and "→ (none)" in text
    page = html.read_text()
    assert "<svg" in page and "NCBPS13A" in page
    for remote in ("<script", "<link", "src=", "url("):
        assert remote not in page
    body = json.loads(out_json.read_text())
    assert body["changed"] == len(_expected_moves(cases, build_pack()))
    assert {"old": "NCBPS13A", "new": "(none)", "cases": body["changed"]} in body["service_line"]


def build_pack() -> PolicySet:
    from chalicelib import load_policy_set

    return load_policy_set(PACK_DIR)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True, capture_output=True)


def test_cli_diff_against_a_git_ref(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    (repo / "policies").mkdir(parents=True)
    (repo / "policies" / "pack.pss").write_text((PACK_DIR / "pack.pss").read_text())
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    _head(repo / "policies")
    cases = _cases(tmp_path)
    html = tmp_path / "r.html"
    assert diff_main(["--base", "HEAD", "--head", str(repo / "policies"), str(cases), "--html", str(html)]) == 0
    assert "changed between HEAD" in capsys.readouterr().out
    assert diff_main(["--base", "no-such-ref", "--head", str(repo / "policies"), str(cases)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`no-such-ref` is neither a folder nor a git ref" in err


def test_cli_diff_head_failing_check_is_an_input_error(
    tmp_path: Path, pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pack_dir / "pack.pss").write_text((pack_dir / "pack.pss").read_text().replace("in CHD", "in CHDX"))
    code = diff_main(["--base", str(PACK_DIR), "--head", str(pack_dir), str(_cases(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "head pack" in err and "fails `pss check`" in err
    assert "Traceback" not in err


def test_cli_diff_on_a_folder_of_referrals(tmp_path: Path, pack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    for age in (15, 16, 17, 18):
        body = {"date": "2024-06-01", "patient": {"age": age}, "diagnoses": ["Q21.1"]}
        (folder / f"chd-{age}.json").write_text(json.dumps(body))
    (folder / "bad.json").write_text(json.dumps({"date": "2024-06-01"}))
    out_json = tmp_path / "r.json"
    assert diff_main(["--base", str(PACK_DIR), "--head", str(_head(pack_dir)), str(folder), "--html", str(tmp_path / "r.html"), "--json", str(out_json)]) == 0
    body = json.loads(out_json.read_text())
    assert [c["case"] for c in body["top_changed"]] == ["chd-16.json", "chd-17.json"]
    assert body["rejected"] == {"base": 1, "head": 1}


def test_what_if_with_alternative_text_never_touches_the_served_pack() -> None:
    text = (PACK_DIR / "pack.pss").read_text()
    base = build(text, header=False)
    cases = [
        {"referral_id": f"r{age}", "date": "2024-06-01", "patient": {"age": age}, "diagnoses": ["Q21.1"]}
        for age in range(14, 20)
    ] + [{"date": "nope"}, "not an object"]
    answer = what_if(base, text.replace(OLD, NEW), cases)
    assert answer["changed"] == 2
    assert [c["case"] for c in answer["top_changed"]] == ["r16", "r17"]
    assert answer["rejected"] == {"base": 2, "head": 2}
    assert answer["base"]["digest"] == "sha256:test" and answer["head"]["digest"] != "sha256:test"
    json.dumps(answer)  # JSON-ready
    assert base.decide(cases[2]).service is not None  # the served pack is unchanged
    with pytest.raises(PolicyError):
        what_if(base, text.replace("in CHD", "in CHDX"), cases)


def test_cli_diff_writes_no_html_unless_asked(tmp_path: Path, pack_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert diff_main(["--base", str(PACK_DIR), "--head", str(_head(pack_dir)), str(cases),
                      "--workers", "1"]) == 0
    assert not list(tmp_path.glob("*.html"))
