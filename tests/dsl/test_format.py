"""`pss fmt` is canonical and idempotent and never changes meaning; comments survive."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.dsl.formatting import format_text
from chalicelib.dsl.lowering import lower
from chalicelib.dsl.parser import parse_text
from tests.dsl.test_semantics import PACK

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def ast_of(text: str) -> object:
    tree = parse_text(text, "x.pss")
    assert not hasattr(tree, "severity"), tree
    return lower(tree, "x.pss").items


@pytest.mark.parametrize("path", sorted(POLICIES.rglob("*.pss")), ids=lambda p: p.name)
def test_every_pack_file_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = format_text(text, "x.pss")
    assert isinstance(once, str)
    assert ast_of(once) == ast_of(text)
    assert format_text(once, "x.pss") == once
    assert [c for c in text.splitlines() if c.strip().startswith("#")] == [
        c for c in once.splitlines() if c.strip().startswith("#")
    ]


def test_messy_text_becomes_canonical_and_keeps_comments() -> None:
    messy = (
        '# header comment\npack "p" version "1"   covers from 2013-04-01\n'
        'fact  x : int "an int"   # trailing\n'
        'policy "P" version 1 "t" { effective from 2020-01-01 governs any line\n'
        "  # about criteria\n  criteria all of { x >= 1 x<=3 }  when met: eligible }\n"
    )
    once = format_text(messy, "x.pss")
    assert isinstance(once, str)
    assert 'fact x: int "an int"  # trailing' in once
    assert "  # about criteria\n  criteria all of {\n    x >= 1\n    x <= 3\n  }" in once
    assert format_text(once, "x.pss") == once
    assert ast_of(once) == ast_of(messy)


def test_semantics_pack_round_trips() -> None:
    text = 'pack "p" version "1" covers from 2013-04-01\n' + PACK
    once = format_text(text, "x.pss")
    assert isinstance(once, str) and ast_of(once) == ast_of(text)


@pytest.mark.parametrize("criteria", [
    "x >= 0.00001",
    "x >= 10000000000000000.0",
    "(x >= 1 and y >= 1) and x <= 9",
    "x >= 1 or (y >= 1 or x <= 0)",
    "x >= 1 or y >= 1 and x <= 0",
])
def test_conditions_that_once_would_not_format(criteria: str) -> None:
    text = ('fact x: decimal "x"\nfact y: decimal "y"\n'
            f'policy "P" version 1 "t" {{\n  effective from 2020-01-01\n  governs any line\n'
            f"  criteria {criteria}\n  when met: eligible\n}}\n")
    once = format_text(text, "x.pss")
    assert isinstance(once, str), once.rendered if not isinstance(once, str) else ""
    assert ast_of(once) == ast_of(text) and format_text(once, "x.pss") == once


def test_comments_on_block_lines_stay_put_and_values_keep_their_quotes() -> None:
    text = (
        'rule r "r" {  # c11\n  line NCBPS13A\n  rank 1\n  when age >= 18  # c14\n}\n'
        'test "t" {\n  given {"date": "2025-01-01"}\n  expect route "Blueteq"  # c20\n'
        '  expect route "é"\n}\n'
    )
    once = format_text(text, "x.pss")
    assert isinstance(once, str)
    assert 'rule r "r" {  # c11' in once and "when age >= 18  # c14" in once
    assert 'expect route "Blueteq"  # c20' in once and 'expect route "é"' in once
    assert format_text(once, "x.pss") == once and ast_of(once) == ast_of(text)
