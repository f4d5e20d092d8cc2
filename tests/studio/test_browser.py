"""The studio in a real browser: Chromium headless driven through chromedriver.

Flows: load (and no request leaves 127.0.0.1), a syntax error located then fixed and the
tests run, an example referral decided with its reasons, a what-if after changing a
threshold, a share link that restores the edit, and the keyboard. Each flow saves a
screenshot under build/screenshots/.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from chalicelib import load_policy_set
from chalicelib.batch.diff import diff_csv
from chalicelib.engine.policy_set import PolicySet
from chalicelib.studio.http import STATIC_DIR
from chalicelib.studio.workspace import Workspace
from chalicelib.testing import run_tests
from pss_dev.synth import write_csv
from tests.conftest import fixed_clock
from tests.studio.browser import Page, Served, require_browser, served_studio, start_chromium
from tests.studio.conftest import example

pytestmark = pytest.mark.slow
CONTRACT = ("file-list", "editor", "diagnostics", "run-tests", "test-summary", "case-input",
            "evaluate", "decision", "impact-run", "impact-summary")
ACHD = "primary diagnosis in CONGENITAL_HEART and age >= 16"
ACHD_EDITED = "primary diagnosis in CONGENITAL_HEART and age >= 30"
WHAT_IF_ROWS = 50_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_browser()
    if not (STATIC_DIR / "studio.js").is_file():
        pytest.fail("the studio page is not built: run `make studio` (make test does)")
    yield from served_studio(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def served_pack(served: Served) -> PolicySet:
    return load_policy_set(served.pack, fixed_clock)


@pytest.fixture(scope="module")
def page(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_chromium(tmp_path_factory.mktemp("profile"), downloads)
    try:
        page = Page(driver, served, downloads)
        page.size(1280, 800)
        yield page
    finally:
        driver.quit()


def assert_only_local(page: Page) -> None:
    base = urlsplit(page.served.url)
    urls = page.requests()
    assert urls, "the performance log recorded no request at all"
    for url in urls:
        parts = urlsplit(url.removeprefix("blob:"))
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", base.port), url
    assert page.csp_violations() == []


def fits(page: Page, panel: str) -> bool:
    """The panel's content is no wider than the panel (no sideways scrolling)."""
    return bool(page.js("const p = document.getElementById(arguments[0]);"
                        "return p.scrollWidth <= p.clientWidth", panel))


def diagnostics(page: Page) -> list[str]:
    return [e.text for e in page.all('[data-testid="diagnostics"] > li')]


def errors(page: Page) -> list[str]:
    return [e.text for e in page.all('[data-testid="diagnostics"] > li > button.error')]


def checked_clean(page: Page) -> bool:
    """The last check found no error (warnings, such as uncited sources, may remain)."""
    return "No errors" in page.one("#problems-empty").text and not errors(page)


def test_load_at_both_sizes_and_nothing_leaves_this_machine(page: Page, served: Served) -> None:
    for width, height in ((1280, 800), (1920, 1080)):
        page.size(width, height)
        page.open()
        entries = page.all('[data-testid="file-list"] [data-file]')
        on_disk = sorted(f"policies/{p.relative_to(served.pack).as_posix()}"
                         for p in served.pack.rglob("*") if p.suffix in (".pss", ".csv"))
        assert [e.get_attribute("data-file") for e in entries] == on_disk
        for name in CONTRACT:
            page.testid(name)
        assert page.one("#current-file").text == "policies/cancer.pss"
        assert "codeset CETUXIMAB: drug = cetuximab" in page.editor_text()
        # Highlighting from the grammar: `codeset` is a keyword, coloured as one.
        colour = page.js("const s = [...document.querySelectorAll('.cm-line span')]"
                         ".find((e) => e.textContent === 'codeset');"
                         "return s && getComputedStyle(s).color")
        assert colour == "rgb(122, 31, 162)"
        page.wait(lambda: checked_clean(page), "the first check")
        # Every warning of `pss check` is listed, each at its place.
        warnings = page.all('[data-testid="diagnostics"] > li > button.warning')
        assert len(warnings) == len(diagnostics(page))
        assert all(re.match(r"policies/\S+\.pss:\d+:\d+", w.text) for w in warnings)
        # Everything fits: no sideways scrolling, the tools' buttons inside the window.
        assert page.js("return document.documentElement.scrollWidth") <= width
        button = page.rects("run-tests")["run-tests"]
        assert button[0] + button[2] <= width and button[1] + button[3] <= height
        page.screenshot(f"01-load-{width}x{height}")
        assert_only_local(page)
    page.size(1280, 800)


