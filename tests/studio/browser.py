"""Driving the studio in Debian's Chromium, headless, through chromedriver (selenium).

`served_studio` runs `pss serve` as a developer does (a child process, free loopback ports) on
a copy of the national pack with the README's examples beside it. `Page` wraps the driver:
viewport sizes, waiting, the CodeMirror editor, screenshots (build/screenshots/, not
committed), every URL the browser asked for (from Chromium's performance log), CSP
violations and layout shifts (recorded by a script installed before any page script).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.serve import serve

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run")
# Installed before every document's own scripts: what CSP refused, and each layout shift.
RECORDER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__shifts.push({value: e.value, input: e.hadRecentInput,
    at: Math.round(e.startTime), what: (e.sources || []).map((s) => s.node ?
      `${s.node.nodeName}#${s.node.id || ""}.${s.node.className || ""} ${JSON.stringify(s.previousRect)} -> ${JSON.stringify(s.currentRect)}` : "?")});
}).observe({type: "layout-shift", buffered: true});
"""


@dataclass(frozen=True)
class Served:
    url: str          # http://127.0.0.1:PORT
    pack: Path        # the served pack folder (a copy)


def served_studio(tmp: Path) -> Iterator[Served]:
    """Run `pss serve` on a copy of the national pack until the generator is closed."""
    pack = tmp / "policies"
    shutil.copytree(ROOT / "policies", pack, ignore=shutil.ignore_patterns(".ast-cache*"))
    shutil.copytree(ROOT / "examples", tmp / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PSS_"))}
    with serve(["--policies", str(pack), "--data", str(tmp / "data")], env=env) as server:
        found = re.search(r"Studio:\s+(http://127\.0\.0\.1:\d+)/studio", "".join(server.lines))
        assert found, "".join(server.lines)
        yield Served(found.group(1), pack)


def require_browser() -> None:
    """Chromium and chromedriver must be there: `make test` installs them (as root)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing and could not be installed: run as root "
                    "`apt-get install -y --no-install-recommends chromium chromium-driver`")


def start_chromium(profile: Path, downloads: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    # An explicit driver path: selenium never looks for (or downloads) a driver itself.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
    return driver


class Page:
    """The studio page in one browser."""

    def __init__(self, driver: Any, served: Served, downloads: Path) -> None:
        self.driver = driver
        self.served = served
        self.downloads = downloads
        self.requested: list[str] = []
        driver.get("about:blank")
        driver.get_log("performance")  # the start-up tab's own chrome:// pages, not ours

    # -- navigation and waiting --------------------------------------------------------------
    def size(self, width: int, height: int) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def open(self, url: str | None = None) -> None:
        self.driver.get("about:blank")
        self.driver.get(url or f"{self.served.url}/studio")
        self.wait(lambda: self.js("return document.body.dataset.ready === 'true'"), "page ready")

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
            lambda _d: condition(), f"timed out waiting for {what}")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    # -- elements ----------------------------------------------------------------------------
    def testid(self, name: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def one(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def tab(self, name: str) -> None:
        self.one(f"#tab-{name}").click()

    def open_file(self, path: str) -> None:
        self.one(f'[data-testid="file-list"] [data-file="{path}"]').click()
        self.wait(lambda: self.one("#current-file").text == path, f"{path} open")

    # -- the editor --------------------------------------------------------------------------
    def editor_text(self) -> str:
        text: str = self.js("return [...document.querySelectorAll('[data-testid=editor] .cm-line')]"
                            ".map((l) => l.textContent).join('\\n')")
        return text

    def keys(self, *keys: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def chord(self, modifier: str, key: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).key_down(modifier).send_keys(key).key_up(modifier).perform()

    def find_in_editor(self, text: str) -> None:
        """Select the first `text` in the open file with the editor's own search (Ctrl+F)."""
        from selenium.webdriver.common.keys import Keys

        self.one('[data-testid="editor"] .cm-content').click()
        self.chord(Keys.CONTROL, Keys.HOME)
        self.chord(Keys.CONTROL, "f")
        self.wait(lambda: self.all(".cm-search input[name=search]"), "the search panel")
        field = self.one(".cm-search input[name=search]")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text, Keys.ENTER)
        self.keys(Keys.ESCAPE)  # closes the panel; the match stays selected in the editor
        self.wait(lambda: self.js("return getSelection().toString()") == text, f"{text!r} selected")

    # -- what the browser did ----------------------------------------------------------------
    def requests(self) -> list[str]:
        """Every URL requested since the last call (Chromium's performance log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])
        return self.requested

    def csp_violations(self) -> list[str]:
        found: list[str] = self.js("return window.__csp")
        return found

    def forget_shifts(self) -> None:
        self.js("window.__shifts = []")

    def layout_shift(self) -> tuple[float, list[object]]:
        """The sum of every layout shift of this document (with or without recent input),
        and the shifts themselves (what moved, from where to where)."""
        shifts: list[dict[str, object]] = self.js("return window.__shifts")
        return sum(float(s["value"]) for s in shifts), shifts  # type: ignore[arg-type]

    def rects(self, *testids: str) -> dict[str, tuple[float, ...]]:
        out: dict[str, tuple[float, ...]] = {}
        for name in testids:
            r = self.js("const r = arguments[0].getBoundingClientRect();"
                        "return [r.x, r.y, r.width, r.height]", self.testid(name))
            out[name] = tuple(round(v, 1) for v in r)
        return out

    def screenshot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        target = SHOTS / f"{name}.png"
        self.driver.save_screenshot(str(target))
        return target
