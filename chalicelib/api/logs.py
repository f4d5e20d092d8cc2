"""Structured access logs: one JSON line per request, no personal data.

In: route, method, status, latency, decision id, client id, error code, request id. Out: one
line through the injected `emit`. Request bodies, headers, NHS numbers and API keys are never
passed in, so they cannot be logged by mistake. An unexpected exception gets a line of its
own: its type and the traceback's frames (file, line, function, source line) for it and every
exception chained to it, but never an exception's message, which may quote the request.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
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


    def unexpected(self, *, route: str, method: str, request_id: str | None,
                   error: BaseException) -> None:
        """Log one unexpected exception: type and frames, never its message."""
        self.emit(json.dumps({
            "event": "unexpected_error",
            "route": route,
            "method": method,
            "request_id": request_id,
            "type": _qualified(error),
            "traceback": _frames(error),
        }, separators=(",", ":")))


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else (
        f"{kind.__module__}.{kind.__qualname__}")


def _frames(error: BaseException) -> str:
    """The traceback of `error` and of the exceptions it was raised from or during, oldest
    first, as Python prints it but with each exception's message left out."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = []
    for exc in reversed(chain):
        frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{_qualified(exc)}")
    return "\n\nDuring handling of the above exception, another exception occurred:\n\n".join(
        parts)


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