def test_a_syntax_error_is_located_then_fixed_and_the_tests_run(page: Page,
                                                                served_pack: PolicySet) -> None:
    from selenium.webdriver.common.keys import Keys

    page.open()
    page.open_file("policies/cardiac.pss")
    # The editor draws only the lines in view: count the file's lines on disk.
    lines_before = len(served_pack_text(page, "policies/cardiac.pss").split("\n"))
    page.one('[data-testid="editor"] .cm-content').click()
    page.chord(Keys.CONTROL, Keys.END)
    page.keys(Keys.ENTER, 'rule broken "x" { line NCBPS13A rank 5 when age >= }')
    line = lines_before + 1
    page.wait(lambda: any(d.startswith(f"policies/cardiac.pss:{line}:") for d in errors(page)),
              "the syntax error in the problems list")
    [problem] = errors(page)
    col = int(re.match(rf"policies/cardiac\.pss:{line}:(\d+)", problem).group(1))  # type: ignore[union-attr]
    typed = page.editor_text().splitlines()[-1]
    assert typed == 'rule broken "x" { line NCBPS13A rank 5 when age >= }'
    assert typed[col - 1] == "}"  # the column is where the number should have been
    assert "error" in problem
    underline = page.all('[data-testid="editor"] .cm-lintRange-error')
    assert underline and underline[0].text == "}"
    assert "●" in page.one('[data-file="policies/cardiac.pss"]').text  # marked changed
    page.screenshot("02-syntax-error")

    # Clicking the problem puts the cursor on it; deleting the line fixes the file.
    page.one('[data-testid="diagnostics"] button.error').click()
    assert page.one(".cm-activeLine").text == typed
    page.keys(Keys.END)
    page.chord(Keys.SHIFT, Keys.HOME)
    page.keys(Keys.BACKSPACE, Keys.BACKSPACE)
    page.wait(lambda: checked_clean(page), "the fix checked")
    assert "●" not in page.one('[data-file="policies/cardiac.pss"]').text

    before = page.rects("editor", "run-tests", "test-summary", "diagnostics")
    page.forget_shifts()
    page.testid("run-tests").click()
    expected = len(run_tests(served_pack))
    page.wait(lambda: "passed" in page.testid("test-summary").text, "the test summary")
    assert page.testid("test-summary").text == f"{expected} passed, 0 failed"
    assert re.search(r"Clause coverage: (\d+)/\1 clauses", page.one("#test-results").text)
    assert page.rects("editor", "run-tests", "test-summary", "diagnostics") == before
    total, shifts = page.layout_shift()
    assert total < 0.01, shifts
    page.screenshot("03-tests-pass")
    assert_only_local(page)


def test_an_example_referral_is_decided_with_its_reasons(page: Page,
                                                          served_pack: PolicySet) -> None:
    from selenium.webdriver.support.ui import Select

    page.open()
    page.tab("decide")
    Select(page.one("#example")).select_by_visible_text("cet5_cetuximab")
    case = example("cet5_cetuximab")
    assert '"referral_id": "example-cet5"' in page.testid("case-input").get_attribute("value") or \
        case["referral_id"] in page.testid("case-input").get_attribute("value")
    before = page.rects("editor", "case-input", "evaluate")
    page.forget_shifts()
    page.testid("evaluate").click()
    decision = page.testid("decision")
    page.wait(lambda: decision.find_elements("css selector", "table.reasons tbody tr"),
              "the decision's reasons")
    expected = served_pack.decide(case).to_dict()
    field = {e.get_attribute("data-field"): e.text
             for e in decision.find_elements("css selector", "[data-field]")}
    assert field["eligibility"] == expected["eligibility"] == "prior_approval"
    assert field["commissioner"] == expected["commissioner"]
    assert field["policy"].startswith(f"{expected['policy']['id']} v{expected['policy']['version']}")
    assert field["service"].startswith(f"{expected['service']['id']} · {expected['service']['line']}")
    rows = decision.find_elements("css selector", "table.reasons tbody tr")
    assert len(rows) == len(expected["reasons"])
    assert expected["reasons"][0]["clause"] in rows[0].text
    assert page.rects("editor", "case-input", "evaluate") == before  # nothing moved
    assert fits(page, "panel-decide")
    total, shifts = page.layout_shift()
    assert total < 0.01, shifts
    page.screenshot("04-decision")

    # A reason's place opens in the editor at its line.
    at = expected["reasons"][-1]["at"]
    file, line = at.rsplit(":", 1)
    rows[-1].find_element("css selector", "button.link").click()
    page.wait(lambda: page.one("#current-file").text == file, f"{file} opened from a reason")
    wanted = (served_pack_text(page, file).splitlines()[int(line) - 1]).strip()
    assert page.one(".cm-activeLine").text.strip() == wanted
    assert_only_local(page)


