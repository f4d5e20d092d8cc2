"""`Decision.to_dict`'s time: UTC, to the second, whatever zone the clock gives."""

from __future__ import annotations

import datetime as dt

from chalicelib.engine.decision import utc_seconds


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
