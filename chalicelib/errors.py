"""The errors PSS rules raises, as one tree, and the one error body they are answered with.

Our exception hierarchy (every class below derives from `PssError`):

* PssError                  -- anything this library raises on purpose
  + PolicyError             -- a policy pack failed to parse or check; carries diagnostics
  + RequestError            -- a request is malformed; `details` name each bad field (400)
  + NotCoveredError         -- a valid request dated outside every policy set (422)
  + UnknownNameError        -- a policy, assessment or decision asked for does not exist (404)
  + api.replies.ApiError    -- any other answer a use case gives (409, 503, ...)
  + api.auth.Unauthorized   -- missing or wrong credentials (401)
  + cds.access.FhirError    -- malformed FHIR in a CDS Hooks request (400)
  + batch.rows.RowError / HeaderError, batch.classify.InputError -- `pss batch` inputs

Every `PssError` has the same documented attributes, so any edge (HTTP, CDS Hooks, CLI) can
answer it without knowing its class:

* `code`    -- a stable machine code (`invalid_request`, `not_covered`, `not_found`, ...);
* `message` -- one sentence for people, never quoting personal data;
* `details` -- a tuple of `Problem(field, problem)`; fields are JSON paths written
  `patient.nhs_number`, `attestations[0]`, `facts.ras_status`;
* `status`  -- the HTTP status the API answers with.

`error_body(...)` (or `PssError.body()`) renders the design's error JSON, and
`validation_problems(...)` turns a pydantic `ValidationError` into `details`; nothing else
builds either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

    from chalicelib.dsl.source import Diagnostic


@dataclass(frozen=True)
class Problem:
    """One problem with a request: the JSON path of the field and what is wrong with it."""

    field: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        """Return the problem as the `details` item of the error body."""
        return {"field": self.field, "problem": self.problem}


def error_body(code: str, message: str, details: Sequence[Problem] = ()) -> dict[str, Any]:
    """The error JSON of every 4xx/5xx answer (design section 4)."""
    return {"error": {"code": code, "message": message,
                      "details": [d.to_dict() for d in details]}}


class PssError(Exception):
    """Base class of every error raised on purpose; see the module docstring."""

    code: str = "error"
    status: int = 500

    def __init__(self, message: str, details: Sequence[Problem] = ()) -> None:
        self.message = message
        self.details: tuple[Problem, ...] = tuple(details)
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The error body answering this error."""
        return error_body(self.code, self.message, self.details)


class PolicyError(PssError):
    """A policy pack has errors; `diagnostics` lists every one found."""

    code = "invalid_policy"
    status = 400

    def __init__(self, diagnostics: Sequence[Diagnostic], rendered: str = "") -> None:
        self.diagnostics = tuple(diagnostics)
        self.rendered = rendered
        first = self.diagnostics[0].headline() if self.diagnostics else "policy error"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


class RequestError(PssError):
    """A request failed validation; `details` holds one `Problem` per bad field.

    `str()` lists every problem on one line (`field: problem; ...`), as the CLI and the
    rejects file of `pss batch` show them; `message` stays general.
    """

    code = "invalid_request"
    status = 400

    def __init__(self, details: Sequence[Problem],
                 message: str = "the request is invalid") -> None:
        super().__init__(message, details)

    def __str__(self) -> str:
        return "; ".join(f"{d.field}: {d.problem}" for d in self.details)


class NotCoveredError(PssError):
    """The request is valid but no policy set is in force at its date (field `date`)."""

    code = "not_covered"
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message, [Problem("date", message)])


class UnknownNameError(PssError):
    """A policy, assessment or other named thing was asked for and does not exist."""

    code = "not_found"
    status = 404


def json_path(loc: Sequence[int | str]) -> str:
    """A location as a JSON path: `("attestations", 0)` -> `attestations[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Each error of a pydantic validation as a `Problem`, its field a JSON path under
    `prefix` (`body` when the whole body is wrong)."""
    problems = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            # pydantic names our model class ("... or instance of PatientIn"): say it in JSON.
            message = "must be a JSON object"
        elif err["type"] == "missing":
            message = "is required"
        path = json_path(tuple(err["loc"]))
        if prefix and path:
            path = prefix + ("" if path.startswith("[") else ".") + path
        problems.append(Problem(path or prefix or "body", message))
    return problems
