"""Evaluate one eligibility rule in five peer rules engines, for comparison with PSS rules.

The rule: ``eligible = (age >= 18) and (diagnosis in CODESET)``, where CODESET is a set of
normalised ICD-10-like codes (uppercase, no dot, e.g. ``"C180"``) and diagnosis is one such code.

Every ``setup_<peer>(codes)`` does its one-time work (compiling, parsing, loading the code set)
outside the timed path and returns a callable that decides one input dict. Peers are imported
inside their setup function, so a missing package is reported as unavailable, not a crash.
Install the peers with ``pip install -r benchmarks/requirements-peers.txt``; run standalone with
``python benchmarks/peers.py [--seed N] [--n N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Input = dict[str, Any]
Decide = Callable[[Input], bool]

ADULT_AGE = 18
_SPACE = len(string.ascii_uppercase) * 1000  # letter + 3 digits: 26,000 possible codes


class BatchDecide:
    """A single-decision callable that also offers the engine's native batch call.

    In: ``one(input) -> bool`` and ``many(inputs) -> list[bool]``. ``run_peers`` times ``batch``
    (cost amortised per decision) when a setup function returns one of these.
    """

    def __init__(self, one: Decide, many: Callable[[Sequence[Input]], list[bool]]) -> None:
        self._one, self.batch = one, many

    def __call__(self, inp: Input) -> bool:
        return self._one(inp)


def make_codeset(seed: int, n: int = 2000) -> frozenset[str]:
    """In: seed, n <= 26,000. Out: n distinct codes, letter + 3 digits (e.g. "C181")."""
    if not 0 <= n <= _SPACE:
        raise ValueError(f"n must be in 0..{_SPACE}, got {n}")
    picks = random.Random(seed).sample(range(_SPACE), n)
    return frozenset(f"{string.ascii_uppercase[k // 1000]}{k % 1000:03d}" for k in picks)


def make_inputs(seed: int, codes: frozenset[str], n: int = 2000) -> list[Input]:
    """In: seed, code set, count. Out: n dicts ``{"age": int 0..100, "diagnosis": str}``.

    60% of diagnoses come from the set (5/6 of those with age 18..100, 1/6 aged 0..17) and 40%
    are codes outside it (any age 0..100), so ~50% are eligible and misses fall on both
    conjuncts: ~10% age only, ~33% diagnosis only, ~7% both.
    """
    rng = random.Random(seed)
    pool = sorted(codes)  # sorted: frozenset order depends on PYTHONHASHSEED
    if not pool or len(pool) >= _SPACE:
        raise ValueError("code set must be non-empty and leave room for non-member codes")
    out: list[Input] = []
    for _ in range(n):
        if rng.random() < 0.6:
            diagnosis = rng.choice(pool)
            age = rng.randint(ADULT_AGE, 100) if rng.random() < 5 / 6 else rng.randint(0, 17)
        else:
            diagnosis = pool[0]
            while diagnosis in codes:
                k = rng.randrange(_SPACE)
                diagnosis = f"{string.ascii_uppercase[k // 1000]}{k % 1000:03d}"
            age = rng.randint(0, 100)
        out.append({"age": age, "diagnosis": diagnosis})
    return out


def reference(inputs: Sequence[Input], codes: frozenset[str]) -> list[bool]:
    """In: inputs, code set. Out: the rule's answer per input, in plain Python."""
    return [inp["age"] >= ADULT_AGE and inp["diagnosis"] in codes for inp in inputs]


def setup_zen(codes: frozenset[str]) -> Decide:
    """GoRules zen-engine: JDM graph input -> expression node -> output.

    Code set: data, a JSON array ``codes`` merged into each evaluation context (dict). Baking it
    into the expression as an array literal measured slower (~450 vs ~320 us).
    """
    import zen

    def node(node_id: str, kind: str, **extra: Any) -> dict[str, Any]:
        return {"id": node_id, "type": kind, "name": node_id, "position": {"x": 0, "y": 0}, **extra}

    rule = {"expressions": [{"id": "e", "key": "eligible",
                             "value": "age >= 18 and diagnosis in codes"}]}
    graph = {
        "nodes": [node("in", "inputNode"), node("rule", "expressionNode", content=rule),
                  node("out", "outputNode")],
        "edges": [{"id": "e1", "sourceId": "in", "targetId": "rule", "type": "edge"},
                  {"id": "e2", "sourceId": "rule", "targetId": "out", "type": "edge"}],
    }
    decision = zen.ZenEngine().create_decision(json.dumps(graph))
    code_list = sorted(codes)
    return lambda inp: bool(decision.evaluate({**inp, "codes": code_list})["result"]["eligible"])


