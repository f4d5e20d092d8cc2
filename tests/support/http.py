"""Request helpers for chalice.test clients."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from tests.support.api import KEYS


def headers(client_id: str = "epr", **extra: str) -> dict[str, str]:
    key = dict(KEYS)[client_id]
    return {"x-api-key": key, "content-type": "application/json", **extra}


def post(client: Client, path: str, body: Any, client_id: str = "epr", **extra: str) -> Any:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.http.post(path, headers=headers(client_id, **extra),
                            body=raw.encode() if isinstance(raw, str) else raw)


def get(client: Client, path: str, client_id: str = "epr") -> Any:
    return client.http.get(path, headers=headers(client_id))
