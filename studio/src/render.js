// Rendering the answers of the studio's endpoints: tests, a decision, a what-if.
import { el, clear } from "./dom.js";

const TRI = { true: ["✓", "true"], false: ["✗", "false"], null: ["?", "unknown"] };
const AT = /(\S+\.(?:pss|csv)):(\d+)/;

// A button that opens `policies/x.pss:14` in the editor.
export function atLink(at, goTo) {
  const found = AT.exec(at ?? "");
  if (!found) return el("span", { class: "loc" }, at ?? "");
  const button = el("button", { type: "button", class: "link", title: `Open ${found[0]} in the editor` }, found[0]);
  button.addEventListener("click", () => goTo(found[1], Number(found[2]), 1));
  return button;
}

export function errorBox(target, error) {
  clear(target);
  target.append(el("div", { class: "error-box", role: "alert" },
    el("strong", {}, error.message),
    error.details?.length ? el("ul", {}, error.details.map((d) => el("li", {}, el("code", {}, d.field), `: ${d.problem}`))) : null));
}

export function renderTests(summary, target, result, goTo) {
  summary.textContent = `${result.passed} passed, ${result.failed} failed`;
  clear(target);
  const cov = result.coverage;
  target.append(el("p", {}, `Clause coverage: ${cov.covered}/${cov.clauses} clauses seen both true and false.`));
  if (result.failures.length) {
    target.append(el("h3", {}, "Failures"));
    for (const f of result.failures) {
      target.append(el("div", { class: "failure" },
        el("strong", {}, f.name), " ", atLink(f.at, goTo),
        el("ul", {}, f.failures.map((text) => el("li", {}, text)))));
    }
  }
  if (cov.gaps.length) {
    target.append(el("h3", {}, "Clauses never seen both ways"));
    target.append(el("ul", {}, cov.gaps.map((g) =>
      el("li", {}, atLink(g.at, goTo), " ", el("code", {}, g.clause), ` (${g.rule}) never seen ${g.lacking}`))));
  }
}

export function renderDecision(target, d, goTo) {
  clear(target);
  const service = d.service ? `${d.service.id} · ${d.service.line} · ${d.service.name}` : "none";
  const policy = d.policy ? `${d.policy.id} v${d.policy.version} · ${d.policy.title}` : "none";
  target.append(
    el("p", {}, "Eligibility ", el("span", { class: `badge ${d.eligibility}`, "data-field": "eligibility" }, d.eligibility)),
    el("dl", { class: "facts" },
      el("dt", {}, "Commissioner"), el("dd", { "data-field": "commissioner" }, d.commissioner),
      el("dt", {}, "Service"), el("dd", { "data-field": "service" }, service),
      el("dt", {}, "Policy"), el("dd", { "data-field": "policy" }, policy),
      el("dt", {}, "Sources"), provenance(d),
      el("dt", {}, "Route"), el("dd", {}, d.route ?? "none"),
      el("dt", {}, "Missing"), el("dd", {}, d.missing.length ? d.missing.join(", ") : "none"),
      el("dt", {}, "Pack"), el("dd", {}, `${d.policy_set.version} (${d.policy_set.digest.slice(0, 19)}…)`)),
    el("h3", {}, "Why, clause by clause"),
    el("table", { class: "reasons" },
      el("thead", {}, el("tr", {}, el("th", {}, el("span", { class: "sr" }, "result")), el("th", {}, "clause, rule and where it is written"))),
      el("tbody", {}, d.reasons.map((r) => {
        const [mark, word] = TRI[String(r.result)];
        return el("tr", {},
          el("td", { class: `tri ${word}`, title: word, "aria-label": word }, mark),
          el("td", {}, el("code", {}, r.clause), el("span", { class: "meta" }, r.rule, " · ", atLink(r.at, goTo))));
      }))));
}

const KINDS = { rule: "identification rule", service: "service", line: "service line",
  commissioner: "commissioner entry", policy: "policy" };

// Only a web address becomes a link (a pack's `source` is checked to be one, but the page
// trusts nothing it is sent); anything else stays text. The text shown is the host and path.
export function sourceLink(source) {
  let url = null;
  try { url = new URL(source); } catch { url = null; }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    return el("code", { class: "src", title: "not a web address" }, source);
  }
  // One line each, cut short by the stylesheet; the whole address is the tooltip.
  return el("a", { class: "src", href: url.href, target: "_blank", rel: "noopener noreferrer",
    title: url.href }, (url.host + url.pathname).replace(/\/$/, ""));
}