def setup_json_logic(codes: frozenset[str]) -> Decide:
    """panzi-json-logic (``json_logic.jsonLogic``): JsonLogic ``and`` of ``>=`` and ``in``.

    Code set: data, a Python list under ``codes`` in the data object (``in`` needs a list; it
    scans it). A literal list in the rule is re-applied item by item per call (~260 us).
    """
    from json_logic import jsonLogic

    rule = {"and": [{">=": [{"var": "age"}, ADULT_AGE]},
                    {"in": [{"var": "diagnosis"}, {"var": "codes"}]}]}
    code_list = sorted(codes)
    return lambda inp: bool(jsonLogic(rule, {**inp, "codes": code_list}))


def setup_cel_python(codes: frozenset[str]) -> Decide:
    """cel-python (``celpy``), default InterpretedRunner: ``age >= 18 && diagnosis in codes``.

    Code set: data, a ``celtypes.ListType`` of ``StringType`` built once and put in each
    activation (a ``MapType`` keyed by code measured the same). Not CompiledRunner: celpy caches
    one Lark parser per process, so CompiledRunner breaks if an interpreted env came first.
    """
    import celpy
    from celpy import celtypes

    env = celpy.Environment()
    program = env.program(env.compile("age >= 18 && diagnosis in codes"))
    code_list = celtypes.ListType([celtypes.StringType(c) for c in sorted(codes)])

    def decide(inp: Input) -> bool:
        return bool(program.evaluate({"age": celtypes.IntType(inp["age"]),
                                      "diagnosis": celtypes.StringType(inp["diagnosis"]),
                                      "codes": code_list}))

    return decide


def setup_common_cel(codes: frozenset[str]) -> Decide:
    """common-expression-language (``cel``, Rust): ``age >= 18 && diagnosis in codes``.

    Code set: data, a list added once with ``Context.add_variable("codes", ...)``; age and
    diagnosis come per call through ``Context.set_variable_resolver`` (documented API; the
    resolver returns None for ``codes``, which falls through to the stored variable). A plain
    dict context with the list in it re-converts 2,000 strings per call (~1,900 us).
    """
    import cel

    program = cel.compile("age >= 18 && diagnosis in codes")
    context = cel.Context()
    context.add_variable("codes", sorted(codes))
    current: list[Input] = [{}]
    context.set_variable_resolver(lambda name: current[0].get(name))

    def decide(inp: Input) -> bool:
        current[0] = inp
        return bool(program.execute(context))

    return decide


def setup_cedarpy(codes: frozenset[str]) -> Decide:
    """cedarpy (Cedar, Rust): one ``permit ... when {...}`` policy; batch call is timed.

    Code set: data, a ``Set<String>`` attribute ``codes`` on resource ``Codeset::"pss"``; the
    policy and the entity are pre-parsed once into ``PolicySet`` / ``Entities`` handles. Age
    and diagnosis are the request context.
    """
    import cedarpy

    policies = cedarpy.PolicySet.from_str(
        'permit(principal, action == Action::"check", resource == Codeset::"pss")\n'
        "when { context.age >= 18 && resource.codes.contains(context.diagnosis) };")
    entities = cedarpy.Entities.from_json_str(json.dumps(
        [{"uid": {"type": "Codeset", "id": "pss"}, "attrs": {"codes": sorted(codes)},
          "parents": []}]))

    def request(inp: Input) -> dict[str, Any]:
        return {"principal": 'Patient::"p"', "action": 'Action::"check"',
                "resource": 'Codeset::"pss"',
                "context": {"age": inp["age"], "diagnosis": inp["diagnosis"]}}

    def one(inp: Input) -> bool:
        return bool(cedarpy.is_authorized(request(inp), policies, entities).allowed)

    def many(inputs: Sequence[Input]) -> list[bool]:
        results = cedarpy.is_authorized_batch([request(i) for i in inputs], policies, entities)
        return [bool(r.allowed) for r in results]

    return BatchDecide(one, many)


