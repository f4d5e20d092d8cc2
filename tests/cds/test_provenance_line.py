"""A card adds one line when its answer rests on unverified pack content, and none otherwise."""

from __future__ import annotations

from chalicelib.cds.provenance import MAX_ITEMS, unverified_lines
from chalicelib.cds.service import ORDER_SIGN, handle
from tests.cds.conftest import TODAY, Recorder, hook_request, tavi_order
from tests.conftest import build
from tests.provenance_pack import PACK


def _tavi_card(recorder: Recorder) -> dict[str, object]:
    status, body = handle(ORDER_SIGN, hook_request(orders=[tavi_order()]), decide=recorder.decide,
                          fetch=None, today=TODAY, base_url="https://pss.example.nhs.uk")
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
    items = [{"kind": "rule", "id": f"r{i}", "source": [], "verified": False} for i in range(8)]
    (line,) = unverified_lines({"unverified": True, "provenance": items})
    assert f"`rule r{MAX_ITEMS - 1}`" in line and f"`rule r{MAX_ITEMS}`" not in line
    assert line.endswith(f"and {8 - MAX_ITEMS} more")
    assert unverified_lines({"unverified": False, "provenance": items}) == []
