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