PEERS: dict[str, Callable[[frozenset[str]], Decide]] = {
    "zen-engine": setup_zen,
    "panzi-json-logic": setup_json_logic,
    "cel-python": setup_cel_python,
    "common-expression-language": setup_common_cel,
    "cedarpy": setup_cedarpy,
}


@dataclass(frozen=True)
class PeerResult:
    """One peer's outcome: speed (best run, us per decision) and agreement with ``reference``."""

    name: str
    available: bool
    us_per_decision: float | None = None
    answers: list[bool] | None = None
    error: str | None = None
    mismatches: int | None = None


def _time_peer(decide: Decide, inputs: Sequence[Input], repeat: int) -> tuple[float, list[bool]]:
    """In: a decider, inputs, runs. Out: (best whole-list seconds, answers of the last run)."""
    best = float("inf")
    answers: list[bool] = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        if isinstance(decide, BatchDecide):
            answers = decide.batch(inputs)
        else:
            answers = [decide(inp) for inp in inputs]
        best = min(best, time.perf_counter() - start)
    return best, answers


def run_peers(inputs: Sequence[Input], codes: frozenset[str], repeat: int = 3,
              peers: dict[str, Callable[[frozenset[str]], Decide]] | None = None,
              ) -> list[PeerResult]:
    """In: inputs, code set, timed runs per peer, peers (default ``PEERS``).

    Out: one ``PeerResult`` per peer. A failed import gives ``available=False``; a setup or
    evaluation error gives ``available=True`` with ``error`` set and no answers.
    """
    expected = reference(inputs, codes)
    results: list[PeerResult] = []
    for name, setup in (PEERS if peers is None else peers).items():
        try:
            decide = setup(codes)
        except ImportError as exc:
            results.append(PeerResult(name, False, error=f"{type(exc).__name__}: {exc}"))
            continue
        except Exception as exc:
            results.append(PeerResult(name, True, error=f"setup {type(exc).__name__}: {exc}"))
            continue
        try:
            seconds, answers = _time_peer(decide, inputs, repeat)
        except Exception as exc:
            results.append(PeerResult(name, True, error=f"eval {type(exc).__name__}: {exc}"))
            continue
        bad = sum(a != e for a, e in zip(answers, expected, strict=False))
        bad += abs(len(answers) - len(expected))
        us = seconds / max(1, len(inputs)) * 1e6
        results.append(PeerResult(name, True, us, answers, mismatches=bad))
    return results


def format_table(results: Sequence[PeerResult]) -> str:
    """In: peer results. Out: a plain-text table, one row per peer."""
    lines = [f"{'peer':<28}{'us/decision':>12}{'eligible':>10}{'mismatches':>12}  note",
             "-" * 72]
    for r in results:
        us = f"{r.us_per_decision:.1f}" if r.us_per_decision is not None else "-"
        yes = str(sum(r.answers)) if r.answers is not None else "-"
        bad = str(r.mismatches) if r.mismatches is not None else "-"
        note = (r.error or "") if r.available else f"unavailable: {r.error}"
        lines.append(f"{r.name:<28}{us:>12}{yes:>10}{bad:>12}  {note}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """In: command-line arguments. Out: exit status (1 if any available peer disagreed)."""
    parser = argparse.ArgumentParser(description="Time one eligibility rule in peer engines.")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--codes", type=int, default=2000, help="code set size")
    parser.add_argument("--n", type=int, default=2000, help="number of inputs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    codes = make_codeset(args.seed, args.codes)
    inputs = make_inputs(args.seed + 1, codes, args.n)
    expected = reference(inputs, codes)
    print(f"{len(inputs)} inputs, {len(codes)} codes, {sum(expected)} eligible, "
          f"best of {args.repeat}")
    results = run_peers(inputs, codes, args.repeat)
    print(format_table(results))
    return 1 if any(r.error or r.mismatches for r in results if r.available) else 0


if __name__ == "__main__":
    raise SystemExit(main())
