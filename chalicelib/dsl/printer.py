"""AST to canonical text: clause text for reasons, and `pss fmt` for whole files.

`condition_text` gives one line per condition (what decisions quote). `format_module` prints a
file canonically and keeps every comment: the printer tags each output line with the source
line it came from, and each comment goes back before the first element that followed it (or
at the end of the line it trailed). Formatting is idempotent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from chalicelib.dsl import ast

INDENT = "  "


def _q(text: object) -> str:
    """Quote a string as the language writes it (JSON escapes, non-ASCII kept)."""
    return json.dumps(text, ensure_ascii=False)


def value_text(value: ast.Value) -> str:
    """Return the canonical text of a value."""
    if isinstance(value, ast.Num):
        number = _number(value.value)
        return f"{number} {value.unit}" if value.unit else number
    if isinstance(value, ast.DateLit):
        return value.value.isoformat()
    if isinstance(value, ast.StrLit):
        return _q(value.value)
    if isinstance(value, ast.Ref):
        return value.name
    return f"{value_text(value.left)} {value.op} {value_text(value.right)}"


def condition_text(cond: ast.Condition) -> str:
    """Return the condition on one line, as a reason quotes it."""
    if isinstance(cond, ast.Group):
        if not cond.braced and cond.kind in ("all", "any"):
            joiner = " and " if cond.kind == "all" else " or "
            return joiner.join(_operand(item, cond.kind) for item in cond.items)
        inner = " ".join(_braced_item(item) for item in cond.items)
        return f"{_group_head(cond)} {{ {inner} }}"
    if isinstance(cond, ast.Not):
        inner = condition_text(cond.operand)
        if isinstance(cond.operand, ast.Group) and not cond.operand.braced:
            inner = f"({inner})"
        return f"not {inner}"
    return leaf_text(cond)


def leaf_text(cond: ast.Condition) -> str:
    """Return the text of a leaf condition."""
    if isinstance(cond, ast.Compare):
        return f"{value_text(cond.left)} {cond.op} {value_text(cond.right)}"
    if isinstance(cond, ast.Between):
        return (
            f"{value_text(cond.value)} between {value_text(cond.low)} and {value_text(cond.high)}"
        )
    if isinstance(cond, ast.IsValue):
        return f"{cond.name} is {'not ' if cond.negated else ''}{cond.value}"
    if isinstance(cond, ast.InSet):
        return f"{cond.selector} in {cond.set_name}"
    if isinstance(cond, ast.InList):
        if cond.fact is not None:
            return f"{cond.fact} in ({', '.join(cond.items)})"
        return f"{cond.selector} in ({', '.join(_q(i) for i in cond.items)})"
    if isinstance(cond, ast.BoolRef):
        return cond.name
    if isinstance(cond, ast.Attested):
        return f"attested {cond.name}"
    if isinstance(cond, ast.Known):
        return f"{cond.name} is known"
    return condition_text(cond)


def _group_head(group: ast.Group) -> str:
    return {
        "all": "all of",
        "any": "any of",
        "exactly_one": "exactly one of",
        "at_least": f"at least {group.n} of",
    }[group.kind]


def _number(value: int | float) -> str:
    """A number as the grammar writes it: digits and a point, never an exponent."""
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.20f}".rstrip("0").rstrip(".")
    return text


def _operand(item: ast.Condition, parent_kind: str) -> str:
    text = condition_text(item)
    # A written group inside another keeps its parentheses, so `(a and b) and c` stays two
    # groups (and `a or b and c` reads as it parses).
    if isinstance(item, ast.Group) and not item.braced:
        return f"({text})"
    return text


def _braced_item(item: ast.Condition) -> str:
    text = condition_text(item)
    if isinstance(item, ast.Group) and not item.braced:
        return f"({text})"
    return text


# --- whole files -------------------------------------------------------------------------

Line = tuple[str, int]  # output text, source line it came from


def format_module(module: ast.Module, comments: Iterable[tuple[int, int, str]]) -> str:
    """Print a module canonically, keeping comments (line, column, text) in place."""
    out: list[Line] = []
    for index, item in enumerate(module.items):
        block = _decl_lines(item)
        if index and (
            len(block) > 1
            or _is_block(module.items[index - 1])
            or type(item) is not type(module.items[index - 1])
        ):
            out.append(("", out[-1][1]))
        out.extend(block)
    return _weave(out, sorted(comments))


def _is_block(item: ast.Declaration) -> bool:
    return isinstance(
        item, ast.ServiceDecl | ast.RuleDecl | ast.PolicyDecl | ast.AssessmentDecl | ast.TestDecl
    )


def _weave(lines: list[Line], comments: list[tuple[int, int, str]]) -> str:
    result: list[str] = []
    pending = list(comments)
    # A comment trailing a source line stays on the first output line printed from it.
    first_at: dict[int, int] = {}
    for text, anchor in lines:
        while pending and pending[0][0] < anchor:
            line, _col, comment = pending.pop(0)
            if line in first_at:
                result[first_at[line]] += f"  {comment}"
                continue
            indent = text[: len(text) - len(text.lstrip())] if text else ""
            result.append(indent + comment)
        result.append(text)
        if text:
            first_at.setdefault(anchor, len(result) - 1)
    for line, _col, comment in pending:
        if line in first_at:
            result[first_at[line]] += f"  {comment}"
        else:
            result.append(comment)
    return "\n".join(result).rstrip("\n") + "\n"


def _decl_lines(item: ast.Declaration) -> list[Line]:
    line = item.span.line
    if isinstance(item, ast.Pack):
        return [
            (
                f"pack {_q(item.name)} version {_q(item.version)} covers from "
                f"{item.covers_from.isoformat()}",
                line,
            )
        ]
    if isinstance(item, ast.FactDecl):
        return [("fact " + _fact_body(item), line)]
    if isinstance(item, ast.AttestationDecl):
        return [(f"attestation {item.name} {_q(item.description)}", line)]
    if isinstance(item, ast.CodeSetDecl):
        items = ", ".join(_code_item(c) for c in item.items)
        head = f"codeset {item.name}: {item.system} = {items}"
        return [(head, line), *_provenance_lines(item.provenance, 1, line)]
    if isinstance(item, ast.LineDecl):
        head = f"line {item.code} {_q(item.name)}"
        return [(head, line), *_provenance_lines(item.provenance, 1, line)]
    if isinstance(item, ast.ServiceDecl):
        return _service_lines(item)
    if isinstance(item, ast.RuleDecl):
        return _rule_lines(item)
    if isinstance(item, ast.PolicyDecl):
        return _policy_lines(item)
    if isinstance(item, ast.AssessmentDecl):
        return _assessment_lines(item)
    return _test_lines(item)


def _fact_body(decl: ast.FactDecl) -> str:
    kind = decl.type.kind
    type_text = f"enum({', '.join(decl.type.values)})" if kind == "enum" else kind
    unit = f" unit {decl.unit}" if decl.unit else ""
    return f"{decl.name}: {type_text}{unit} {_q(decl.description)}"


def _provenance_lines(provenance: ast.Provenance, depth: int, anchor: int) -> list[Line]:
    """`source` then `unverified` clauses, one per line, indented under their declaration."""
    pad = INDENT * depth
    out: list[Line] = []
    if provenance.sources:
        urls = ", ".join(_q(url) for url in provenance.sources)
        out.append((f"{pad}source {urls}", provenance.source_line or anchor))
    for reason in provenance.unverified:
        out.append((f"{pad}unverified {_q(reason)}", provenance.unverified_line or anchor))
    return out


def _code_item(item: ast.CodeItem) -> str:
    return {
        "single": item.value,
        "range": f"{item.value}-{item.high}",
        "string": _q(item.value),
        "name": item.value,
        "include": f"include {item.value}",
        "file": f"file {_q(item.value)}",
    }[item.kind]


def _at(item: ast.ServiceDecl | ast.PolicyDecl, tag: str) -> int:
    """The source line of a block's field, so comments beside it stay beside it."""
    return dict(item.field_lines).get(tag, item.span.line)


