"""PSS rules: the rules and eligibility library behind the API, the CLI and the batch.

    from chalicelib import load_policy_set

    policy_set = load_policy_set("policies")   # parse, check, compile; PolicyError lists problems
    decision = policy_set.decide(request)      # request: the JSON of POST /v1/decisions as a dict
    decision.to_dict()                         # the response JSON, minus id/version/recorded

Pipeline: text ─parser→ lark.Tree ─lowering→ ast ─checker→ CheckedPack ─compiler→ closures
─engine.PolicySet.decide→ Decision ─decisions store→ DynamoDB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from chalicelib.engine.decision import Decision
from chalicelib.engine.policy_set import Clock, PolicySet
from chalicelib.errors import NotCoveredError, PolicyError, RequestError


def system_clock() -> dt.datetime:
    """The wall clock, in UTC: the default for callers outside `dsl/` and `engine/`."""
    return dt.datetime.now(dt.UTC)


def load_policy_set(folder: str | Path = "policies", clock: Clock = system_clock) -> PolicySet:
    """Load, check and compile the pack in `folder`."""
    from chalicelib.dsl.loader import load_pack

    loaded = load_pack(folder)
    return PolicySet(loaded.checked, loaded.digest, clock)


__all__ = [
    "Decision",
    "NotCoveredError",
    "PolicyError",
    "PolicySet",
    "RequestError",
    "load_policy_set",
    "system_clock",
]