// Whether the answer rests on verified pack content, and each item with its sources.
function provenance(d) {
  const items = d.provenance ?? [];
  const unverified = items.filter((item) => !item.verified).length;
  const verdict = !items.length
    ? [el("span", { class: "badge none" }, "nothing to verify"), " no pack item was needed for this answer"]
    : d.unverified
      ? [el("span", { class: "badge unverified", title: "at least one item is marked unverified in the pack: its source does not directly support it (policies/SOURCES.md)" }, "unverified"),
        ` ${unverified} of ${items.length} items this answer rests on are unverified`]
      : [el("span", { class: "badge verified", title: "every item's source directly supports it (policies/SOURCES.md)" }, "verified"),
        ` all ${items.length} items this answer rests on are verified`];
  return el("dd", { "data-testid": "decide-provenance", "data-verified": String(!d.unverified) },
    el("p", { class: "verdict" }, ...verdict),
    items.length ? el("ul", { class: "provenance" }, items.map((item) => el("li", {
      "data-kind": item.kind, "data-verified": String(item.verified) },
    el("span", { class: `mark ${item.verified ? "ok" : "warn"}`, title: item.verified ? "verified" : "unverified" },
      item.verified ? "✓" : "⚠"),
    el("span", { class: "sr" }, item.verified ? "verified: " : "unverified: "),
    el("span", { class: "kind" }, KINDS[item.kind] ?? item.kind), " ", el("code", {}, item.id),
    el("span", { class: "sources" }, item.source.length
      ? item.source.map((source) => sourceLink(source))
      : el("span", { class: "nosrc" }, "no source given")),
    // The pack's own words for why it doubts the item (text, never markup).
    (item.unverified_reasons ?? []).length
      ? el("ul", { class: "why", "aria-label": "why it is unverified" },
        item.unverified_reasons.map((reason) => el("li", {}, reason)))
      : null)))
      : null);
}

function moves(title, rows) {
  if (!rows.length) return [el("p", {}, `${title}: no change.`)];
  return [el("h3", {}, `${title} (old → new)`),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "old"), el("th", {}, "new"), el("th", { class: "n" }, "cases"))),
      el("tbody", {}, rows.slice(0, 15).map((m) => el("tr", {}, el("td", {}, m.old), el("td", {}, m.new), el("td", { class: "n" }, m.cases.toLocaleString("en-GB"))))))];
}

function outcome(o) {
  return [o.commissioner, o.service_line, o.eligibility, o.policy].filter(Boolean).join(" · ");
}

export function renderImpact(target, r, goTo) {
  clear(target);
  const n = (v) => v.toLocaleString("en-GB");
  const cards = [["cases compared", n(r.cases)], ["changed", n(r.changed)],
    ["rejected (served / edited)", `${n(r.rejected.base)} / ${n(r.rejected.head)}`],
    ["NHS England → ICBs", n(r.shift.nhs_england_to_icb)], ["ICBs → NHS England", n(r.shift.icb_to_nhs_england)],
    ["net shift to ICBs", (r.shift.net_to_icb > 0 ? "+" : "") + n(r.shift.net_to_icb)]];
  const chart = el("div", { class: "chart" });
  // The chart is the HTML report's own SVG (chalicelib/batch/report.py), escaped there.
  chart.innerHTML = r.chart_svg;
  target.append(
    el("p", { class: "summary", "data-field": "impact-line" }, `${n(r.cases)} cases compared, ${n(r.changed)} changed`),
    el("div", { class: "cards" }, cards.map(([label, value]) => el("div", { class: "card" }, label, el("b", {}, value)))),
    el("h3", {}, "Moved activity by service line"),
    el("p", { class: "legend" }, el("span", {}, el("i", { class: "out" }), "moved out"), el("span", {}, el("i", { class: "in" }), "moved in"), el("span", {}, el("i", { class: "re" }), "same line, other commissioner")),
    chart,
    ...moves("Commissioner", r.commissioner), ...moves("Eligibility", r.eligibility),
    ...moves("Service line", r.service_line),
    el("h3", {}, "Top changed cases"),
    r.top_changed.length ? el("ol", { class: "changed" }, r.top_changed.map((c) => {
      const where = AT.exec(c.clause);
      const clause = where ? c.clause.replace(` at ${where[0]}`, "") : c.clause;
      return el("li", {},
        el("strong", {}, c.case),
        el("dl", { class: "facts" },
          el("dt", {}, "served"), el("dd", {}, outcome(c.old)),
          el("dt", {}, "edited"), el("dd", {}, outcome(c.new)),
          el("dt", {}, "because"), el("dd", {}, el("code", {}, clause), " ", where ? atLink(where[0], goTo) : null)));
    })) : el("p", {}, "No case changed."));
}
