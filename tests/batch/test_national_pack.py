"""Smoke test: synthetic activity classified with the national pack."""

from __future__ import annotations

import io
from pathlib import Path

from chalicelib import load_policy_set
from chalicelib.batch.classify import classify_stream
from tests.batch.conftest import synth_text


def test_synthetic_activity_through_the_national_pack() -> None:
    national = load_policy_set(Path(__file__).resolve().parents[2] / "policies")
    out, rejects = io.BytesIO(), io.BytesIO()
    summary = classify_stream(io.BytesIO(synth_text(3000, 1).encode()), out, rejects, national, workers=2)
    assert summary.rows_in == 3000 == summary.rows_out + summary.rejects
    commissioners = {c for c, _, _ in summary.by_line()}
    assert {"icb_core", "nhs_england"} <= commissioners
    specialised = sum(n for c, line, n in summary.by_line() if line)
    assert 0.05 < specialised / summary.rows_out < 0.3
