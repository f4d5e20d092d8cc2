"""Finding ambiguous and shadowed identification rules without comparing every pair.

In: a pack's rules and compiled code sets. Out: `Ambiguous` groups (rules of one rank that
can match the same activity: the connected parts of the `analysis.can_overlap` relation),
`Shadowed` groups (rules that can never apply, each under the earliest rule that
`analysis.covers` it) and, if a pack is built to defeat the index, one `Unanalysed` saying so.

How it stays near-linear:

* rules with equal constraints form one class, compared once;
* within a rank, rules are indexed by the codes they can match on the single-valued dimension
  most of them constrain, and swept in order of their lowest age, so only rules that share a
  code (or code above or below it) *and* whose age ranges can still meet are compared;
* a pair already in one group is never compared (union-find);
* a shadowing rule must hold one of the later rule's codes, so only rules sharing it are tried.

A pack can still be built so that every candidate fails (thousands of rules on one code,
same-rank and one-month age bands apart at different ranks); past `MAX_COMPARISONS` the
search stops and says so, as an error, rather than run for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chalicelib.dsl import ast
from chalicelib.dsl.analysis import IMPLIES, SINGLE_VALUED, Profile, can_overlap, covers, profile
from chalicelib.dsl.codesets import CodeSet

# ~1 s of comparisons: far more than any real pack needs (the national pack needs hundreds).
MAX_COMPARISONS = 1_000_000


@dataclass(frozen=True)
class Ambiguous:
    """Rules of one rank that can match the same activity (a connected group, file order)."""

    rank: int
    rules: tuple[ast.RuleDecl, ...]


@dataclass(frozen=True)
class Shadowed:
    """Rules that can never apply because the earlier rule `by` matches all they match."""

    by: ast.RuleDecl
    rules: tuple[ast.RuleDecl, ...]


@dataclass(frozen=True)
class Unanalysed:
    """The search stopped after `MAX_COMPARISONS`; reported at `rule`, the pack's first
    (lowest-ranked) rule, for a pack of `count` rules."""

    rule: ast.RuleDecl
    count: int


Relation = Ambiguous | Shadowed | Unanalysed


class _Budget(Exception):
    """Raised inside a search when it has used up its comparisons."""


class _Counter:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _Budget


def rule_relations(
    rules: list[ast.RuleDecl], codesets: dict[str, CodeSet], limit: int = MAX_COMPARISONS
) -> list[Relation]:
    """Every ambiguous group, then every shadowed group (each ordered by its first rule)."""
    ordered = sorted(rules, key=lambda r: (r.rank, r.name))
    classes: dict[object, list[ast.RuleDecl]] = {}
    profiles: dict[object, Profile] = {}
    for rule in ordered:
        found = profile(rule, codesets)
        if found is not None:
            key = _signature(found)
            classes.setdefault(key, []).append(rule)
            profiles.setdefault(key, found)
    reps = [(members, profiles[key]) for key, members in classes.items()]
    counter = _Counter(limit)
    out: list[Relation] = []
    for search in (_ambiguous, _shadowed):
        try:
            out.extend(search(reps, counter))
        except _Budget:
            return [*out, Unanalysed(ordered[0], len(ordered))]
    return out


def _signature(p: Profile) -> object:
    """Equal for profiles with the same constraints, whatever their sets are called."""
    return (tuple(sorted((dim, s.system, s.keys) for dim, s in p.sets)), p.age)


def _prefixes(key: str) -> list[str]:
    """Every shorter code above `key` in its hierarchy (`K262` -> `K`, `K2`, `K26`)."""
    return [key[:length] for length in range(1, len(key))]


class _Live:
    """Indexed items whose age range can still meet the items to come (swept by lowest age)."""

    def __init__(self, highs: list[float]) -> None:
        self.highs = highs
        self.lists: dict[object, list[int]] = {}

    def add(self, key: object, n: int) -> None:
        self.lists.setdefault(key, []).append(n)

    def get(self, key: object, low: float) -> list[int]:
        found = self.lists.get(key)
        if not found:
            return []
        # Later items start no lower than `low`: an item ending below it can meet none.
        kept = [m for m in found if self.highs[m] >= low]
        if len(kept) < len(found):
            found[:] = kept
        return kept


def _candidates(profiles: list[Profile], counter: _Counter) -> Iterator[tuple[int, set[int]]]:
    """(i, items already seen that might overlap item i), items visited by lowest age."""
    counts: dict[str, int] = {}
    for p in profiles:
        for dim in {d for d, _ in p.sets if d in SINGLE_VALUED}:
            counts[dim] = counts.get(dim, 0) + 1
    pivot = max(sorted(counts), key=counts.__getitem__) if counts else ""
    live = _Live([p.age.high for p in profiles])
    everyone, wild = object(), object()
    for n in sorted(range(len(profiles)), key=lambda n: profiles[n].age.low):
        p = profiles[n]
        low = p.age.low
        sets = [s for dim, s in p.sets if dim == pivot]
        keys: frozenset[str] = frozenset().union(*(s.keys for s in sets))
        if not keys:
            found = set(live.get(everyone, low))
        else:
            found = set(live.get(wild, low))
            hierarchical = sets[0].hierarchical
            for key in keys:
                found.update(live.get(("=", key), low))
                if hierarchical:
                    for above in _prefixes(key):
                        found.update(live.get(("=", above), low))
                    found.update(live.get(("<", key), low))
        counter.spend(len(found) + 1)
        yield n, found
        live.add(everyone, n)
        if not keys:
            live.add(wild, n)
            continue
        for key in keys:
            live.add(("=", key), n)
            if sets[0].hierarchical:
                for above in _prefixes(key):
                    live.add(("<", above), n)


class _Components:
    """Union-find over item numbers."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, n: int) -> int:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _ambiguous(reps: list[tuple[list[ast.RuleDecl], Profile]],
               counter: _Counter) -> list[Ambiguous]:
    by_rank: dict[int, list[tuple[list[ast.RuleDecl], Profile]]] = {}
    for members, p in reps:
        for rank in sorted({r.rank for r in members}):
            by_rank.setdefault(rank, []).append(([r for r in members if r.rank == rank], p))
    groups: list[Ambiguous] = []
    for rank, found in sorted(by_rank.items()):
        # A rule whose own constraints cannot meet matches nothing, so overlaps nothing.
        items = [(members, p) for members, p in found if can_overlap(p, p)]
        parts = _Components(len(items))
        for n, earlier in _candidates([p for _, p in items], counter):
            for m in earlier:
                if parts.find(m) != parts.find(n) and can_overlap(items[m][1], items[n][1]):
                    parts.join(m, n)
        joined: dict[int, list[ast.RuleDecl]] = {}
        for n, (members, _) in enumerate(items):
            joined.setdefault(parts.find(n), []).extend(members)
        for members in joined.values():
            if len(members) > 1:
                in_order = tuple(sorted(members, key=lambda r: (r.span, r.name)))
                groups.append(Ambiguous(rank, in_order))
    return sorted(groups, key=lambda g: (g.rank, g.rules[0].name))


