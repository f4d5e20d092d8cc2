"""Fuzzing: random and mutated policy text only ever yields structured diagnostics.

Whatever the text, parsing and checking return diagnostics (each with a position) and, when
the text is valid, a pack that compiles; no other exception escapes. `make fuzz` runs longer.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.dsl.loader import check_sources
from chalicelib.engine.policy_set import PolicySet
from tests.conftest import fixed_clock
from tests.dsl.test_semantics import PACK

EXAMPLES = int(os.environ.get("PSS_FUZZ_EXAMPLES", "1200"))
SEED_TEXT = 'pack "p" version "1" covers from 2013-04-01\n' + PACK
TOKENS = [
    "pack",
    "fact",
    "codeset",
    "service",
    "rule",
    "policy",
    "test",
    "when",
    "met",
    "not",
    "and",
    "or",
    "all of {",
    "any of {",
    "}",
    "{",
    "(",
    ")",
    ",",
    ":",
    "=",
    ">=",
    "<",
    "==",
    "-",
    "+",
    "K26.2",
    "C18-C20",
    "Q20-Q28",
    "NCBPS13A",
    "age",
    "ras_status",
    '"x"',
    "2025-02-30",
    "2025-01-01",
    "18",
    "4 weeks",
    "6 cm",
    "is",
    "known",
    "attested",
    "in",
    "between",
    "\n",
    " ",
    "#",
    "'",
    "\u00e9",
    "\x00",
    "given",
    '{"date": 1}',
    "expect",
    "rank",
    "line",
    "via",
]


def assert_structured(text: str) -> None:
    checked, diagnostics = check_sources({"f.pss": text})
    for diag in diagnostics:
        assert diag.severity in ("error", "warning")
        assert diag.message and diag.span.file == "f.pss"
    if checked is not None:
        PolicySet(checked, "sha256:fuzz", fixed_clock)  # a valid pack must also compile


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup_gives_only_diagnostics(text: str) -> None:
    assert_structured(text)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SEED_TEXT)),
            st.integers(0, 8),
            st.sampled_from([*TOKENS, "", "", ""]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_policy_text_gives_only_diagnostics(edits: list[tuple[int, int, str]]) -> None:
    text = SEED_TEXT
    for position, cut, insert in edits:
        position = min(position, len(text))
        text = text[:position] + insert + text[position + cut :]
    assert_structured(text)


def test_the_national_pack_mutated_line_by_line_never_crashes() -> None:
    folder = Path(__file__).resolve().parents[2] / "policies"
    for file in sorted(folder.glob("*.pss"))[:3]:
        lines = file.read_text(encoding="utf-8").splitlines()
        for i in range(0, len(lines), max(1, len(lines) // 40)):
            assert_structured("\n".join(lines[:i] + lines[i + 1 :]))


# --- hostile text: deep nesting, huge numbers, odd Unicode (issue 10) ----------------------

NESTERS = [("not ", ""), ("all of { ", " }"), ("any of { ", " }"), ("(", ")"),
           ("exactly one of { ", " }"), ("at least 1 of { ", " }")]
ODD_UNICODE = ["\ufeff", "\u200b", "\u202e", "\u00a0", "\ud800", "\0", "\x1b", "\u2028",
               "\U0001f600", "e\u0301", "\uff21", "\u0130"]
RULE = 'rule deep "d" {{ line NCBPS13A rank {rank} when {condition} }}\n'


@settings(max_examples=max(EXAMPLES // 20, 20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(NESTERS), min_size=1, max_size=400), st.booleans())
def test_deep_nesting_gives_only_diagnostics(levels: list[tuple[str, str]], chain: bool) -> None:
    leaf = "age" + " - age" * len(levels) + " > 1" if chain else "attested consultant"
    condition = "".join(o for o, _ in levels) + leaf + "".join(c for _, c in reversed(levels))
    assert_structured(SEED_TEXT + RULE.format(rank=9, condition=condition))


@settings(max_examples=max(EXAMPLES // 20, 20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 400), st.sampled_from(["[", '{"a": ']))
def test_deep_given_json_gives_only_diagnostics(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    given_json = '{"x": ' + opener * depth + "1" + closer * depth + "}"
    assert_structured(SEED_TEXT + f'test "t" {{ given {given_json} expect commissioner none }}\n')


@settings(max_examples=max(EXAMPLES // 20, 20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6000), st.sampled_from(["rank", "age", "json", "version", "at least"]))
def test_huge_numbers_give_only_diagnostics(digits: int, where: str) -> None:
    number = "9" * digits
    text = {
        "rank": RULE.format(rank=number, condition="age >= 1"),
        "age": RULE.format(rank=9, condition=f"age >= {number}"),
        "json": f'test "t" {{ given {{"x": {number}}} expect commissioner none }}\n',
        "version": f'policy "P" version {number} "p" {{ effective from 2020-01-01 }}\n',
        "at least": RULE.format(rank=9, condition=f"at least {number} of {{ age >= 1 }}"),
    }[where]
    assert_structured(SEED_TEXT + text)


@settings(max_examples=EXAMPLES // 4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SEED_TEXT)), st.sampled_from(ODD_UNICODE)),
                min_size=1, max_size=4))
def test_odd_unicode_anywhere_gives_only_diagnostics(edits: list[tuple[int, str]]) -> None:
    text = SEED_TEXT
    for position, char in edits:
        text = text[:position] + char + text[position:]
    assert_structured(text)
    assert_structured("\ufeff" + text)