def _service_lines(item: ast.ServiceDecl) -> list[Line]:
    out: list[Line] = [(f"service {_q(item.id)} {_q(item.name)} {{", item.span.line)]
    out.extend(_provenance_lines(item.provenance, 1, item.span.line))
    if item.lines:
        out.append((f"{INDENT}lines {', '.join(item.lines)}", _at(item, "lines")))
    out.append((f"{INDENT}programme {item.programme}", _at(item, "programme")))
    out.append((f"{INDENT}portfolio {item.portfolio}", _at(item, "portfolio")))
    highly = "yes" if item.highly_specialised else "no"
    out.append((f"{INDENT}highly_specialised {highly}", _at(item, "highly_specialised")))
    for entry in item.commissioners:
        scope = ""
        if entry.scope_kind:
            scope = f" in {entry.scope_kind} " + ", ".join(_q(v) for v in entry.scope_values)
        out.append(
            (
                f"{INDENT}commissioner {entry.outcome} from {entry.start.isoformat()}{scope}",
                entry.span.line,
            )
        )
        out.extend(_provenance_lines(entry.provenance, 2, entry.span.line))
    out.append(("}", max(item.span.end_line, _last(out))))
    return out


def _last(lines: list[Line]) -> int:
    return lines[-1][1]


def _rule_lines(item: ast.RuleDecl) -> list[Line]:
    out: list[Line] = [(f"rule {item.name} {_q(item.title)} {{", item.span.line)]
    out.extend(_provenance_lines(item.provenance, 1, item.span.line))
    out.append((f"{INDENT}line {item.line}", item.span.line))
    out.append((f"{INDENT}rank {item.rank}", item.span.line))
    out.extend(_condition_lines("when", item.when, 1))
    out.append(("}", _last(out)))
    return out


