"""Decision ids: ULIDs made from an injected clock and an injected source of randomness.

In: a clock and `entropy(n) -> n random bytes`. Out: 26-character Crockford base-32 ids that
sort by creation time (48-bit milliseconds, then 80 random bits), as `01JD...`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def ulid(now: dt.datetime, entropy: bytes) -> str:
    """Encode a time (ms precision) and 10 bytes of entropy as a ULID."""
    if len(entropy) != 10:
        raise ValueError("a ULID needs exactly 10 bytes of entropy")
    millis = int(now.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(entropy, "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def is_ulid(text: str) -> bool:
    """True when `text` has the shape of a ULID (checked before any store lookup)."""
    return bool(ULID_PATTERN.match(text))


@dataclass(frozen=True)
class UlidFactory:
    """Calling it gives a new ULID; clock and entropy are injected so tests are repeatable."""

    clock: Callable[[], dt.datetime]
    entropy: Callable[[int], bytes] = field(default=os.urandom)

    def __call__(self) -> str:
        """Return a new id."""
        return ulid(self.clock(), self.entropy(10))
