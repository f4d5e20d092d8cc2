"""Rule-overlap analysis: indexed and grouped, yet the same relations as comparing every pair.

The pairwise definition (every same-rank pair that `can_overlap`, every later rule some
earlier-ranked rule `covers`) is the oracle; the indexed analysis must find exactly its
connected ambiguous groups and exactly its shadowed rules. Diagnostics are grouped and capped.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.overlap import overlapping_pack
from chalicelib.dsl import ast
from chalicelib.dsl.analysis import can_overlap, covers, profile
from chalicelib.dsl.checker import MAX_RELATION_REPORTS
from chalicelib.dsl.codeset_loader import load_codesets
from chalicelib.dsl.loader import check_sources, parse_sources
from chalicelib.dsl.rule_overlap import Ambiguous, Shadowed, rule_relations
from chalicelib.dsl.source import SourceMap, render
from tests.dsl.test_checker import BASE, errors, only, warnings

CODESETS = """
codeset P_K26: opcs4 = K26
codeset P_K262: opcs4 = K26.2
codeset P_K263: opcs4 = K26.3
codeset P_K27: opcs4 = K27
codeset P_MIX: opcs4 = K26.2, K27.1
codeset D_I35: icd10 = I35
codeset D_I350: icd10 = I35.0
codeset D_Q21: icd10 = Q21
"""
LEAVES = [
    "dominant procedure in P_K26", "dominant procedure in P_K262", "dominant procedure in P_K263",
    "dominant procedure in P_K27", "dominant procedure in P_MIX", "any procedure in P_K26",
    "any procedure in P_K27", "primary diagnosis in D_I35", "primary diagnosis in D_I350",
    "primary diagnosis in D_Q21", "age >= 18", "age < 16", "age < 65", "sex is female",
]


def _rules(text: str) -> tuple[list[ast.RuleDecl], dict[str, object]]:
    modules, problems = parse_sources({"f.pss": BASE + CODESETS + text})
    assert not problems
    decls = [d for m in modules for d in m.items]
    codeset_decls = {d.name: d for d in decls if isinstance(d, ast.CodeSetDecl)}
    codesets = load_codesets(codeset_decls, lambda _: "", lambda *_: None)
    return [d for d in decls if isinstance(d, ast.RuleDecl)], codesets  # type: ignore[return-value]


def _pairwise(rules: list[ast.RuleDecl], codesets: dict[str, object]
              ) -> tuple[set[frozenset[str]], set[str]]:
    """The oracle: components of the same-rank overlap graph, and every shadowed rule."""
    usable = [(r, p) for r in sorted(rules, key=lambda r: (r.rank, r.name))
              if (p := profile(r, codesets)) is not None]  # type: ignore[arg-type]
    parent = {r.name: r.name for r, _ in usable}

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    shadowed = set()
    for i, (first, p1) in enumerate(usable):
        for second, p2 in usable[i + 1:]:
            if first.rank == second.rank:
                if can_overlap(p1, p1) and can_overlap(p2, p2) and can_overlap(p1, p2):
                    parent[find(first.name)] = find(second.name)
            elif covers(p1, p2):
                shadowed.add(second.name)
    groups: dict[str, set[str]] = {}
    for r, p in usable:
        if can_overlap(p, p):
            groups.setdefault(find(r.name), set()).add(r.name)
    return {frozenset(g) for g in groups.values() if len(g) > 1}, shadowed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 3), st.lists(st.sampled_from(LEAVES), min_size=1,
                                                      max_size=3, unique=True)),
                min_size=2, max_size=14))
def test_indexed_analysis_finds_exactly_the_pairwise_relations(
        specs: list[tuple[int, list[str]]]) -> None:
    text = "".join(f'rule r{i} "r" {{ line NCBPS13A rank {rank} when {" and ".join(leaves)} }}\n'
                   for i, (rank, leaves) in enumerate(specs))
    rules, codesets = _rules(text)
    groups, shadowed = _pairwise(rules, codesets)
    found = rule_relations(rules, codesets)  # type: ignore[arg-type]
    assert {frozenset(r.name for r in g.rules) for g in found if isinstance(g, Ambiguous)} == groups
    by_rule = {r.name: g.by for g in found if isinstance(g, Shadowed) for r in g.rules}
    assert set(by_rule) == shadowed
    assert sum(len(g.rules) for g in found if isinstance(g, Shadowed)) == len(shadowed)
    named = {r.name: r for r in rules}
    for name, by in by_rule.items():  # the rule named really covers it, from a lower rank
        p1, p2 = profile(by, codesets), profile(named[name], codesets)  # type: ignore[arg-type]
        assert by.rank < named[name].rank and p1 and p2 and covers(p1, p2)


def test_a_group_of_ambiguous_rules_is_one_error_with_a_count() -> None:
    text = "".join(f'rule r{i} "r" {{ line NCBPS13A rank 2 when dominant procedure in TAVI }}\n'
                   for i in range(9))
    diag = only(errors(text))
    assert diag.message == ("9 rules can match the same activity with no precedence between "
                            "them (all rank 2): `r0`, `r1`, `r2`, `r3`, `r4` and 4 more")


def test_rules_shadowed_by_one_rule_are_one_warning_with_a_count() -> None:
    text = 'rule broad "b" { line NCBPS13A rank 1 when any procedure in VALVES }\n' + "".join(
        f'rule n{i} "n" {{ line NCBPS13A rank {i + 2} when dominant procedure in TAVI }}\n'
        for i in range(3))
    diag = only(warnings(text))
    assert diag.message == ("3 rules can never apply: rule `broad` (rank 1) matches every "
                            "activity they match: `n0`, `n1`, `n2`")


def test_three_thousand_overlapping_rules_print_at_most_200_lines() -> None:
    texts = {"policies/overlap.pss": overlapping_pack(3000, "mixed")}
    _, diagnostics = check_sources(texts)
    rendered = render(diagnostics, SourceMap(texts))
    assert len(diagnostics) == MAX_RELATION_REPORTS + 1
    assert len(rendered.splitlines()) <= 200
    last = diagnostics[-1].message
    assert last.startswith("and ") and "more groups of related rules" in last
    # Every group is counted: listed groups plus the "and N more" add up to what was found.
    assert "ambiguous" in last and "shadowed" in last


def test_a_pack_built_to_defeat_the_index_stops_and_says_so() -> None:
    text = "".join(f'rule r{i} "r" {{ line NCBPS13A rank {i + 1} when dominant procedure in '
                   f"P_K26 and age >= {i} months and age < {i + 1} months }}\n" for i in range(60))
    rules, codesets = _rules(text)
    assert rule_relations(rules, codesets) == []  # type: ignore[arg-type]  # one-month bands: nothing covers another
    stopped = rule_relations(rules, codesets, limit=500)  # type: ignore[arg-type]
    assert [type(r).__name__ for r in stopped] == ["Unanalysed"]
    assert stopped[0].rule.name == "r0" and stopped[0].count == 60  # type: ignore[union-attr]