def _decide_example(page: Page, name: str) -> Any:
    from selenium.webdriver.support.ui import Select

    page.open()
    page.tab("decide")
    Select(page.one("#example")).select_by_visible_text(name)
    page.testid("evaluate").click()
    return page.wait(lambda: page.all('[data-testid="decide-provenance"]'),
                     "the decision's provenance")[0]


def test_a_decision_shows_whether_it_rests_on_verified_sources_and_links_them(
        page: Page, served_pack: PolicySet) -> None:
    shown = _decide_example(page, "cet5_cetuximab")
    expected = served_pack.decide(example("cet5_cetuximab")).to_dict()
    assert expected["unverified"] is True and expected["provenance"]
    assert shown.get_attribute("data-verified") == "false"
    badge = shown.find_element("css selector", ".badge")
    assert badge.text == "unverified"
    unverified = sum(not item["verified"] for item in expected["provenance"])
    assert f"{unverified} of {len(expected['provenance'])} items" in shown.text
    items = shown.find_elements("css selector", "ul.provenance > li")
    assert [(li.get_attribute("data-kind"), li.get_attribute("data-verified"), )
            for li in items] == [(item["kind"], str(item["verified"]).lower())
                                 for item in expected["provenance"]]
    for li, item in zip(items, expected["provenance"], strict=True):
        assert item["id"] in li.text
        links = li.find_elements("css selector", "a.src")
        assert [a.get_attribute("href") for a in links] == item["source"]
        assert all(a.get_attribute("rel") == "noopener noreferrer" for a in links)
        if not item["source"]:
            assert "no source given" in li.text
        assert ("✓" if item["verified"] else "⚠") in li.text
        # Why the pack doubts it, in the pack's own words.
        why = [w.text for w in li.find_elements("css selector", "ul.why > li")]
        assert len(why) == len(item["unverified_reasons"])
        assert all(w.endswith(r) for w, r in zip(why, item["unverified_reasons"], strict=True))
    assert any(item["unverified_reasons"] for item in expected["provenance"])
    # The sources row sits with commissioner, service and policy, and fits the panel.
    facts = [dt.text for dt in page.all('[data-testid="decision"] dl.facts > dt')]
    assert facts[facts.index("Policy") + 1] == "Sources"
    assert fits(page, "panel-decide")
    # Scrolled within its panel (the page itself never scrolls), then at a laptop's size.
    page.js("const p = document.getElementById('panel-decide');"
            "p.scrollTop = arguments[0].offsetTop - p.offsetTop - 40", shown)
    page.screenshot("04b-decision-provenance")
    page.size(1920, 1080)
    try:
        assert fits(page, "panel-decide")
        page.screenshot("04c-decision-provenance-1920x1080")
    finally:
        page.size(1280, 800)
    assert_only_local(page)


HOSTILE_PROVENANCE = [
    {"kind": "rule", "id": "<img src=x onerror=window.__hit=1>", "verified": True,
     "source": ["javascript:window.__hit=2", "data:text/html,<b>x</b>", "//evil.example/x",
                "https://www.legislation.gov.uk/uksi/2012/2996/schedule/4"]},
    {"kind": "policy", "id": "P v1", "verified": True, "source": ["http://example.nhs.uk/p"]},
]


