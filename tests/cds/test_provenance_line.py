"""A card adds one line when its answer rests on unverified pack content, and none otherwise."""

from __future__ import annotations

from types import SimpleNamespace

from chalicelib.cds.provenance import MAX_ITEMS, unverified_lines
from chalicelib.cds.service import ORDER_SIGN
from tests.cds.conftest import Recorder, hook_request, run, tavi_order
from tests.conftest import build
from tests.provenance_pack import PACK


def _tavi_card(recorder: Recorder) -> dict[str, object]:
    status, body = run(ORDER_SIGN, hook_request(orders=[tavi_order()]), recorder)
    assert status == 200
    card: dict[str, object] = body["cards"][0]
    return card


def test_unverified_answer_gets_a_provenance_line(recorder: Recorder) -> None:
    # The CDS fixture pack cites no sources, so its TAVI answer rests on unverified items.
    detail = str(_tavi_card(recorder)["detail"])
    lines = [line for line in detail.splitlines() if line.startswith("- **Provenance:**")]
    assert len(lines) == 1
    assert "`rule tavi`" in lines[0] and "`service 7`" in lines[0]


def test_verified_answer_has_no_provenance_line() -> None:
    detail = str(_tavi_card(Recorder(build(PACK)))["detail"])
    assert "Provenance" not in detail


def test_the_line_names_at_most_a_few_items() -> None:
    items = [SimpleNamespace(kind="rule", id=f"r{i}", source=[], verified=False)
             for i in range(8)]
    (line,) = unverified_lines(SimpleNamespace(unverified=True, provenance=items))
    assert f"`rule r{MAX_ITEMS - 1}`" in line and f"`rule r{MAX_ITEMS}`" not in line
    assert line.endswith(f"and {8 - MAX_ITEMS} more")
    assert unverified_lines(SimpleNamespace(unverified=False, provenance=items)) == []
