"""The card line that says an answer rests on unverified pack content.

In: a recorded decision (its `provenance` items and `unverified` flag). Out: the Markdown lines
a card's detail adds: none when every item the answer rests on is verified.
"""

from __future__ import annotations

from chalicelib.cds.markdown import code as _code
from chalicelib.cds.recorded import RecordedDecision

MAX_ITEMS = 5


def unverified_lines(decision: RecordedDecision) -> list[str]:
    """One list line naming the unverified items (at most `MAX_ITEMS`), or nothing."""
    if not decision.unverified:
        return []
    doubtful = [p for p in decision.provenance if not p.verified]
    names = [_code(f"{p.kind} {p.id}") for p in doubtful[:MAX_ITEMS]]
    more = f" and {len(doubtful) - MAX_ITEMS} more" if len(doubtful) > MAX_ITEMS else ""
    return [
        "- **Provenance:** this answer rests on pack content not verified against a public "
        f"source: {', '.join(names)}{more}"
    ]
