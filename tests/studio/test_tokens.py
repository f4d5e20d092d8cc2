"""Highlighting comes from the grammar: every keyword and named terminal is in the table."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from chalicelib.dsl.parser import grammar_path
from chalicelib.studio.tokens import TAGS, token_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def table() -> dict[str, object]:
    return token_table(grammar_path())


def test_every_word_literal_of_the_grammar_is_a_keyword(table: dict[str, object]) -> None:
    text = grammar_path().read_text()
    # Rule lines only: a terminal's own alternatives (BOOL: "yes" | "no") are its regex.
    rules = "\n".join(line.split("//")[0] for line in text.splitlines()
                      if not re.match(r"^[A-Z_]+(\.\d+)?:", line))
    words = set(re.findall(r'"([a-z_]+)"', rules))
    assert {"rule", "policy", "attested", "exactly", "highly_specialised"} <= words
    assert words == set(table["keywords"])  # type: ignore[arg-type]


def test_every_named_terminal_has_a_tag_and_no_tag_is_stale(table: dict[str, object]) -> None:
    text = grammar_path().read_text()
    named = set(re.findall(r"^([A-Z_]+)(?:\.\d+)?:", text, re.MULTILINE)) | {"WS"}
    assert named == set(TAGS)
    shown = {t["name"] for t in table["terminals"]}  # type: ignore[attr-defined]
    assert shown == {name for name, tag in TAGS.items() if tag is not None}


def test_a_terminal_without_a_tag_fails_the_build(tmp_path: Path) -> None:
    grammar = tmp_path / "g.lark"
    grammar.write_text('start: "x" NEWTHING\nNEWTHING: /[0-9]+/\n')
    with pytest.raises(ValueError, match="NEWTHING"):
        token_table(grammar)


def test_priorities_come_from_the_grammar(table: dict[str, object]) -> None:
    priority = {t["name"]: t["priority"] for t in table["terminals"]}  # type: ignore[attr-defined]
    assert (priority["DATE"], priority["CODE"], priority["NAME"]) == (3, 2, 0)


def test_the_built_table_is_of_the_current_grammar() -> None:
    built = ROOT / "studio" / "gen" / "pss-tokens.json"
    if not built.is_file():
        pytest.fail("the studio is not built: run `make studio` (make test does)")
    digest = hashlib.sha256(grammar_path().read_bytes()).hexdigest()
    assert json.loads(built.read_text())["grammar_sha256"] == digest
