// The studio page: loads the served pack, checks edits as you type, runs tests, decides a
// referral, runs a what-if, and keeps work (share link, downloads, an explicit save).
import { call, download } from "./api.js";
import { Workbench } from "./editor.js";
import { encodeShare, decodeShare } from "./share.js";
import { errorBox, renderDecision, renderImpact, renderTests } from "./render.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const CHECK_DELAY_MS = 350;
const PROGRESS_AFTER_MS = 1000;

let pack = null;
let checkTimer = null;
let checkSeq = 0;

// While a request runs its button says so but keeps focus (a disabled button would drop
// keyboard focus to the page); a second press meanwhile does nothing.
async function busy(button, work) {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    await work();
  } finally {
    button.removeAttribute("aria-disabled");
  }
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").title = text; // the bar may cut it short
  $("status").classList.toggle("error", isError);
}

const bench = new Workbench({
  parent: $("editor"), fileList: $("file-list"), currentLabel: $("current-file"),
  problems: $("diagnostics"), problemsEmpty: $("problems-empty"), problemCount: $("problem-count"),
  showWarnings: $("show-warnings"),
  onEdit: () => { scheduleCheck(); updateKeepButtons(); },
});
const goTo = (file, line, col) => bench.goTo(file, line, col);

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(runCheck, CHECK_DELAY_MS);
}

async function runCheck() {
  const seq = ++checkSeq;
  try {
    const result = await call("check", { files: bench.edits() });
    if (seq !== checkSeq) return; // a later edit's check is on its way
    bench.setDiagnostics(result.diagnostics);
    const warned = result.warnings ? ` (${result.warnings} warning${result.warnings === 1 ? "" : "s"})` : "";
    status(result.ok ? `The edited pack passes pss check${warned}.` : `${result.errors} error(s): see Problems.`, !result.ok);
  } catch (error) {
    if (seq === checkSeq) status(`Check failed: ${error.message}`, true);
  }
}

function updateKeepButtons() {
  const changed = Object.keys(bench.edits()).length > 0;
  $("download-diff").disabled = !changed;
  $("download-files").disabled = !changed;
  $("save").disabled = !changed || !pack?.can_save;
}

// Tabs: arrow keys move between them (WAI-ARIA tabs pattern), Enter/Space/click select.
function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) select(tabs[(i + step + tabs.length) % tabs.length]);
      else if (event.key === "Home") select(tabs[0]);
      else if (event.key === "End") select(tabs[tabs.length - 1]);
      else return;
      event.preventDefault();
    });
  });
}

async function runTests() {
  $("test-summary").textContent = "Running…";
  try {
    renderTests($("test-summary"), $("test-results"), await call("test", { files: bench.edits() }), goTo);
  } catch (error) {
    $("test-summary").textContent = "Tests not run: the edited pack has errors";
    errorBox($("test-results"), error);
  }
}

async function evaluate() {
  const target = $("decision");
  let data;
  try {
    data = JSON.parse($("case-input").value);
  } catch (error) {
    errorBox(target, { message: "The referral is not valid JSON", details: [{ field: "case", problem: error.message }] });
    return;
  }
  try {
    renderDecision(target, await call("decide", { files: bench.edits(), case: data }), goTo);
  } catch (error) {
    errorBox(target, error);
  }
}

async function corpus() {
  if ($("corpus-csv").checked) {
    const file = $("csv-file").files[0];
    if (!file) throw Object.assign(new Error("Choose a CSV file first"), { details: [] });
    return { csv: await file.text() };
  }
  return { synth: { rows: Number($("rows").value), seed: Number($("seed").value) } };
}

async function runWhatIf() {
  const target = $("impact-summary");
  const progress = $("impact-progress");
  const elapsed = $("impact-elapsed");
  const started = performance.now();
  let shown = false;
  const tick = setInterval(() => {
    const ms = performance.now() - started;
    if (ms >= PROGRESS_AFTER_MS) {
      shown = true;
      progress.classList.remove("invisible");
      elapsed.textContent = `Comparing… ${(ms / 1000).toFixed(1)} s`;
    }
  }, 100);
  target.setAttribute("aria-busy", "true");
  try {
    const result = await call("what-if", { files: bench.edits(), ...(await corpus()) });
    renderImpact(target, result, goTo);
  } catch (error) {
    errorBox(target, error);
  } finally {
    clearInterval(tick);
    const ms = performance.now() - started;
    target.dataset.elapsedMs = String(Math.round(ms));
    target.dataset.progressShown = String(shown);
    target.removeAttribute("aria-busy");
    progress.classList.add("invisible");
    elapsed.textContent = `Done in ${(ms / 1000).toFixed(1)} s`;
  }
}

