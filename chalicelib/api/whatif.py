"""`POST /v1/what-if`: the served pack against the same pack with some files replaced.

In: `{"files": {"policies/cardiac.pss": "<new text>", ...}, "cases": [<decision requests>]}`.
The files replace (or add to) the served pack's files in a scratch copy; the served pack is
never changed. Out: what moved between the two (counts old → new, the top changed cases with
the clause that changed them, activity shifted between NHS England and ICBs). A changed pack
that fails `pss check` is a 400 whose details are its diagnostics.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from chalicelib.api.replies import Reply, bad_request
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PolicyError, Problem, validation_problems

MAX_CASES = 1000


class WhatIfRequest(BaseModel):
    """Files to change in the pack, and the cases to decide under both packs."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(min_length=1, description="pack path (e.g. "
                                  "`policies/cardiac.pss`) -> its new text")
    cases: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_CASES)


class WhatIfOut(RootModel[dict[str, Any]]):
    """What moved between the served pack and the changed one."""


@dataclass(frozen=True)
class WhatIfService:
    """Runs what-ifs against the served pack."""

    policy_set: PolicySet
    policy_dir: Path

    def run(self, raw: Any) -> Reply:
        """Decide the cases under the served pack and the changed one; answer the diff."""
        from chalicelib.batch.whatif import what_if

        try:
            request = WhatIfRequest.model_validate(raw)
        except ValidationError as exc:
            raise bad_request(validation_problems(exc)) from None
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / self.policy_dir.name
            shutil.copytree(self.policy_dir, folder)
            for name, text in request.files.items():
                target = _inside(folder, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            try:
                answer = what_if(self.policy_set, folder, request.cases)
            except PolicyError as exc:
                raise bad_request([Problem("files", d.headline()) for d in exc.diagnostics
                                   if d.severity == "error"],
                                  "the changed pack does not pass `pss check`") from None
        return Reply(200, WhatIfOut(answer))


def _inside(folder: Path, name: str) -> Path:
    """The file `name` (`policies/x.pss` or `x.pss`) within `folder`; never outside it."""
    parts = PurePosixPath(name).parts
    if parts and parts[0] == folder.name:
        parts = parts[1:]
    if not parts or any(p in ("..", "") or p.startswith("/") for p in parts) or not (
            parts[-1].endswith(".pss") or parts[-1].endswith(".csv")):
        raise bad_request([Problem(f"files.{name}", "must be a `.pss` or `.csv` path inside "
                                   "the pack, e.g. `policies/cardiac.pss`")])
    return folder.joinpath(*parts)
