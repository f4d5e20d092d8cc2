"""Card Markdown: outside text shows as itself, escaped only where Markdown would act on it.

The reference is markdown-it-py's CommonMark parser with GFM's tables and strikethrough on (a
card's detail is GitHub Flavored Markdown): whatever the text, a line built as the cards build
theirs parses to one list item holding exactly that text (line breaks as spaces) and no markup
but ours; and text Markdown would leave alone is sent unescaped.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from chalicelib.cds.markdown import code, text
from chalicelib.cds.orders import Order
from tests.cds.conftest import hook_request

GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])
RISKY = [*"ab1 _*`~[]()<>&#;|\\!-+.:/=\n\ré—“", "&amp;", "&#x41;", "<b>", "</i>", "www."]


def _rendered(markdown: str) -> tuple[list[str], list[str], str]:
    """The block token types, the inline token types and the text the reader sees."""
    tokens = GFM.parse(markdown)
    blocks = [t.type for t in tokens]
    inline: list[Any] = [c for t in tokens if t.type == "inline" for c in t.children or []]
    shown = "".join(c.content for c in inline if c.type in ("text", "code_inline"))
    return blocks, [c.type for c in inline], shown


LIST_ITEM = ["bullet_list_open", "list_item_open", "paragraph_open", "inline", "paragraph_close",
             "list_item_close", "bullet_list_close"]


def _seen(value: str) -> str:
    return value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(RISKY), min_size=1, max_size=12).map("".join))
def test_any_text_after_a_label_shows_as_itself_and_nothing_else(value: str) -> None:
    blocks, inline, shown = _rendered(f"- **Order:** {text(value)} (x)")
    assert blocks == LIST_ITEM
    assert inline.count("strong_open") == 1 and set(inline) <= {
        "text", "strong_open", "strong_close"}, inline
    assert shown == f"Order: {_seen(value)} (x)"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(RISKY), min_size=1, max_size=12).map("".join))
def test_any_text_opening_a_list_item_stays_one_plain_item(value: str) -> None:
    assume(value.strip(" \t\r\n"))  # an empty item is not a case the cards make
    blocks, inline, shown = _rendered(f"- {text(value, line_start=True)}\n- next")
    assert blocks == LIST_ITEM[:-1] + LIST_ITEM[1:], blocks  # two items of one list
    assert set(inline) <= {"text"}, inline
    assert shown == _seen(value).lstrip(" \t").rstrip() + "next"


@pytest.mark.parametrize("plain", [
    "cetuximab_colorectal", "policies/cancer.pss:69", "service 105: icb_delegated",
    "age < 18 & over", "C18-C20 | #1 (left) ]", "Blueteq CET5 (2025)", "NHSCB/A09/P/a",
    "x > y! 3.5", "a_1_b_c",
])
def test_text_markdown_leaves_alone_is_sent_as_it_is(plain: str) -> None:
    assert text(plain) == plain
    assert _rendered(f"- {text(plain)}")[2] == plain


@pytest.mark.parametrize(("value", "escaped"), [
    ("_lead", "\\_lead"), ("trail_", "trail\\_"), ("a__b", "a\\_\\_b"), ("a*b*", "a\\*b\\*"),
    ("`x`", "\\`x\\`"), ("~~no~~", "\\~\\~no\\~\\~"), ("[a](b)", "\\[a](b)"),
    ("<b>", "\\<b>"), ("</i>", "\\</i>"), ("<https://x.org>", "\\<https://x.org>"),
    ("&amp;", "\\&amp;"), ("&#123;", "\\&#123;"), ("a\\b", "a\\\\b"), ("one\r\ntwo\nthree", "one two three"),
])
def test_what_markdown_would_act_on_is_escaped(value: str, escaped: str) -> None:
    assert text(value) == escaped


@pytest.mark.parametrize(("value", "escaped"), [
    ("# heading", "\\# heading"), ("> quote", "\\> quote"), ("- item", "\\- item"),
    ("+ item", "\\+ item"), ("1. first", "1\\. first"), ("12) twelfth", "12\\) twelfth"),
    ("    code", "code"), ("plain # not first", "plain # not first"),
])
def test_a_list_items_first_characters_cannot_open_a_block(value: str, escaped: str) -> None:
    assert text(value, line_start=True) == escaped
    assert text(value.lstrip()) == value.lstrip()  # not at a line start: left alone


def test_code_spans_hold_no_backquote_or_line_break() -> None:
    assert code("a`b\nc") == "`a'b c`"
    assert _rendered(f"- {code('x_y*z')}")[2] == "x_y*z"


def test_a_card_shows_pack_names_with_their_underscores() -> None:
    from chalicelib.cds.cards import needs_card, uncoded_card

    order = Order(path="draftOrders.entry[0]", resource={}, kind="ServiceRequest",
                  reference="ServiceRequest/my_order_1", label="TAVI *urgent*",
                  other_codes=["SNOMED 40701008"])
    card = uncoded_card(order, hook_request()["hookInstance"])
    assert "(ServiceRequest/my_order_1)" in (card.detail or "")
    assert "TAVI \\*urgent\\*" in (card.detail or "")
    needs = needs_card(order, "h", ["- birth_date"])
    assert "- \\- birth_date" in (needs.detail or "")
