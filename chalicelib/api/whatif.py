"""`POST /v1/what-if`: the served pack against the same pack with some files replaced.

In: `{"files": {"policies/cardiac.pss": "<new text>", ...}, "cases": [<decision requests>]}`.
The files replace (or add to) the served pack's files in a scratch copy; the served pack is
never changed. Out: what moved between the two (counts old → new, the top changed cases with
the clause that changed them, activity shifted between NHS England and ICBs). A changed pack
that fails `pss check` is a 400 whose details are its diagnostics.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from chalicelib.api.replies import ApiError, Reply, bad_request
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PolicyError, Problem, validation_problems
from chalicelib.limits import PACK_ROOT, pack_files

MAX_CASES = 1000
MAX_FILES = 64
# Lambda answers at most 6 MB: a failing pack's diagnostics are capped (in number and each
# in length, since names in them come from the request), and so is the answer itself.
MAX_DIAGNOSTICS = 50
MAX_PROBLEM_CHARS = 500
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class WhatIfRequest(BaseModel):
    """Files to change in the pack, and the cases to decide under both packs."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(min_length=1, max_length=MAX_FILES,
                                  description=f"pack path (`{PACK_ROOT}/<name>.pss`, "
                                  f"`{PACK_ROOT}/tests/<name>.pss` or "
                                  f"`{PACK_ROOT}/codes/<name>.csv`) -> its new text")
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
            # Field paths hold file names from the request: clip what is echoed back.
            raise bad_request([Problem(_clip(p.field), _clip(p.problem))
                               for p in validation_problems(exc)[:MAX_DIAGNOSTICS]]) from None
        targets, problems = pack_files(request.files)
        if problems:
            raise bad_request(problems)
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / self.policy_dir.name
            shutil.copytree(self.policy_dir, folder)
            for file in targets:
                target = folder.joinpath(*file.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(file.text, encoding="utf-8")
            try:
                answer = what_if(self.policy_set, folder, request.cases)
            except PolicyError as exc:
                errors = [d for d in exc.diagnostics if d.severity == "error"]
                details = [Problem("files", _clip(d.headline())) for d in errors[:MAX_DIAGNOSTICS]]
                if len(errors) > MAX_DIAGNOSTICS:
                    details.append(Problem("files", f"... and {len(errors) - MAX_DIAGNOSTICS:,}"
                                           " more errors (run `pss check` for all of them)"))
                raise bad_request(details, "the changed pack does not pass `pss check`") from None
        size = len(json.dumps(answer, separators=(",", ":")))
        if size > MAX_ANSWER_BYTES:
            raise ApiError(413, "answer_too_large", f"the answer would be {size:,} bytes, over "
                           f"{MAX_ANSWER_BYTES:,}", [Problem("cases", "send fewer cases")])
        return Reply(200, WhatIfOut(answer))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS] + "..."