def test_provenance_makes_links_of_web_addresses_only_and_shows_text_as_text(
        page: Page) -> None:
    # Whatever the server sends: the page's own fetch is wrapped to answer decide with
    # hostile provenance (what a broken or tampered pack could carry).
    page.open()
    page.js("""
        const real = window.fetch;
        window.fetch = async (url, init) => {
          const answer = await real(url, init);
          if (!String(url).endsWith('/decide')) return answer;
          const body = await answer.json();
          body.provenance = arguments[0]; body.unverified = false;
          return new Response(JSON.stringify(body), { status: 200,
            headers: { 'content-type': 'application/json' } });
        };""".replace("arguments[0]", json.dumps(HOSTILE_PROVENANCE)))
    page.tab("decide")
    from selenium.webdriver.support.ui import Select

    Select(page.one("#example")).select_by_visible_text("tavi")
    page.testid("evaluate").click()
    shown = page.wait(lambda: page.all('[data-testid="decide-provenance"]'), "provenance")[0]
    assert shown.get_attribute("data-verified") == "true"
    assert shown.find_element("css selector", ".badge").text == "verified"
    assert "all 2 items this answer rests on are verified" in shown.text
    assert "no source given" not in shown.text
    hrefs = [a.get_attribute("href") for a in shown.find_elements("css selector", "a")]
    assert hrefs == ["https://www.legislation.gov.uk/uksi/2012/2996/schedule/4",
                     "http://example.nhs.uk/p"]
    assert "<img src=x onerror=window.__hit=1>" in shown.text
    assert "javascript:window.__hit=2" in shown.text  # shown, as text
    assert not shown.find_elements("css selector", "img")
    assert page.js("return window.__hit === undefined")


def served_pack_text(page: Page, shown: str) -> str:
    return (page.served.pack / shown.removeprefix("policies/")).read_text()


def test_a_what_if_after_changing_a_threshold_shows_changed_cases(page: Page, served: Served,
                                                                   served_pack: PolicySet) -> None:
    from selenium.webdriver.common.keys import Keys

    page.open()
    page.open_file("policies/cardiac.pss")
    page.find_in_editor(ACHD)
    page.keys(ACHD_EDITED)
    assert ACHD_EDITED in page.editor_text()
    page.wait(lambda: checked_clean(page), "the edit checked")
    page.tab("whatif")
    rows = page.one("#rows")
    rows.send_keys(Keys.CONTROL, "a")
    rows.send_keys(str(WHAT_IF_ROWS))
    before = page.rects("editor", "impact-run", "diagnostics")
    page.forget_shifts()  # what counts is what moves while the results arrive
    page.testid("impact-run").click()
    summary = page.testid("impact-summary")
    progress = page.one("#impact-progress")
    page.wait(lambda: summary.get_attribute("data-elapsed-ms")
              or "invisible" not in progress.get_attribute("class"), "progress or the result")
    if not summary.get_attribute("data-elapsed-ms"):
        assert summary.get_attribute("aria-busy") == "true"
        page.screenshot("05a-what-if-running")
    page.wait(lambda: summary.get_attribute("data-elapsed-ms"), "the what-if", timeout=180)

    # The page shows what the library computes for the same rows and the same edit.
    workspace = Workspace.snapshot(served_pack, served.pack)
    head = workspace.compile({"policies/cardiac.pss": served_pack_text(page, "policies/cardiac.pss")
                              .replace(ACHD, ACHD_EDITED)})
    text = io.StringIO()
    write_csv(text, WHAT_IF_ROWS, 1)
    tally = diff_csv(io.BytesIO(text.getvalue().encode()), served_pack, head)
    assert tally.changed > 0
    line = summary.find_element("css selector", '[data-field="impact-line"]').text
    assert line == f"{WHAT_IF_ROWS:,} cases compared, {tally.changed:,} changed"
    changed = summary.find_elements("css selector", "ol.changed > li")
    assert len(changed) == min(tally.changed, 20)
    assert "age >= 30" in changed[0].text and "policies/cardiac.pss:" in changed[0].text
    assert summary.find_elements("css selector", ".chart svg rect")  # the report's chart
    # Progress shows on any run over a second (the page records whether it did).
    if int(summary.get_attribute("data-elapsed-ms")) > 1200:
        assert summary.get_attribute("data-progress-shown") == "true"
    assert page.rects("editor", "impact-run", "diagnostics") == before
    assert fits(page, "panel-whatif")
    total, shifts = page.layout_shift()
    assert total < 0.01, shifts
    page.screenshot("05b-what-if-summary")
    page.js("arguments[0].scrollIntoView()", summary.find_element("css selector", "ol.changed"))
    page.screenshot("05c-what-if-changed-cases")
    assert_only_local(page)


