"""Compiled code sets: prefix indexes for ICD-10/OPCS-4, exact sets for drugs and ODS codes.

In: the canonical codes (and ranges already expanded) of a `codeset` declaration.
Out: a `CodeSet` whose membership test costs one set lookup per code level (at most three
for ICD-10), whatever the size of the set, plus the set algebra the checker needs to find
overlapping and shadowed identification rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.codes import HIERARCHICAL


@dataclass(frozen=True)
class CodeSet:
    """A named set of codes of one system.

    For hierarchical systems a key covers itself and every code below it: key `K01` holds
    `K011`; membership checks each prefix length the set uses.
    """

    name: str
    system: str
    keys: frozenset[str]
    lengths: tuple[int, ...] = field(default=(), compare=False)

    @classmethod
    def build(cls, name: str, system: str, keys: Iterable[str]) -> CodeSet:
        """Build a set from canonical keys, dropping keys already covered by a shorter one."""
        keyset = frozenset(keys)
        if system in HIERARCHICAL:
            keyset = frozenset(
                k for k in keyset if not any(k[:n] in keyset for n in range(3, len(k)))
            )
        lengths = tuple(sorted({len(k) for k in keyset}))
        return cls(name, system, keyset, lengths)

    @property
    def hierarchical(self) -> bool:
        """True for ICD-10 and OPCS-4, whose codes cover their descendants."""
        return self.system in HIERARCHICAL

    def matcher(self) -> Callable[[str], bool]:
        """Return the fastest membership test for this set's shape."""
        keys = self.keys
        if not self.hierarchical:
            return keys.__contains__
        if len(self.lengths) == 1:
            n = self.lengths[0]
            return lambda code: code[:n] in keys
        if len(self.lengths) == 2:  # unrolled: a generator per code costs more than the test
            short, long = self.lengths
            return lambda code: code[:short] in keys or code[:long] in keys
        lengths = self.lengths
        return lambda code: any(code[:n] in keys for n in lengths)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.matcher()(code)

    def intersects(self, other: CodeSet) -> bool:
        """True when some code belongs to both sets."""
        if not self.hierarchical:
            return not self.keys.isdisjoint(other.keys)
        return any(k in other for k in self.keys) or any(k in self for k in other.keys)

    def covers(self, other: CodeSet) -> bool:
        """True when every code of `other` belongs to this set."""
        if not self.hierarchical:
            return other.keys <= self.keys
        return all(k in self for k in other.keys)
