"""Keyed hashes: NHS numbers and request digests never leave the process in clear.

In: the pseudonym key (`PSS_PSEUDONYM_KEY`) and a value. Out: `hmac-sha256:<hex>`. A plain
SHA-256 of a 10-digit NHS number (or of a request containing one) could be reversed by trying
every number, so both use HMAC with the secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pseudonymiser:
    """Keyed HMAC-SHA256 of NHS numbers and of canonical request JSON."""

    key: bytes = field(repr=False)

    def nhs_number(self, number: str) -> str:
        """The keyed hash of a validated NHS number (10 digits, no spaces)."""
        return self._mac(b"nhs_number\0" + number.encode())

    def digest(self, data: Any) -> str:
        """The keyed hash of JSON data, independent of key order and whitespace."""
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return self._mac(b"request\0" + canonical.encode())

    def _mac(self, message: bytes) -> str:
        return "hmac-sha256:" + hmac.new(self.key, message, hashlib.sha256).hexdigest()