def test_a_share_link_restores_the_edit(page: Page, served: Served) -> None:
    page.open()
    page.open_file("policies/pack.pss")
    page.one('[data-testid="editor"] .cm-content').click()
    from selenium.webdriver.common.keys import Keys

    page.chord(Keys.CONTROL, Keys.HOME)
    marker = "# shared edit: a note for a colleague"
    page.keys(marker, Keys.ENTER)
    page.wait(lambda: "●" in page.one('[data-file="policies/pack.pss"]').text, "the edit marked")
    page.testid("share").click()
    page.wait(lambda: page.testid("share-link").get_attribute("value"), "the share link")
    link = page.testid("share-link").get_attribute("value")
    assert link.startswith(f"{served.url}/studio#s=")
    assert "shared" not in link and "colleague" not in link  # compressed, not plain
    page.open(link)
    page.wait(lambda: "Restored 1 edited file" in page.one("#status").text, "the restore")
    assert page.one("#current-file").text == "policies/pack.pss"
    assert page.editor_text().startswith(marker + "\n")
    assert "●" in page.one('[data-file="policies/pack.pss"]').text
    page.screenshot("06-share-link")
    # The same edit downloads as a unified diff.
    page.testid("download-diff").click()
    diff = page.downloads / "pss-studio.diff"
    page.wait(diff.is_file, "the downloaded diff")
    assert f"+{marker}\n" in diff.read_text() and "--- a/policies/pack.pss" in diff.read_text()
    # The fragment stays in the browser: no request carried it.
    assert not [u for u in page.requests() if "#s=" in u or "colleague" in u]
    assert_only_local(page)


def test_the_page_works_from_the_keyboard_with_visible_focus(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    page.open()
    page.one("body").click()
    reached: list[list[str]] = []
    for _ in range(80):  # one full round of the page's tab stops
        page.keys(Keys.TAB)
        active = page.js("const a = document.activeElement; return [a.tagName, a.id,"
                         " a.dataset.file || '', a.className, getComputedStyle(a).outlineStyle,"
                         " getComputedStyle(a).outlineWidth, a.closest('[data-testid]')"
                         "?.dataset.testid || '']")
        if reached and active == reached[0]:
            break
        reached.append(active)
    assert len(reached) < 60, reached
    # The file list and the problems list are one tab stop each (arrow keys move within
    # them), so the tools stay a few presses away; focus shows as a 3px ring.
    files = [a for a in reached if a[6] == "file-list"]
    problems = [a for a in reached if a[6] == "diagnostics"]
    assert len(files) == 1 and len(problems) <= 1  # (no stop at all when nothing is listed)
    assert files[0][4] == "solid" and files[0][5] == "3px"
    assert any("cm-content" in a[3] for a in reached)  # the editor takes focus by Tab
    assert any(a[1] == "tab-tests" for a in reached)
    # Within the file list the arrow keys move, and Enter opens the file.
    page.js("arguments[0].focus()", page.one('[data-testid="file-list"] [data-file="policies/cancer.pss"]'))
    page.keys(Keys.ARROW_DOWN, Keys.ENTER)
    assert page.one("#current-file").text == "policies/cardiac.pss"
    # The tabs follow the arrow keys; Enter runs what has focus.
    page.one("#tab-tests").click()
    page.keys(Keys.ARROW_RIGHT)
    assert page.js("return document.activeElement.id") == "tab-decide"
    assert page.one("#panel-decide").is_displayed() and not page.one("#panel-tests").is_displayed()
    page.keys(Keys.TAB, Keys.TAB, Keys.TAB)
    assert page.js("return document.activeElement.dataset.testid") == "evaluate"
    page.keys(Keys.ENTER)
    page.wait(lambda: page.all('[data-testid="decision"] [data-field="eligibility"]'),
              "a decision from the keyboard")
    page.screenshot("07-keyboard")
