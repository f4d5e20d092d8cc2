"""`Decision.to_dict`: its time (UTC, to the second, whatever zone the clock gives) and its
reasons (fresh dicts a caller may change)."""

from __future__ import annotations

import datetime as dt

from chalicelib.dsl.outcomes import Commissioner, Eligibility
from chalicelib.engine.decision import ClauseSource, Decision, utc_seconds


def test_moments_in_one_second_share_the_text_and_the_next_second_does_not() -> None:
    moment = dt.datetime(2025, 6, 1, 10, 0, 0, 999_999, tzinfo=dt.UTC)
    assert utc_seconds(moment) == "2025-06-01T10:00:00Z"
    assert utc_seconds(moment.replace(microsecond=0)) == "2025-06-01T10:00:00Z"
    assert utc_seconds(moment + dt.timedelta(microseconds=1)) == "2025-06-01T10:00:01Z"


def test_other_zones_and_the_far_past_are_written_in_utc() -> None:
    two_hours_ahead = dt.timezone(dt.timedelta(hours=2))
    assert utc_seconds(dt.datetime(2025, 6, 1, 12, 0, tzinfo=two_hours_ahead)) == \
        "2025-06-01T10:00:00Z"
    assert utc_seconds(dt.datetime(1960, 1, 1, 0, 0, 0, 500_000, tzinfo=dt.UTC)) == \
        "1960-01-01T00:00:00Z"


def test_reasons_are_fresh_dicts_of_their_clause_and_result() -> None:
    source = ClauseSource("R", "age >= 18", "t.pss:3")
    assert source == ClauseSource("R", "age >= 18", "t.pss:3")  # the rendered forms are derived
    decision = Decision("v", "sha256:x", Commissioner.ICB_CORE, None, None,
                        Eligibility.NOT_APPLICABLE, None, (),
                        tuple(source.reason(result) for result in (True, None, False)),
                        dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    first = decision.to_dict()["reasons"]
    assert first == [{"rule": "R", "clause": "age >= 18", "result": result, "at": "t.pss:3"}
                     for result in (True, None, False)]
    assert [list(r) for r in first] == [["rule", "clause", "result", "at"]] * 3  # key order
    first[0]["result"] = "changed by a caller"
    assert decision.to_dict()["reasons"][0]["result"] is True
    # A reason reads as the pair it always was: (source, result).
    reason = decision.reasons[1]
    assert tuple(reason) == (source, None) and reason.source is source and reason.result is None
