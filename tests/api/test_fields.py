"""The shared field checks of `engine.fields` against plain statements of the same rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.engine.fields import nhs_number_valid


def _textbook(number: str) -> bool:
    """NHS Digital's modulus 11 algorithm, step by step."""
    if len(number) != 10 or not all(c in "0123456789" for c in number):
        return False
    total = sum(int(number[i]) * (10 - i) for i in range(9))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return False
    return check == int(number[9])


@settings(deadline=None)
@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_nhs_number_check_agrees_with_the_textbook_algorithm(number: str) -> None:
    assert nhs_number_valid(number) is _textbook(number)


def test_nhs_number_examples() -> None:
    assert nhs_number_valid("9434765919")
    assert not nhs_number_valid("9434765918")  # wrong check digit
    assert not nhs_number_valid("943476591")  # nine digits
    assert not nhs_number_valid("943476591٩")  # a non-ASCII digit
