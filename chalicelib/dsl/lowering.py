"""Lark tree to AST. The only module that knows the grammar's rule names.

In: the tree `parser.parse_text` returns and the file path. Out: an `ast.Module`. Lowering
never fails on a tree the grammar accepted; meaning is judged later by the checker.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

from lark import Token, Transformer, Tree, v_args
from lark.tree import Meta

from chalicelib.dsl import ast
from chalicelib.dsl.source import Diagnostic, Span

# The grammar names each selector rule `sel_` + the selector with underscores.
_SELECTORS = {"sel_" + s.value.replace(" ", "_"): s for s in ast.Selector}
# A block field as lowered: (tag, value, source line).
FieldValue = tuple[str, Any, int]
_UNIT_ALIASES = {"day": "days", "week": "weeks", "month": "months", "year": "years"}


class _Clause(NamedTuple):
    """A `source` or `unverified` clause as lowered, until its declaration gathers it."""

    tag: str  # "source" | "unverified"
    values: tuple[str, ...]
    line: int


def _provenance(items: list[Any]) -> tuple[list[Any], ast.Provenance]:
    """Split a declaration's children into its other parts and its gathered provenance."""
    rest = [item for item in items if not isinstance(item, _Clause)]
    clauses = [item for item in items if isinstance(item, _Clause)]
    if not clauses:
        return rest, ast.NO_PROVENANCE
    sources = [c for c in clauses if c.tag == "source"]
    reasons = [c for c in clauses if c.tag == "unverified"]
    return rest, ast.Provenance(
        sources=tuple(v for c in sources for v in c.values),
        unverified=tuple(v for c in reasons for v in c.values),
        source_line=sources[0].line if sources else 0,
        unverified_line=reasons[0].line if reasons else 0,
    )


def _unquote(token: Token | str) -> str:
    """The text of a string literal; escapes as in JSON, any other backslash kept as is."""
    text = str(token)
    try:
        result: str = json.loads(text, strict=False)
    except json.JSONDecodeError:
        return text[1:-1]
    return result


