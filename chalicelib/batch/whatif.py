"""What-if for a running server: the same cases under the served pack and an alternative one.

In: the served `PolicySet` (never changed), the alternative pack as text (one file), as files
(shown path → text) or as a folder `Path`, and the cases (request JSON objects of
`POST /v1/decisions`). Out: the JSON-ready diff of `diff.Tally.to_dict`, with both packs'
versions and digests. A pack that fails to check raises `PolicyError` (its diagnostics are the
400 body's details); a case that is not a JSON object counts as rejected under both packs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.batch.diff import diff_requests
from chalicelib.batch.tally import TOP
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PolicyError

MAX_CASES = 10_000


def compile_pack(text_or_dir: str | Mapping[str, str] | Path, clock_from: PolicySet,
                 read_file: Callable[[str], str] | None = None) -> PolicySet:
    """Check and compile an alternative pack held in memory or in a folder.

    `read_file` reads the code files (`file "codes/x.csv"`) of a pack held in memory, by their
    path relative to the pack folder.
    """
    from chalicelib import load_policy_set
    from chalicelib.dsl.loader import check_sources
    from chalicelib.dsl.source import SourceMap, render

    if isinstance(text_or_dir, Path):
        return load_policy_set(text_or_dir, clock_from.clock)
    texts = (
        {"policies/what-if.pss": text_or_dir} if isinstance(text_or_dir, str) else dict(text_or_dir)
    )
    checked, diagnostics = check_sources(texts, read_file)
    if checked is None or any(d.severity == "error" for d in diagnostics):
        errors = [d for d in diagnostics if d.severity == "error"] or list(diagnostics)
        raise PolicyError(errors, render(errors, SourceMap(texts)))
    digest = hashlib.sha256()
    for shown in sorted(texts):
        digest.update(shown.encode() + b"\0" + texts[shown].encode())
    return PolicySet(checked, "sha256:" + digest.hexdigest(), clock_from.clock)


def what_if(
    base: PolicySet,
    head_text_or_dir: str | Mapping[str, str] | Path,
    cases: Sequence[Any],
    top: int = TOP,
) -> dict[str, Any]:
    """Decide `cases` under `base` and the alternative pack; return what moved, as JSON data."""
    if len(cases) > MAX_CASES:
        raise ValueError(f"at most {MAX_CASES:,} cases per what-if, got {len(cases):,}")
    head = compile_pack(head_text_or_dir, base)
    named = [
        (str(c.get("referral_id") or f"case {i}") if isinstance(c, dict) else f"case {i}", c)
        for i, c in enumerate(cases)
    ]
    tally = diff_requests(named, base, head, top)
    return {
        "base": {"version": base.version, "digest": base.digest},
        "head": {"version": head.version, "digest": head.digest},
        **tally.to_dict(),
    }