def _condition_lines(head: str, cond: ast.Condition, depth: int) -> list[Line]:
    pad = INDENT * depth
    prefix = f"{pad}{head} " if head else pad
    if isinstance(cond, ast.Group) and cond.braced:
        out: list[Line] = [(f"{prefix}{_group_head(cond)} {{", cond.span.line)]
        for item in cond.items:
            out.extend(_condition_lines("", item, depth + 1))
        out.append((f"{pad}}}", _last(out)))
        return out
    return [(prefix + condition_text(cond), cond.span.line)]


def _policy_lines(item: ast.PolicyDecl) -> list[Line]:
    line = item.span.line
    out: list[Line] = [(f"policy {_q(item.id)} version {item.version} {_q(item.title)} {{", line)]
    out.extend(_provenance_lines(item.provenance, 1, line))
    if item.effective_from is not None:
        to = f" to {item.effective_to.isoformat()}" if item.effective_to else ""
        effective = f"{INDENT}effective from {item.effective_from.isoformat()}{to}"
        out.append((effective, _at(item, "effective")))
    governs = "any line" if item.governs is None else ", ".join(item.governs)
    out.append((f"{INDENT}governs {governs}", _at(item, "governs")))
    out.append((f"{INDENT}rank {item.rank}", _at(item, "rank")))
    if item.applies is not None:
        out.extend(_condition_lines("applies when", item.applies, 1))
    if item.criteria is not None:
        out.extend(_condition_lines("criteria", item.criteria, 1))
    for head, outcome in (("when met:", item.met), ("when not met:", item.not_met)):
        if outcome is not None:
            route = f" via {_q(outcome.route)}" if outcome.route else ""
            out.append((f"{INDENT}{head} {outcome.eligibility}{route}", outcome.span.line))
    out.append(("}", max(item.span.end_line, _last(out))))
    return out


def _assessment_lines(item: ast.AssessmentDecl) -> list[Line]:
    out: list[Line] = [(f"assessment {item.name} {_q(item.title)} {{", item.span.line)]
    out.extend(_provenance_lines(item.provenance, 1, item.span.line))
    for decl in item.inputs:
        out.append((f"{INDENT}input {_fact_body(decl)}", decl.span.line))
    for factor in item.factors:
        out.append(
            (
                f"{INDENT}factor {factor.name} {_q(factor.title)}: "
                f"{condition_text(factor.condition)}",
                factor.span.line,
            )
        )
    for conclusion in item.conclusions:
        out.extend(_condition_lines(f"conclude {conclusion.name} when", conclusion.when, 1))
    out.append(("}", _last(out)))
    return out


def _test_lines(item: ast.TestDecl) -> list[Line]:
    out: list[Line] = [(f"test {_q(item.name)} {{", item.span.line)]
    data = _q(item.input)
    head = "given" if item.assessment is None else f"assess {item.assessment}"
    out.append((f"{INDENT}{head} {data}", item.span.line))
    for expectation in item.expectations:
        out.append(
            (
                f"{INDENT}expect {expectation.key} {_expect_value(expectation.value)}",
                expectation.span.line,
            )
        )
    out.append(("}", _last(out)))
    return out


_BARE = re.compile(r"[a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*|[0-9]+")
_KEYWORDS = frozenset({"none", "expect", "given", "assess", "test"})


def _expect_value(value: str | tuple[str, ...] | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "(" + ", ".join(_expect_item(v) for v in value) + ")"
    return _expect_item(value)


def _expect_item(value: str) -> str:
    """Bare when the grammar reads it back as the same word, else quoted."""
    return value if _BARE.fullmatch(value) and value not in _KEYWORDS else _q(value)
