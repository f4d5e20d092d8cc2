// The editor side of the page: one CodeMirror state per pack file (each keeps its own undo
// history), the file list, and the diagnostics as underlines and as a list.
import { basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import { pss } from "./language.js";
import { el, clear, firstStop, roving } from "./dom.js";

// CodeMirror draws lint underlines and gutter markers as data: SVG images, which CSP
// `default-src 'self'` refuses; the same marks drawn with CSS instead.
const cspSafeMarks = EditorView.theme({
  ".cm-lintRange-error": { backgroundImage: "none", textDecoration: "underline wavy #c5221f", textDecorationSkipInk: "none" },
  ".cm-lintRange-warning": { backgroundImage: "none", textDecoration: "underline wavy #a35f00", textDecorationSkipInk: "none" },
  ".cm-lintRange-info": { backgroundImage: "none", textDecoration: "underline dotted #5b6670" },
  ".cm-lintRange-hint": { backgroundImage: "none", textDecoration: "underline dotted #5b6670" },
  ".cm-lint-marker": { content: "normal", width: ".75em", height: ".75em", margin: ".3em 0 0 .15em", borderRadius: "50%" },
  ".cm-lint-marker-error": { content: "normal", background: "#c5221f" },
  ".cm-lint-marker-warning": { content: "normal", background: "#a35f00", borderRadius: "2px" },
  ".cm-lint-marker-info": { content: "normal", background: "#5b6670", borderRadius: "2px" },
  ".cm-highlightTab": { backgroundImage: "none" },
});

export class Workbench {
  constructor({ parent, fileList, currentLabel, problems, problemsEmpty, problemCount, showWarnings, onEdit }) {
    this.served = new Map();   // path -> text of the served pack
    this.states = new Map();   // path -> EditorState
    this.diagnostics = [];     // every file's, from the last check
    this.current = null;
    this.fileList = fileList;
    this.currentLabel = currentLabel;
    this.problems = problems;
    this.problemsEmpty = problemsEmpty;
    this.problemCount = problemCount;
    this.showWarnings = showWarnings;
    showWarnings.addEventListener("change", () => this.renderProblems());
    roving(fileList);
    roving(problems);
    this.onEdit = onEdit;
    this.language = pss();
    this.extensions = [
      basicSetup,
      EditorView.lineWrapping,
      lintGutter(),
      cspSafeMarks,
      EditorView.contentAttributes.of({ "aria-label": "Policy file editor" }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) {
          this.markChanged(this.current);
          this.onEdit();
        }
      }),
    ];
    this.view = new EditorView({ parent });
  }

  load(files) {
    for (const { path, text } of files) {
      this.served.set(path, text);
      this.states.set(path, this.stateFor(path, text));
    }
    this.renderFileList();
  }

  stateFor(path, text) {
    const extensions = path.endsWith(".pss") ? [this.extensions, this.language] : this.extensions;
    return EditorState.create({ doc: text, extensions });
  }

  text(path) {
    if (path === this.current) return this.view.state.doc.toString();
    return this.states.get(path)?.doc.toString() ?? "";
  }

  // path -> text for every file that differs from the served pack.
  edits() {
    const out = {};
    for (const path of this.states.keys()) {
      const text = this.text(path);
      if (text !== this.served.get(path)) out[path] = text;
    }
    return out;
  }

  // Replace a file's text (share links); its undo history starts afresh.
  replace(path, text) {
    if (!this.states.has(path)) return false;
    const state = this.stateFor(path, text);
    this.states.set(path, state);
    if (path === this.current) this.view.setState(state);
    this.markChanged(path);
    return true;
  }

  open(path) {
    if (!this.states.has(path)) return;
    if (this.current !== null) this.states.set(this.current, this.view.state);
    this.current = path;
    this.view.setState(this.states.get(path));
    this.currentLabel.textContent = path;
    for (const button of this.fileList.querySelectorAll("button[data-file]")) {
      button.setAttribute("aria-current", String(button.dataset.file === path));
    }
    this.showDiagnostics();
  }

  // Open `path` with the cursor at a 1-based line and column, and focus the editor.
  goTo(path, line, col = 1) {
    this.open(path);
    const doc = this.view.state.doc;
    const target = position(doc, line, col);
    this.view.dispatch({ selection: { anchor: target }, scrollIntoView: true });
    this.view.focus();
  }

  renderFileList() {
    clear(this.fileList);
    for (const path of this.states.keys()) {
      const name = path.split("/").slice(1).join("/");
      const button = el("button", { type: "button", "data-file": path, "aria-current": "false" },
        el("span", { class: "name" }, name),
        el("span", { class: "flags" }, el("span", { class: "errs" }), el("span", { class: "mark" })));
      button.addEventListener("click", () => { this.open(path); this.view.focus(); });
      this.fileList.append(el("li", {}, button));
    }
    firstStop(this.fileList);
  }

  markChanged(path) {
    const button = this.fileList.querySelector(`button[data-file="${CSS.escape(path)}"]`);
    if (!button) return;
    const changed = this.text(path) !== this.served.get(path);
    const mark = button.querySelector(".mark");
    mark.textContent = changed ? " ●" : "";
    button.setAttribute("aria-label", `${path}${changed ? ", changed" : ""}${this.errorLabel(path)}`);
  }

  errorLabel(path) {
    const n = this.diagnostics.filter((d) => d.file === path && d.severity === "error").length;
    return n ? `, ${n} error${n > 1 ? "s" : ""}` : "";
  }

  setDiagnostics(diagnostics) {
    this.diagnostics = diagnostics;
    for (const button of this.fileList.querySelectorAll("button[data-file]")) {
      const n = diagnostics.filter((d) => d.file === button.dataset.file && d.severity === "error").length;
      button.querySelector(".errs").textContent = n ? ` ${n}✕` : "";
      this.markChanged(button.dataset.file);
    }
    this.renderProblems();
    this.showDiagnostics();
  }

  renderProblems() {
    clear(this.problems);
    const errors = this.diagnostics.filter((d) => d.severity === "error").length;
    const warnings = this.diagnostics.length - errors;
    this.problemCount.textContent = `(${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"})`;
    // Errors first (they stop the pack), then warnings, each in file order.
    const listed = [...this.diagnostics.filter((d) => d.severity === "error"),
      ...(this.showWarnings.checked ? this.diagnostics.filter((d) => d.severity !== "error") : [])];
    this.problemsEmpty.hidden = errors > 0;
    const unlisted = warnings && !this.showWarnings.checked ? "; its warnings are not listed" : "";
    this.problemsEmpty.textContent = `No errors: the edited pack passes pss check${unlisted}.`;
    for (const d of listed) {
      const button = el("button", { type: "button", class: `diag ${d.severity}`, "data-file": d.file, "data-line": d.line, "data-col": d.col },
        el("span", { class: "loc" }, `${d.file}:${d.line}:${d.col}`),
        el("span", { class: `sev ${d.severity}` }, d.severity),
        el("span", { class: "msg" }, d.message),
        d.hint ? el("span", { class: "hint" }, `hint: ${d.hint}`) : null);
      button.addEventListener("click", () => this.goTo(d.file, d.line, d.col));
      this.problems.append(el("li", {}, button));
    }
    firstStop(this.problems);
  }

  // Underline the current file's problems in the editor.
  showDiagnostics() {
    if (this.current === null) return;
    const doc = this.view.state.doc;
    const marks = this.diagnostics.filter((d) => d.file === this.current).map((d) => {
      const from = position(doc, d.line, d.col);
      let to = d.end_line > 0 ? position(doc, d.end_line, d.end_col) : from;
      if (to <= from) to = wordEnd(doc, from);
      return { from, to, severity: d.severity, message: d.hint ? `${d.message}\nhint: ${d.hint}` : d.message };
    });
    this.view.dispatch(setDiagnostics(this.view.state, marks));
  }
}

function position(doc, line, col) {
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  return Math.min(l.from + Math.max(col - 1, 0), l.to);
}

function wordEnd(doc, from) {
  const line = doc.lineAt(from);
  const rest = line.text.slice(from - line.from);
  const word = /^[\w.]+/.exec(rest);
  return from + (word ? word[0].length : Math.min(1, rest.length));
}
