"""`pss batch` rows end with `verified`: false when the answer rests on unverified content."""

from __future__ import annotations

from chalicelib.batch.rows import COLUMNS, RESULT_COLUMNS, Layout, RowDecider
from tests.conftest import build
from tests.provenance_pack import PACK


def _row(procedure: str) -> list[str]:
    cells = dict.fromkeys(COLUMNS, "")
    cells.update({"record_id": "r1", "setting": "apc", "activity_date": "2025-06-01",
                  "age": "81", "dominant_procedure": procedure})
    return [cells[c] for c in COLUMNS]


def test_verified_column_follows_the_decision() -> None:
    assert RESULT_COLUMNS[-1] == "verified"
    decider = RowDecider(build(PACK), Layout.from_header(COLUMNS))
    tavi = dict(zip(RESULT_COLUMNS, decider.decide(_row("K26.2")), strict=True))
    valve = dict(zip(RESULT_COLUMNS, decider.decide(_row("K25.2")), strict=True))
    assert (tavi["service_line"], tavi["verified"]) == ("NCBPS13A", "true")
    assert (valve["service_line"], valve["verified"]) == ("NCBPS13B", "false")
