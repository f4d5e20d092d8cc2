"""Provenance of a pack's declarations: which items cite a source, which are unverified.

In: parsed modules (or their declarations). Out: one `Item` per declaration that must say
what it rests on (service lines, code sets, services, their commissioner entries,
identification rules, policy versions, assessments), the checker's diagnostics about
sources, and the per-file table `pss check --provenance` prints. Decisions read the same
`ast.Provenance` values (see `engine.decision`), so a count here and an answer agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from chalicelib.dsl import ast
from chalicelib.dsl.source import Span

# The order of kinds in tables; decisions use the first five.
KINDS = ("rule", "service", "line", "commissioner", "policy", "codeset", "assessment")
_PUBLIC_SCHEMES = ("https://", "http://")


@dataclass(frozen=True)
class Item:
    """One declaration that carries provenance: its kind, id, file and clauses."""

    kind: str
    id: str
    provenance: ast.Provenance
    span: Span


def commissioner_id(service: ast.ServiceDecl, entry: ast.CommissionerEntry) -> str:
    """A readable id for a commissioner entry: `7: icb_delegated from 2024-04-01 in region X`."""
    scope = ""
    if entry.scope_kind:
        scope = f" in {entry.scope_kind} " + ", ".join(entry.scope_values)
    return f"{service.id}: {entry.outcome} from {entry.start.isoformat()}{scope}"


def policy_id(policy: ast.PolicyDecl) -> str:
    """A policy version's id as provenance shows it: `NHSCB/A09/P/a v2`."""
    return f"{policy.id} v{policy.version}"


def items(decls: Iterable[ast.Declaration]) -> Iterator[Item]:
    """Every declaration that must say what it rests on, in source order."""
    for decl in decls:
        if isinstance(decl, ast.LineDecl):
            yield Item("line", decl.code, decl.provenance, decl.span)
        elif isinstance(decl, ast.CodeSetDecl):
            yield Item("codeset", decl.name, decl.provenance, decl.span)
        elif isinstance(decl, ast.ServiceDecl):
            yield Item("service", decl.id, decl.provenance, decl.span)
            for entry in decl.commissioners:
                yield Item(
                    "commissioner", commissioner_id(decl, entry), entry.provenance, entry.span
                )
        elif isinstance(decl, ast.RuleDecl):
            yield Item("rule", decl.name, decl.provenance, decl.span)
        elif isinstance(decl, ast.PolicyDecl):
            yield Item("policy", policy_id(decl), decl.provenance, decl.span)
        elif isinstance(decl, ast.AssessmentDecl):
            yield Item("assessment", decl.name, decl.provenance, decl.span)


Report = Callable[[Span, str, str], None]


def check_provenance(decls: Iterable[ast.Declaration], error: Report, warning: Report) -> None:
    """Sources must be public web addresses; an item with no source and no reason warns."""
    for item in items(decls):
        for url in item.provenance.sources:
            if not url.startswith(_PUBLIC_SCHEMES) or any(ch.isspace() for ch in url):
                error(
                    item.span,
                    f"source `{url}` of {item.kind} `{item.id}` is not a public web address",
                    "cite an https:// address a reader can open; a path on one machine is not "
                    "a source",
                )
        for reason in item.provenance.unverified:
            if not reason.strip():
                error(item.span, f"{item.kind} `{item.id}` is unverified with no reason", "")
        if not item.provenance.declared:
            warning(
                item.span,
                f"{item.kind} `{item.id}` cites no source",
                'add `source "https://..."`, or `unverified "why"` when no source supports it',
            )


@dataclass(frozen=True)
class Count:
    """Items of one kind in one file: verified, unverified (marked), and with no source."""

    file: str
    kind: str
    verified: int = 0
    unverified: int = 0
    unsourced: int = 0

    @property
    def total(self) -> int:
        return self.verified + self.unverified + self.unsourced


def counts(modules: Iterable[ast.Module]) -> list[Count]:
    """Per file and kind, how many items are verified, marked unverified, or cite nothing.

    An item with neither a source nor a reason counts as unsourced (it is not verified either).
    """
    table: dict[tuple[str, str], list[int]] = {}
    for module in modules:
        for item in items(module.items):
            row = table.setdefault((module.path, item.kind), [0, 0, 0])
            if item.provenance.verified:
                row[0] += 1
            elif item.provenance.declared:
                row[1] += 1
            else:
                row[2] += 1
    order = {kind: i for i, kind in enumerate(KINDS)}
    return [
        Count(file, kind, *row)
        for (file, kind), row in sorted(table.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    ]


def render_table(rows: list[Count]) -> str:
    """The `pss check --provenance` table: one row per file and kind, then totals per kind."""
    header = ("file", "kind", "verified", "unverified", "no source")
    body = [(r.file, r.kind, str(r.verified), str(r.unverified), str(r.unsourced)) for r in rows]
    totals: dict[str, list[int]] = {}
    for r in rows:
        t = totals.setdefault(r.kind, [0, 0, 0])
        t[0] += r.verified
        t[1] += r.unverified
        t[2] += r.unsourced
    order = {kind: i for i, kind in enumerate(KINDS)}
    summary = [
        ("all files", kind, str(t[0]), str(t[1]), str(t[2]))
        for kind, t in sorted(totals.items(), key=lambda kv: order[kv[0]])
    ]
    lines = [header, *body, *summary]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *map(fmt, body), rule, *map(fmt, summary)]) + "\n"
