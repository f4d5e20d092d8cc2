"""The card line that says an answer rests on unverified pack content.

In: a decision as the API returns it (`provenance`, `unverified`). Out: the Markdown lines a
card's detail adds: none when every item the answer rests on is verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ITEMS = 5


def _code(text: str) -> str:
    """A Markdown code span (backticks inside dropped: escapes would show there)."""
    return "`" + text.replace("`", "'") + "`"


def unverified_lines(decision: Mapping[str, Any]) -> list[str]:
    """One list line naming the unverified items (at most `MAX_ITEMS`), or nothing."""
    if not decision.get("unverified"):
        return []
    doubtful = [p for p in decision.get("provenance") or [] if not p.get("verified")]
    names = [_code(f"{p['kind']} {p['id']}") for p in doubtful[:MAX_ITEMS]]
    more = f" and {len(doubtful) - MAX_ITEMS} more" if len(doubtful) > MAX_ITEMS else ""
    return [
        "- **Provenance:** this answer rests on pack content not verified against a public "
        f"source: {', '.join(names)}{more}"
    ]