class _Lower(Transformer[Token, Any]):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.problems: list[Diagnostic] = []

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.path, 0, 0)
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _date(self, token: Token) -> dt.date:
        """A date literal; an impossible one (2025-02-30) is reported here, at the date."""
        try:
            return dt.date.fromisoformat(str(token))
        except ValueError:
            self.problems.append(Diagnostic(
                "error", f"`{token}` is not a real date", self._tok(token),
                "dates are written YYYY-MM-DD and must exist in the calendar"))
            return dt.date.min

    def _block(self, token: Token, meta: Meta) -> Span:
        """The span of a block's name, ending where the block ends (for the formatter)."""
        start = self._tok(token)
        return Span(self.path, start.line, start.col, meta.end_line, meta.end_column)

    def _tok(self, token: Token) -> Span:
        line = token.line or 0
        col = token.column or 0
        return Span(self.path, line, col, token.end_line or line, token.end_column or col)

    # --- declarations --------------------------------------------------------------------

    @v_args(meta=True)
    def start(self, meta: Meta, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    @v_args(meta=True)
    def pack(self, meta: Meta, c: list[Token]) -> ast.Pack:
        return ast.Pack(_unquote(c[0]), _unquote(c[1]), self._date(c[2]), self._span(meta))

    @v_args(meta=True)
    def fact_decl(self, meta: Meta, c: list[Any]) -> ast.FactDecl:
        unit = c[2] if len(c) == 4 else None
        return ast.FactDecl(str(c[0]), c[1], unit, _unquote(c[-1]), self._tok(c[0]))

    assess_input = fact_decl

    @v_args(meta=True)
    def attestation_decl(self, meta: Meta, c: list[Token]) -> ast.AttestationDecl:
        return ast.AttestationDecl(str(c[0]), _unquote(c[1]), self._tok(c[0]))

    @v_args(meta=True)
    def simple_type(self, meta: Meta, c: list[Token]) -> ast.FactType:
        return ast.FactType(str(c[0]), (), self._span(meta))

    @v_args(meta=True)
    def enum_type(self, meta: Meta, c: list[Token]) -> ast.FactType:
        return ast.FactType("enum", tuple(str(t) for t in c), self._span(meta))

    def unit(self, c: list[str]) -> str:
        return c[0]

    def unit_name(self, c: list[Token]) -> str:
        name = str(c[0])
        return _UNIT_ALIASES.get(name, name)

    @v_args(meta=True)
    def codeset(self, meta: Meta, c: list[Any]) -> ast.CodeSetDecl:
        c, provenance = _provenance(c)
        return ast.CodeSetDecl(str(c[0]), str(c[1]), tuple(c[2:]), self._tok(c[0]), provenance)

    def code_single(self, c: list[Token]) -> ast.CodeItem:
        return ast.CodeItem("single", str(c[0]), "", self._tok(c[0]))

    def code_range(self, c: list[Token]) -> ast.CodeItem:
        span = self._tok(c[0])
        end = self._tok(c[1])
        return ast.CodeItem(
            "range",
            str(c[0]),
            str(c[1]),
            Span(span.file, span.line, span.col, end.line, end.end_col),
        )

    def code_string(self, c: list[Token]) -> ast.CodeItem:
        return ast.CodeItem("string", _unquote(c[0]), "", self._tok(c[0]))

    def code_name(self, c: list[Token]) -> ast.CodeItem:
        return ast.CodeItem("name", str(c[0]), "", self._tok(c[0]))

    def code_include(self, c: list[Token]) -> ast.CodeItem:
        return ast.CodeItem("include", str(c[0]), "", self._tok(c[0]))

    def code_file(self, c: list[Token]) -> ast.CodeItem:
        return ast.CodeItem("file", _unquote(c[0]), "", self._tok(c[0]))

    def line_decl(self, c: list[Any]) -> ast.LineDecl:
        c, provenance = _provenance(c)
        return ast.LineDecl(str(c[0]), _unquote(c[1]), self._tok(c[0]), provenance)

    @v_args(meta=True)
    def provenance_source(self, meta: Meta, c: list[Token]) -> _Clause:
        return _Clause("source", tuple(_unquote(t) for t in c), meta.line)

    @v_args(meta=True)
    def provenance_unverified(self, meta: Meta, c: list[Token]) -> _Clause:
        return _Clause("unverified", (_unquote(c[0]),), meta.line)

    @v_args(meta=True)
    def service(self, meta: Meta, c: list[Any]) -> ast.ServiceDecl:
        c, provenance = _provenance(c)
        fields: dict[str, Any] = {"lines": [], "line_spans": [], "commissioners": []}
        field_lines: dict[str, int] = {}
        for tag, value, line in c[2:]:
            field_lines.setdefault(tag, line)
            if tag == "lines":
                fields["lines"].extend(str(t) for t in value)
                fields["line_spans"].extend(self._tok(t) for t in value)
            elif tag == "commissioner":
                fields["commissioners"].append(value)
            else:
                fields[tag] = value
        return ast.ServiceDecl(
            id=_unquote(c[0]),
            name=_unquote(c[1]),
            lines=tuple(fields["lines"]),
            programme=fields.get("programme"),
            portfolio=fields.get("portfolio"),
            highly_specialised=bool(fields.get("highly_specialised", False)),
            commissioners=tuple(fields["commissioners"]),
            line_spans=tuple(fields["line_spans"]),
            field_lines=tuple(field_lines.items()),
            span=self._block(c[0], meta),
            provenance=provenance,
        )

    @v_args(meta=True)
    def service_lines(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("lines", c, meta.line)

    @v_args(meta=True)
    def service_programme(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("programme", str(c[0]), meta.line)

    @v_args(meta=True)
    def service_portfolio(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("portfolio", str(c[0]), meta.line)

    @v_args(meta=True)
    def service_highly(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("highly_specialised", str(c[0]) in {"yes", "true"}, meta.line)

    @v_args(meta=True)
    def commissioner(self, meta: Meta, c: list[Any]) -> FieldValue:
        c, provenance = _provenance(c)
        kind, values = c[2] if len(c) == 3 else (None, ())
        entry = ast.CommissionerEntry(
            str(c[0]), self._date(c[1]), kind, values, self._span(meta), provenance
        )
        return ("commissioner", entry, meta.line)

    def scope(self, c: list[Token]) -> tuple[str, tuple[str, ...]]:
        return (str(c[0]), tuple(_unquote(t) for t in c[1:]))

    @v_args(meta=True)
    def rule(self, meta: Meta, c: list[Any]) -> ast.RuleDecl:
        c, provenance = _provenance(c)
        return ast.RuleDecl(
            str(c[0]), _unquote(c[1]), str(c[2]), int(c[3]), c[4], self._tok(c[0]), provenance
        )

    @v_args(meta=True)
    def policy(self, meta: Meta, c: list[Any]) -> ast.PolicyDecl:
        c, provenance = _provenance(c)
        fields: dict[str, Any] = {}
        field_lines: dict[str, int] = {}
        for tag, value, *line in c[3:]:
            fields[tag] = value
            if line:
                field_lines[tag] = line[0]
        start, end = fields.get("effective", (None, None))
        return ast.PolicyDecl(
            id=_unquote(c[0]),
            version=int(c[1]),
            title=_unquote(c[2]),
            effective_from=start,
            effective_to=end,
            governs=fields.get("governs", ()),
            rank=fields.get("rank", 100),
            applies=fields.get("applies"),
            criteria=fields.get("criteria"),
            met=fields.get("met"),
            not_met=fields.get("not_met"),
            field_lines=tuple(field_lines.items()),
            span=self._block(c[0], meta),
            provenance=provenance,
        )

    @v_args(meta=True)
    def effective(self, meta: Meta, c: list[Token]) -> FieldValue:
        end = self._date(c[1]) if len(c) > 1 else None
        return ("effective", (self._date(c[0]), end), meta.line)

    @v_args(meta=True)
    def governs_lines(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("governs", tuple(str(t) for t in c), meta.line)

    @v_args(meta=True)
    def governs_any(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("governs", None, meta.line)

    @v_args(meta=True)
    def policy_rank(self, meta: Meta, c: list[Token]) -> FieldValue:
        return ("rank", int(c[0]), meta.line)

    @v_args(meta=True)
    def applies(self, meta: Meta, c: list[Any]) -> FieldValue:
        return ("applies", c[0], meta.line)

    @v_args(meta=True)
    def criteria(self, meta: Meta, c: list[Any]) -> FieldValue:
        return ("criteria", c[0], meta.line)

    @v_args(meta=True)
    def outcome_met(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Outcome]:
        return ("met", ast.Outcome(str(c[0]), c[1] if len(c) > 1 else None, self._tok(c[0])))

    @v_args(meta=True)
    def outcome_not_met(self, meta: Meta, c: list[Any]) -> tuple[str, ast.Outcome]:
        return ("not_met", ast.Outcome(str(c[0]), c[1] if len(c) > 1 else None, self._tok(c[0])))

    def route(self, c: list[Token]) -> str:
        return _unquote(c[0])

    @v_args(meta=True)
    def assessment(self, meta: Meta, c: list[Any]) -> ast.AssessmentDecl:
        c, provenance = _provenance(c)
        body = c[2:]
        return ast.AssessmentDecl(
            name=str(c[0]),
            title=_unquote(c[1]),
            inputs=tuple(x for x in body if isinstance(x, ast.FactDecl)),
            factors=tuple(x for x in body if isinstance(x, ast.Factor)),
            conclusions=tuple(x for x in body if isinstance(x, ast.Conclusion)),
            span=self._tok(c[0]),
            provenance=provenance,
        )

    def factor(self, c: list[Any]) -> ast.Factor:
        return ast.Factor(str(c[0]), _unquote(c[1]), c[2], self._tok(c[0]))

    def conclusion(self, c: list[Any]) -> ast.Conclusion:
        return ast.Conclusion(str(c[0]), c[1], self._tok(c[0]))

    # --- tests ---------------------------------------------------------------------------

    @v_args(meta=True)
    def test(self, meta: Meta, c: list[Any]) -> ast.TestDecl:
        assessment, data = c[1]
        return ast.TestDecl(_unquote(c[0]), assessment, data, tuple(c[2:]), self._tok(c[0]))

    def given(self, c: list[Any]) -> tuple[None, Any]:
        return (None, c[0])

    def assess(self, c: list[Any]) -> tuple[str, Any]:
        return (str(c[0]), c[1])

    @v_args(meta=True)
    def expectation(self, meta: Meta, c: list[Any]) -> ast.Expectation:
        return ast.Expectation(str(c[0]), c[1], self._tok(c[0]))

    def ev_name(self, c: list[Token]) -> str:
        return str(c[0])

    def ev_string(self, c: list[Token]) -> str:
        return _unquote(c[0])

    def ev_none(self, c: list[Token]) -> None:
        return None

    def ev_list(self, c: list[Token]) -> tuple[str, ...]:
        return tuple(_unquote(t) if t.type == "STRING" else str(t) for t in c)

    def json_object(self, c: list[tuple[str, Any]]) -> dict[str, Any]:
        return dict(c)

    def json_pair(self, c: list[Any]) -> tuple[str, Any]:
        return (_unquote(c[0]), c[1])

    def json_array(self, c: list[Any]) -> list[Any]:
        return list(c)

    def json_string(self, c: list[Token]) -> str:
        return _unquote(c[0])

    def json_number(self, c: list[Token]) -> int | float:
        text = str(c[0])
        return int(text) if text.lstrip("-").isdigit() else float(text)

    def json_true(self, c: list[Token]) -> bool:
        return True

    def json_false(self, c: list[Token]) -> bool:
        return False

    def json_null(self, c: list[Token]) -> None:
        return None

    # --- conditions ----------------------------------------------------------------------

    @v_args(meta=True)
    def or_(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("any", tuple(c), 0, False, self._span(meta))

    @v_args(meta=True)
    def and_(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("all", tuple(c), 0, False, self._span(meta))

    @v_args(meta=True)
    def not_(self, meta: Meta, c: list[Any]) -> ast.Not:
        return ast.Not(c[0], self._span(meta))

    @v_args(meta=True)
    def all_of(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("all", tuple(c), 0, True, self._span(meta))

    @v_args(meta=True)
    def any_of(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("any", tuple(c), 0, True, self._span(meta))

    @v_args(meta=True)
    def exactly_one_of(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("exactly_one", tuple(c), 1, True, self._span(meta))

    @v_args(meta=True)
    def at_least_of(self, meta: Meta, c: list[Any]) -> ast.Group:
        return ast.Group("at_least", tuple(c[1:]), int(c[0]), True, self._span(meta))

    @v_args(meta=True)
    def comparison(self, meta: Meta, c: list[Any]) -> ast.Compare:
        return ast.Compare(str(c[1]), c[0], c[2], self._span(meta))

    @v_args(meta=True)
    def between(self, meta: Meta, c: list[Any]) -> ast.Between:
        return ast.Between(c[0], c[1], c[2], self._span(meta))

    @v_args(meta=True)
    def is_value(self, meta: Meta, c: list[Token]) -> ast.IsValue:
        return ast.IsValue(str(c[0]), str(c[1]), False, self._span(meta))

    @v_args(meta=True)
    def is_not_value(self, meta: Meta, c: list[Token]) -> ast.IsValue:
        return ast.IsValue(str(c[0]), str(c[1]), True, self._span(meta))

    @v_args(meta=True)
    def in_set(self, meta: Meta, c: list[Any]) -> ast.InSet:
        return ast.InSet(c[0], str(c[1]), self._span(meta))

    @v_args(meta=True)
    def in_list(self, meta: Meta, c: list[Any]) -> ast.InList:
        return ast.InList(c[0], None, tuple(c[1:]), self._span(meta))

    @v_args(meta=True)
    def in_list_fact(self, meta: Meta, c: list[Any]) -> ast.InList:
        return ast.InList(None, str(c[0]), tuple(c[1:]), self._span(meta))

    @v_args(meta=True)
    def bool_ref(self, meta: Meta, c: list[Token]) -> ast.BoolRef:
        return ast.BoolRef(str(c[0]), self._span(meta))

    @v_args(meta=True)
    def attested(self, meta: Meta, c: list[Token]) -> ast.Attested:
        return ast.Attested(str(c[0]), self._span(meta))

    @v_args(meta=True)
    def known(self, meta: Meta, c: list[Token]) -> ast.Known:
        return ast.Known(str(c[0]), self._span(meta))

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Any:
        if data in _SELECTORS:
            return _SELECTORS[data]
        return Tree(data, children, meta)

    def lit_string(self, c: list[Token]) -> str:
        return _unquote(c[0])

    def lit_number(self, c: list[Token]) -> str:
        return str(c[0])

    def lit_name(self, c: list[Token]) -> str:
        return str(c[0])

    # --- values --------------------------------------------------------------------------

    @v_args(meta=True)
    def quantity(self, meta: Meta, c: list[Any]) -> ast.Num:
        text = str(c[0])
        number: int | float = float(text) if "." in text else int(text)
        return ast.Num(number, c[1] if len(c) > 1 else None, self._span(meta))

    @v_args(meta=True)
    def date_lit(self, meta: Meta, c: list[Token]) -> ast.DateLit:
        return ast.DateLit(self._date(c[0]), self._span(meta))

    @v_args(meta=True)
    def string_lit(self, meta: Meta, c: list[Token]) -> ast.StrLit:
        return ast.StrLit(_unquote(c[0]), self._span(meta))

    @v_args(meta=True)
    def ref(self, meta: Meta, c: list[Token]) -> ast.Ref:
        return ast.Ref(str(c[0]), self._span(meta))

    @v_args(meta=True)
    def add(self, meta: Meta, c: list[Any]) -> ast.BinOp:
        return ast.BinOp("+", c[0], c[1], self._span(meta))

    @v_args(meta=True)
    def sub(self, meta: Meta, c: list[Any]) -> ast.BinOp:
        return ast.BinOp("-", c[0], c[1], self._span(meta))


def lower(tree: Tree[Token], path: str) -> ast.Module:
    """Turn a parse tree of file `path` into an `ast.Module`."""
    lowering = _Lower(path)
    items = lowering.transform(tree)
    return ast.Module(path, tuple(items), tuple(lowering.problems))