def _shadowed(reps: list[tuple[list[ast.RuleDecl], Profile]],
              counter: _Counter) -> list[Shadowed]:
    order = sorted(range(len(reps)), key=lambda n: (reps[n][0][0].rank, reps[n][0][0].name))
    items = [reps[n] for n in order]
    shadows: dict[str, tuple[ast.RuleDecl, list[ast.RuleDecl]]] = {}
    ranks = [members[0].rank for members, _ in items]
    for n, earlier in _coverers([p for _, p in items], ranks, counter):
        members, p2 = items[n]
        first = members[0]
        # The earliest coverer of the class's first rule covers the whole class; without
        # one, the first rule covers its class's later-ranked rules.
        by = next((items[m][0][0] for m in earlier
                   if items[m][0][0].rank < first.rank and covers(items[m][1], p2)), None)
        found = members if by is not None else [r for r in members if r.rank > first.rank]
        if found:
            by = by or first
            shadows.setdefault(by.name, (by, []))[1].extend(found)
    ordered = sorted(shadows.values(), key=lambda s: (s[0].rank, s[0].name))
    return [Shadowed(by, tuple(sorted(found, key=lambda r: (r.rank, r.name))))
            for by, found in ordered]


def _coverers(profiles: list[Profile], ranks: list[int],
              counter: _Counter) -> Iterator[tuple[int, list[int]]]:
    """(i, lower-ranked profiles that might cover profile i, earliest first); `profiles` come
    in rank order and `ranks` holds each one's rank.

    A profile covering another holds, on its first constrained dimension, a set containing
    the other's set on that dimension (or on one implying it), so it holds a code at or above
    one of the other's; one constraining no code set (age only) might cover anything. Its
    age range must contain the other's, which is checked before anything else.
    """
    exact: dict[tuple[str, str], list[int]] = {}
    wild: list[int] = []
    pending: list[int] = []  # items of the current rank: indexed once the rank is done
    for n, p in enumerate(profiles):
        if pending and ranks[pending[0]] != ranks[n]:
            for m in pending:
                _index_coverer(m, profiles[m], exact, wild)
            pending.clear()
        pending.append(n)
        found: set[int] = set(wild)
        for dim, s in p.sets:
            if not s.keys:
                found.update(m for m in range(n) if ranks[m] < ranks[n])
                break
            key = min(s.keys)
            above = _prefixes(key) if s.hierarchical else []
            for target in {dim, IMPLIES.get(dim, dim)}:
                for prefix in (key, *above):
                    found.update(exact.get((target, prefix), ()))
        age = p.age
        counter.spend(len(found) + 1)
        yield n, sorted(m for m in found if profiles[m].age.low <= age.low
                        and profiles[m].age.high >= age.high)


def _index_coverer(n: int, p: Profile, exact: dict[tuple[str, str], list[int]],
                   wild: list[int]) -> None:
    if not p.sets:
        wild.append(n)
        return
    dim, s = p.sets[0]
    for key in s.keys:
        exact.setdefault((dim, key), []).append(n)
