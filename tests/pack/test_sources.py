"""policies/SOURCES.md lists every address the pack's `source` clauses cite."""

from __future__ import annotations

import re

from chalicelib.dsl.loader import load_pack
from chalicelib.dsl.provenance import items
from tests.pack.make_golden import POLICIES

PARAGRAPH = re.compile(r"(https://www\.legislation\.gov\.uk/uksi/2012/2996/schedule/4)/paragraph/\w+$")


def test_every_cited_source_is_in_sources_md() -> None:
    listed = (POLICIES / "SOURCES.md").read_text(encoding="utf-8")
    modules = load_pack(POLICIES).checked.modules
    cited = {PARAGRAPH.sub(r"\1", url) for m in modules for i in items(m.items)
             for url in i.provenance.sources}
    assert len(cited) > 20
    assert sorted(url for url in cited if url not in listed) == []
