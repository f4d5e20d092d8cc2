"""Structured access logs: one JSON line per request, no personal data.

In: route, method, status, latency, decision id, client id, error code, request id. Out: one
line through the injected `emit`. Request bodies, headers, NHS numbers and API keys are never
passed in, so they cannot be logged by mistake.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AccessLog:
    """Writes access-log lines through `emit` (stdout in Lambda, a list in tests)."""

    emit: Callable[[str], None]

    def request(self, *, route: str, method: str, status: int, latency_ms: float,
                decision_id: str | None, client: str | None, error_code: str | None = None,
                request_id: str | None = None) -> None:
        """Log one finished request."""
        self.emit(json.dumps({
            "event": "request",
            "route": route,
            "method": method,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "decision_id": decision_id,
            "client": client,
            "error_code": error_code,
            "request_id": request_id,
        }, separators=(",", ":")))


def stdout_emitter() -> Callable[[str], None]:
    """An emitter writing bare lines to stdout via the `pss.access` logger (CloudWatch)."""
    logger = logging.getLogger("pss.access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # The Lambda runtime's root handler would print each line a second time.
        logger.propagate = False
    return logger.info
