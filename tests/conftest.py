"""Shared fixtures: small packs built from text, a fixed clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from chalicelib.dsl.loader import check_sources
from chalicelib.dsl.source import Diagnostic
from chalicelib.engine.policy_set import PolicySet

FIXED_NOW = dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)

HEADER = 'pack "test pack" version "t.1" covers from 2013-04-01\n'


def fixed_clock() -> dt.datetime:
    return FIXED_NOW


def build(text: str, *, header: bool = True) -> PolicySet:
    """Compile a one-file pack from text; fail the test with the diagnostics if it has errors."""
    checked, diagnostics = check_sources({"t.pss": (HEADER if header else "") + text})
    errors = [d for d in diagnostics if d.severity == "error"]
    assert checked is not None and not errors, "\n".join(d.headline() for d in diagnostics)
    return PolicySet(checked, "sha256:test", fixed_clock)


def diagnose(text: str, *, header: bool = True) -> list[Diagnostic]:
    """Every diagnostic of a one-file pack (line numbers count the header line)."""
    return check_sources({"t.pss": (HEADER if header else "") + text})[1]


@pytest.fixture
def make_pack() -> Callable[[str], PolicySet]:
    return build
