"""What the studio's endpoints accept: strict request models and the limits they enforce.

Every body is a JSON object with no unknown fields and strict types (`"rows": "5"` is a
400, not 5). `files` holds the edited pack files (shown path → full text); only the changed
ones need be sent, the rest are the served pack's. Names are checked by the one pack file
rule the what-if route uses too (`limits.pack_files`), not here, so that both answer a bad
name with the same field and message; cases by the decision request's own validation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator

# The studio posts whole files (the national pack is ~160 KB) and uploaded CSVs, so its body
# limit is larger than the API's 256 KiB; every part of it is bounded below.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_FILES = 200
MAX_FILE_CHARS = 2 * 1024 * 1024
MAX_SYNTH_ROWS = 200_000
MAX_CSV_CHARS = 6 * 1024 * 1024
MAX_SEED = 2**31 - 1

FileText = Annotated[str, StringConstraints(max_length=MAX_FILE_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Edits(_Strict):
    """The edited files; the served pack supplies every file not named."""

    files: dict[str, FileText] = Field(default_factory=dict, max_length=MAX_FILES)


class DecideIn(Edits):
    """A referral (the JSON of `POST /v1/decisions`) to decide under the edited pack."""

    case: dict[str, Any]


class Synth(_Strict):
    """`pss synth` rows: how many, and the seed (same seed, same rows)."""

    rows: int = Field(ge=1, le=MAX_SYNTH_ROWS)
    seed: int = Field(default=1, ge=0, le=MAX_SEED)


class WhatIfIn(Edits):
    """The case corpus of a what-if: synthetic rows, or an activity CSV's text."""

    synth: Synth | None = None
    csv: Annotated[str, StringConstraints(min_length=1, max_length=MAX_CSV_CHARS)] | None = None
    top: int = Field(default=20, ge=1, le=100)

    @model_validator(mode="after")
    def _one_corpus(self) -> WhatIfIn:
        if (self.synth is None) == (self.csv is None):
            raise ValueError("give exactly one of `synth` and `csv`")
        return self


class ExportIn(Edits):
    """Download the change: a unified diff, or a zip of the changed files."""

    format: Literal["diff", "zip"]


class SaveIn(Edits):
    """Write the changed files into the pack folder; `confirm` must be true."""

    confirm: Literal[True]


class StudioOut(RootModel[dict[str, Any]]):
    """A JSON answer of a studio endpoint."""
