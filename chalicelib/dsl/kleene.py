"""Three-valued logic: the one definition of how condition values combine.

A condition is True, False or None (unknown: an input it needs was not given). Groups combine
their items by Kleene's strong logic: `all` is False as soon as one item is False, `any` is
True as soon as one is True, and otherwise an unknown item makes the group unknown. The
counting groups follow from the same rule: a group is decided only when no way of filling in
the unknown items could change its answer.

Every evaluator in `chalicelib` (the compiled closures, their short-circuiting predicates and
the missing-input walk) combines values through these functions. `first_decides` consumes
its values lazily, so passing a generator of calls gives short-circuit evaluation;
`decided` is the same rule over values already computed (a list or tuple), answered by two
membership tests at C speed (the values are only ever True, False and None, so `in`
compares them exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Tri = bool | None


def first_decides(stop: bool, values: Iterable[Tri]) -> Tri:
    """Kleene `any` (`stop` True) or `all` (`stop` False) over `values`, read lazily.

    The first value equal to `stop` decides; otherwise the answer is unknown if any value was
    unknown, else `not stop`.
    """
    unknown = False
    for value in values:
        if value is stop:
            return stop
        if value is None:
            unknown = True
    return None if unknown else not stop


def decided(stop: bool, values: Sequence[Tri]) -> Tri:
    """`first_decides` over a sequence of values already computed."""
    if stop in values:
        return stop
    return None if None in values else not stop


def all_of(values: Iterable[Tri]) -> Tri:
    """Kleene conjunction."""
    return first_decides(False, values)


def any_of(values: Iterable[Tri]) -> Tri:
    """Kleene disjunction."""
    return first_decides(True, values)


def negate(value: Tri) -> Tri:
    """Kleene negation: unknown stays unknown."""
    return None if value is None else not value


def counted(kind: str, n: int, values: Sequence[Tri]) -> Tri:
    """`exactly_one` or `at_least` n: decided only when the unknowns cannot change it."""
    true, unknown = values.count(True), values.count(None)
    if kind == "exactly_one":
        if true > 1:
            return False
        if true == 1:
            return True if unknown == 0 else None
        return None if unknown else False
    if true >= n:
        return True
    return False if true + unknown < n else None


def combine(kind: str, n: int, values: Sequence[Tri]) -> Tri:
    """The value of a group of kind `all`, `any`, `exactly_one` or `at_least` n."""
    if kind == "all":
        return decided(False, values)
    if kind == "any":
        return decided(True, values)
    return counted(kind, n, values)
