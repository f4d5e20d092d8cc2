"""`kleene.decided` (values already computed) answers as `first_decides` (values read lazily)."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.dsl.kleene import Tri, combine, decided, first_decides

VALUES: tuple[Tri, ...] = (True, False, None)


@pytest.mark.parametrize("length", range(5))
def test_decided_agrees_with_first_decides(length: int) -> None:
    for values in itertools.product(VALUES, repeat=length):
        for stop in (True, False):
            lazy = first_decides(stop, iter(values))
            assert decided(stop, values) is lazy
            assert decided(stop, list(values)) is lazy


def test_groups_by_name() -> None:
    assert combine("all", 0, (True, None)) is None
    assert combine("all", 0, (None, False)) is False
    assert combine("any", 0, (False, None)) is None
    assert combine("any", 0, (None, True)) is True
    assert combine("any", 0, ()) is False
    assert combine("all", 0, ()) is True
