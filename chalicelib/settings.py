"""Settings of one running API, read once from the environment (design section 5a).

In: a mapping of environment variables. Out: a frozen `Settings`, or `SettingsError` naming
the variable that is wrong. Only `api.wiring` reads settings; nothing else touches `os.environ`.
Secrets (API keys, the pseudonym key) are kept out of `repr` so a logged `Settings` leaks none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.errors import PssError

STAGES = ("dev", "prod")

# Only for local/dev stages: a stable default so `chalice local` works without setup. Hashes
# made with it are not secret; prod refuses to start without a real key.
DEV_PSEUDONYM_KEY = "pss-dev-only-pseudonym-key"
# Where `pss serve` / `chalice local` listen by default; card links and our FHIR URLs use it.
DEV_PUBLIC_BASE_URL = "http://127.0.0.1:8000"

_CHALICELIB = Path(__file__).resolve().parent


class SettingsError(PssError):
    """An environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """What one deployment needs: stage, table, endpoint, keys, and where the pack lives."""

    stage: str = "dev"
    table_name: str = "pss-decisions-dev"
    region: str = "eu-west-2"
    dynamodb_endpoint: str | None = None
    policy_dir: Path = field(default_factory=lambda: default_policy_dir())
    # client id -> API key; a tuple of pairs keeps the dataclass hashable and immutable.
    api_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    pseudonym_key: bytes = field(default=DEV_PSEUDONYM_KEY.encode(), repr=False)
    # Card links, our FHIR extension URLs and (issue 9) the JWT `aud` are built on this,
    # never on the Host header a caller sends.
    public_base_url: str = DEV_PUBLIC_BASE_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; raise `SettingsError` when one is bad."""
        stage = env.get("PSS_STAGE", "dev") or "dev"
        if stage not in STAGES:
            raise SettingsError(f"PSS_STAGE must be one of {', '.join(STAGES)}, not `{stage}`")
        pseudonym = env.get("PSS_PSEUDONYM_KEY", "")
        if not pseudonym:
            if stage == "prod":
                raise SettingsError("PSS_PSEUDONYM_KEY must be set in the prod stage")
            pseudonym = DEV_PSEUDONYM_KEY
        policy_dir = env.get("PSS_POLICY_DIR")
        base_url = parse_base_url(env.get("PSS_PUBLIC_BASE_URL", ""))
        return cls(
            stage=stage,
            table_name=env.get("PSS_DECISIONS_TABLE") or f"pss-decisions-{stage}",
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "eu-west-2",
            dynamodb_endpoint=env.get("PSS_DYNAMODB_ENDPOINT") or None,
            policy_dir=Path(policy_dir) if policy_dir else default_policy_dir(),
            api_keys=parse_api_keys(env.get("PSS_API_KEYS", "")),
            pseudonym_key=pseudonym.encode(),
            public_base_url=base_url,
        )

    def keys_by_client(self) -> Mapping[str, str]:
        """The API keys as a mapping client id -> key."""
        return dict(self.api_keys)


def parse_api_keys(text: str) -> tuple[tuple[str, str], ...]:
    """Parse `client:key,client2:key2` into pairs; raise `SettingsError` on a malformed entry.

    E.g. `parse_api_keys("epr:s3cret")` is `(("epr", "s3cret"),)`. The message never quotes a
    key, only the position of the bad entry.
    """
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(e.strip() for e in text.split(",")):
        if not entry:
            continue
        client, sep, key = entry.partition(":")
        if not sep or not client.strip() or not key.strip():
            raise SettingsError(f"PSS_API_KEYS entry {position + 1} is not `client_id:key`")
        pairs.append((client.strip(), key.strip()))
    return tuple(pairs)


def parse_base_url(text: str) -> str:
    """Check `PSS_PUBLIC_BASE_URL`: an absolute http(s) URL without query or fragment.

    Returned without a trailing slash; empty means the dev default.
    """
    from urllib.parse import urlsplit

    text = text.strip()
    if not text:
        return DEV_PUBLIC_BASE_URL
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError("PSS_PUBLIC_BASE_URL must be an absolute http(s) URL "
                            "without query or fragment")
    return text.rstrip("/")


def default_policy_dir() -> Path:
    """The bundled pack when it exists (Lambda), else the repository's `policies/`."""
    bundled = _CHALICELIB / "_bundle" / "policies"
    return bundled if bundled.is_dir() else _CHALICELIB.parent / "policies"
