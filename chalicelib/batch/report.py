"""The what-if report as one self-contained HTML page: inline CSS and SVG, no script, no CDN.

In: a diff `Tally` and the labels of the two packs. Out: HTML text that opens offline. The
chart is a diverging bar chart of moved activity by service line (out to the left, in to the
right, re-commissioned within the line as a thin bar), drawn as inline SVG.
"""

from __future__ import annotations

from collections import Counter
from html import escape

from chalicelib.batch.tally import Tally

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2329;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem;
border-bottom:1px solid #d8dde3;padding-bottom:.2rem}
.sub{color:#5b6670;margin-top:0}.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #d8dde3;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eef1f4;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;
vertical-align:middle}
"""
_OUT, _IN, _RE = "#c0392b", "#1e8449", "#2e6fb7"


def moved_chart(tally: Tally, limit: int = 25, half: int = 330) -> str:
    """Inline SVG: activity moved out of / into each service line, largest movements first.

    `half` is the width of each side's bars (the studio's narrower panel asks for less)."""
    lines: Counter[str] = Counter()
    for line in set(tally.moved_in) | set(tally.moved_out) | set(tally.recommissioned):
        lines[line] = tally.moved_in[line] + tally.moved_out[line] + tally.recommissioned[line]
    ranked = [line for line, _ in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))][:limit]
    if not ranked:
        return "<p>No activity moved between service lines or commissioners.</p>"
    peak = max(max(tally.moved_in[x], tally.moved_out[x], tally.recommissioned[x]) for x in ranked)
    label_w, row_h, top = 150, 26, 24
    # The right margin holds the count printed after the longest bar ("+12,345").
    width, height = label_w + 2 * half + 60, top + row_h * len(ranked) + 10
    mid = label_w + half
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="moved activity by service line">',
        f'<text x="{mid - 8}" y="14" text-anchor="end" font-size="12" fill="#5b6670">'
        "← moved out</text>",
        f'<text x="{mid + 8}" y="14" font-size="12" fill="#5b6670">moved in →</text>',
        f'<line x1="{mid}" y1="{top - 4}" x2="{mid}" y2="{height - 6}" stroke="#9aa5b1"/>',
    ]
    for i, line in enumerate(ranked):
        y = top + i * row_h
        out_n, in_n, re_n = tally.moved_out[line], tally.moved_in[line], tally.recommissioned[line]
        w_out, w_in, w_re = (half * n / peak for n in (out_n, in_n, re_n))
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{escape(line)}</text>"
        )
        if out_n:
            parts.append(
                f'<rect x="{mid - w_out:.1f}" y="{y + 3}" width="{w_out:.1f}" height="14" '
                f'fill="{_OUT}"><title>{escape(line)}: {out_n:,} moved out</title></rect>'
            )
        if in_n:
            parts.append(
                f'<rect x="{mid}" y="{y + 3}" width="{w_in:.1f}" height="14" fill="{_IN}">'
                f"<title>{escape(line)}: {in_n:,} moved in</title></rect>"
            )
        if re_n:
            parts.append(
                f'<rect x="{mid}" y="{y + 18}" width="{w_re:.1f}" height="4" fill="{_RE}">'
                f"<title>{escape(line)}: {re_n:,} changed commissioner</title></rect>"
            )
        label = " / ".join(f"{n:+,}" for n in (-out_n, in_n) if n) or f"{re_n:,} re-commissioned"
        parts.append(
            f'<text x="{mid + max(w_in, w_re) + 6:.1f}" y="{y + 15}" font-size="11" '
            f'fill="#5b6670">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _moves_table(title: str, counter: Counter[tuple[str, str]], limit: int = 30) -> str:
    moved = sorted(
        ((c, o, n) for (o, n), c in counter.items() if o != n), key=lambda r: (-r[0], r[1:])
    )
    if not moved:
        return f"<h2>{escape(title)}</h2><p>No change.</p>"
    rows = "".join(
        f"<tr><td>{escape(o)}</td><td>{escape(n)}</td><td class=n>{c:,}</td></tr>"
        for c, o, n in moved[:limit]
    )
    return (
        f"<h2>{escape(title)} (old → new)</h2><table><tr><th>old</th><th>new</th>"
        f"<th>cases</th></tr>{rows}</table>"
    )


def _cases_table(rows: str) -> str:
    if not rows:
        return "<p>No case changed.</p>"
    head = "<tr><th>case</th><th>base</th><th>head</th><th>clause that changed</th></tr>"
    return f"<table>{head}{rows}</table>"


def html_report(tally: Tally, base_label: str, head_label: str) -> str:
    """The full page."""
    net = tally.to_icb - tally.to_nhs_england
    cards = "".join(
        f'<div class="card">{escape(label)}<b>{value}</b></div>'
        for label, value in (
            ("cases", f"{tally.cases:,}"),
            ("changed", f"{tally.changed:,}"),
            ("NHS England → ICBs", f"{tally.to_icb:,}"),
            ("ICBs → NHS England", f"{tally.to_nhs_england:,}"),
            ("net shift to ICBs", f"{net:+,}"),
        )
    )
    cases = "".join(
        f"<tr><td>{escape(c.case)}</td>"
        f"<td>{escape(c.old.commissioner)}<br>{escape(c.old.service_line)}<br>"
        f"{escape(c.old.eligibility)} {escape(c.old.policy)}</td>"
        f"<td>{escape(c.new.commissioner)}<br>{escape(c.new.service_line)}<br>"
        f"{escape(c.new.eligibility)} {escape(c.new.policy)}</td>"
        f"<td><code>{escape(c.clause)}</code></td></tr>"
        for c in tally.ranked()
    )
    legend = (
        f'<p class="legend"><span style="background:{_OUT}"></span>moved out of the line'
        f'<span style="background:{_IN}"></span>moved into the line'
        f'<span style="background:{_RE}"></span>same line, other commissioner</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>What-if: {escape(base_label)} → {escape(head_label)}</title>
<style>{_CSS}</style></head><body>
<h1>What-if impact of a policy change</h1>
<p class="sub">base <code>{escape(base_label)}</code> → head <code>{escape(head_label)}</code>;
rejected cases: {tally.rejected_base:,} under base, {tally.rejected_head:,} under head</p>
<div class="cards">{cards}</div>
<h2>Moved activity by service line</h2>{legend}{moved_chart(tally)}
{_moves_table("Commissioner", tally.commissioner)}
{_moves_table("Service line", tally.service_line)}
{_moves_table("Eligibility", tally.eligibility)}
<h2>Top changed cases</h2>
{_cases_table(cases)}
</body></html>
"""