async function share() {
  const state = { v: 1, digest: pack.pack.digest, current: bench.current, files: bench.edits(), case: $("case-input").value };
  const link = `${location.origin}${location.pathname}${await encodeShare(state)}`;
  $("share-row").hidden = false;
  $("share-link").value = link;
  $("share-link").select();
  try {
    await navigator.clipboard.writeText(link);
    status("Share link copied. The edits are inside the link itself.");
  } catch {
    status("Share link ready: copy it from the box below the bar.");
  }
}

async function restoreShared() {
  let state;
  try {
    state = await decodeShare(location.hash);
  } catch (error) {
    return { text: `This share link cannot be read: ${error.message}`, isError: true };
  }
  if (state === null) return null;
  const unknown = Object.entries(state.files).filter(([path, text]) => !bench.replace(path, String(text))).map(([p]) => p);
  if (typeof state.case === "string" && state.case.trim()) $("case-input").value = state.case;
  if (state.current && bench.states.has(state.current)) bench.open(state.current);
  const others = state.digest !== pack.pack.digest ? " (made against another version of the pack)" : "";
  return {
    text: `Restored ${Object.keys(state.files).length - unknown.length} edited file(s) from the share link${others}.` +
      (unknown.length ? ` Not in this pack: ${unknown.join(", ")}.` : ""),
    isError: unknown.length > 0,
  };
}

function saveBlob({ filename, blob }) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function exportChange(format) {
  try {
    saveBlob(await download("export", { files: bench.edits(), format }));
    status(format === "diff" ? "Diff downloaded." : "Changed files downloaded as a zip.");
  } catch (error) {
    status(`Download failed: ${error.message}`, true);
  }
}

async function save() {
  const files = bench.edits();
  const names = Object.keys(files).join(", ");
  if (!window.confirm(`Write ${names} into ${pack.pack.folder}/ on this machine? The running server keeps serving the pack it started with.`)) return;
  try {
    const result = await call("save", { files, confirm: true });
    status(`Saved ${result.saved.join(", ")} to ${result.folder}. Restart pss serve to serve it.`);
  } catch (error) {
    status(`Not saved: ${error.message}${error.details.length ? ` (${error.details.map((d) => d.problem).join("; ")})` : ""}`, true);
  }
}

function setupExamples(examples) {
  const select = $("example");
  select.append(el("option", { value: "" }, "(type or paste your own)"));
  for (const [i, e] of examples.entries()) select.append(el("option", { value: String(i) }, e.name));
  select.addEventListener("change", () => {
    const chosen = examples[Number(select.value)];
    if (select.value !== "" && chosen) $("case-input").value = JSON.stringify(chosen.request, null, 2);
  });
  const first = examples.findIndex((e) => e.name === "tavi");
  if (examples.length) {
    select.value = String(first >= 0 ? first : 0);
    select.dispatchEvent(new Event("change"));
  }
}

async function start() {
  setupTabs();
  for (const [id, work] of [["run-tests", runTests], ["evaluate", evaluate], ["impact-run", runWhatIf]]) {
    $(id).addEventListener("click", () => busy($(id), work));
  }
  $("share").addEventListener("click", share);
  $("download-diff").addEventListener("click", () => exportChange("diff"));
  $("download-files").addEventListener("click", () => exportChange("zip"));
  $("save").addEventListener("click", save);
  try {
    pack = await call("files");
  } catch (error) {
    status(`Cannot load the pack: ${error.message}`, true);
    return;
  }
  $("pack-label").textContent = `pack ${pack.pack.version} · ${pack.pack.digest.slice(0, 15)}…`;
  $("save").title = pack.can_save ? `Write the changed files into ${pack.pack.folder}/` : "Saving is off for this server";
  bench.load(pack.files);
  bench.open(pack.files.find((f) => f.path.endsWith(".pss"))?.path ?? pack.files[0].path);
  setupExamples(pack.examples);
  const restored = await restoreShared();
  updateKeepButtons();
  await runCheck();
  if (restored) status(`${restored.text} ${$("status").textContent}`, restored.isError || $("status").classList.contains("error"));
  document.body.dataset.ready = "true";
}

start();
