"""The studio's use cases: check, test, decide, what-if, download and save an edited pack.

In: JSON data from the page (validated by `schemas`) and the served pack (`Workspace`). Out:
`Reply` bodies for the JSON endpoints, a `Download` for the change, or a `PssError` (400 with
field and problem, 403 when saving is off, 409 when a file changed on disk, 422 for a date
no pack covers). The served pack is never changed; only `save` writes, into the pack folder,
and only when the studio was started with saving on (`pss serve`, never the deployed
service).
"""

from __future__ import annotations

import difflib
import io
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.api.replies import ApiError, Reply, bad_request
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import (
    NotCoveredError,
    PolicyError,
    Problem,
    PssError,
    RequestError,
    validation_problems,
)
from chalicelib.studio.schemas import (
    DecideIn,
    Edits,
    ExportIn,
    SaveIn,
    StudioOut,
    WhatIfIn,
)
from chalicelib.studio.workspace import Workspace, diagnostic_dict

Model = TypeVar("Model", bound=BaseModel)
CHART_HALF_WIDTH = 120  # px per side of the what-if chart: it fits the studio's side panel


@dataclass(frozen=True)
class Example:
    """An example referral the page offers (from `examples/*.json`)."""

    name: str
    request: dict[str, Any]


@dataclass(frozen=True)
class Download:
    """A file for the browser to save."""

    filename: str
    content_type: str
    body: bytes


def read_examples(folder: Path) -> tuple[Example, ...]:
    """Every referral `*.json` directly in `folder` (CDS calls live in sub-folders)."""
    found = []
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # an unreadable example is not offered; the page still works
        if isinstance(data, dict) and "date" in data:
            found.append(Example(file.stem, data))
    return tuple(found)


def _valid(model: type[Model], raw: Any) -> Model:
    if not isinstance(raw, dict):
        raise bad_request([Problem("body", "must be a JSON object")])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise bad_request(validation_problems(exc)) from None


def _pack_errors(exc: PolicyError) -> PssError:
    errors = [d for d in exc.diagnostics if d.severity == "error"] or list(exc.diagnostics)
    return bad_request([Problem("files", d.headline()) for d in errors],
                       "the edited pack does not pass `pss check`: see the problems list")


@dataclass(frozen=True)
class StudioService:
    """The studio's use cases over one served pack."""

    workspace: Workspace
    examples: Sequence[Example] = ()
    save_dir: Path | None = None  # where `save` writes; None turns saving off
    _save_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                       compare=False)

    def _compile(self, edits: Edits) -> PolicySet:
        try:
            return self.workspace.compile(edits.files)
        except PolicyError as exc:
            raise _pack_errors(exc) from None

    def files(self) -> Reply:
        """The served pack's files, version and digest, the example referrals, and whether
        saving is on."""
        served = self.workspace.served
        return Reply(200, StudioOut({
            "pack": {"version": served.version, "digest": served.digest,
                     "folder": self.workspace.folder},
            "files": [{"path": p, "text": t} for p, t in self.workspace.texts.items()],
            "examples": [{"name": e.name, "request": e.request} for e in self.examples],
            "can_save": self.save_dir is not None,
        }))

    def check(self, raw: Any) -> Reply:
        """Every diagnostic of the edited pack (`pss check`), with line and column."""
        edits = _valid(Edits, raw)
        diagnostics = self.workspace.check(edits.files)
        errors = sum(d.severity == "error" for d in diagnostics)
        return Reply(200, StudioOut({
            "ok": errors == 0, "errors": errors, "warnings": len(diagnostics) - errors,
            "diagnostics": [diagnostic_dict(d) for d in diagnostics],
        }))

    def test(self, raw: Any) -> Reply:
        """Run the edited pack's author tests: counts, each failure, clause coverage."""
        from chalicelib.testing import Coverage, all_clauses, run_tests

        policy_set = self._compile(_valid(Edits, raw))
        coverage = Coverage()
        results = run_tests(policy_set, coverage)
        clauses = all_clauses(policy_set)
        gaps = coverage.gaps(clauses)
        passed = sum(r.passed for r in results)
        return Reply(200, StudioOut({
            "passed": passed, "failed": len(results) - passed, "total": len(results),
            "failures": [{"name": r.name, "at": r.at, "failures": list(r.failures)}
                         for r in results if not r.passed],
            "coverage": {
                "clauses": len(clauses), "covered": len(clauses) - len(gaps),
                "gaps": [{"at": c.at, "rule": c.rule, "clause": c.clause, "lacking": lacking}
                         for c, lacking in gaps],
            },
        }))

    def decide(self, raw: Any) -> Reply:
        """Decide one referral under the edited pack, with every reason and where it lives."""
        request = _valid(DecideIn, raw)
        policy_set = self._compile(request)
        try:
            decision = policy_set.decide(request.case)
        except RequestError as exc:
            raise bad_request([Problem(f"case.{d.field}" if d.field != "body" else "case",
                                       d.problem) for d in exc.details]) from None
        except NotCoveredError as exc:
            raise ApiError(422, "not_covered", str(exc),
                           [Problem("case.date", str(exc))]) from None
        return Reply(200, StudioOut(decision.to_dict()))

    def what_if(self, raw: Any) -> Reply:
        """The served pack against the edited one over synthetic rows or an uploaded CSV."""
        from chalicelib.batch.classify import InputError
        from chalicelib.batch.diff import diff_csv
        from chalicelib.batch.report import moved_chart
        from pss_dev.synth import write_csv

        request = _valid(WhatIfIn, raw)
        head = self._compile(request)
        base = self.workspace.served
        if request.synth is not None:
            text = io.StringIO()
            write_csv(text, request.synth.rows, request.synth.seed)
            data, field_name = text.getvalue().encode("utf-8"), "synth"
        else:
            data, field_name = (request.csv or "").encode("utf-8"), "csv"
        try:
            # One process: forking worker processes from a threaded server is unsafe.
            tally = diff_csv(io.BytesIO(data), base, head, workers=1, top=request.top)
        except InputError as exc:
            raise bad_request([Problem(field_name, str(exc))]) from None
        return Reply(200, StudioOut({
            "base": {"version": base.version, "digest": base.digest},
            "head": {"version": head.version, "digest": head.digest},
            **tally.to_dict(),
            "chart_svg": moved_chart(tally, half=CHART_HALF_WIDTH),
        }))

    def export(self, raw: Any) -> Download:
        """The change as a unified diff against the served pack, or a zip of changed files."""
        request = _valid(ExportIn, raw)
        changed = self._changed(request)
        if request.format == "zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for shown, text in changed.items():
                    archive.writestr(shown, text)
            return Download("pss-studio-changes.zip", "application/zip", buffer.getvalue())
        parts = []
        for shown, text in changed.items():
            before = self.workspace.texts.get(shown)
            for line in difflib.unified_diff(
                    (before or "").splitlines(keepends=True), text.splitlines(keepends=True),
                    "/dev/null" if before is None else f"a/{shown}", f"b/{shown}"):
                # `patch` and `git apply` read this marker after a last line without newline.
                parts.append(line if line.endswith("\n")
                             else line + "\n\\ No newline at end of file\n")
        return Download("pss-studio.diff", "text/x-diff; charset=utf-8",
                        "".join(parts).encode("utf-8"))

    def _changed(self, edits: Edits) -> dict[str, str]:
        changed = self.workspace.changed(edits.files)
        if not changed:
            raise bad_request([Problem("files", "no file differs from the served pack")])
        return changed

    def save(self, raw: Any) -> Reply:
        """Write the changed files into the pack folder, only when saving is on, the edited
        pack passes `pss check`, and no file changed on disk since the studio started."""
        if self.save_dir is None:
            raise ApiError(403, "save_disabled", "saving to the pack folder is off here: "
                           "download the change instead")
        request = _valid(SaveIn, raw)
        changed = self._changed(request)
        self._compile(request)
        with self._save_lock:
            # `changed` names are checked pack paths (`policies/tests/x.pss`).
            targets = {shown: self.save_dir.joinpath(*shown.split("/")[1:]) for shown in changed}
            moved = [shown for shown, target in targets.items()
                     if _read(target) != self.workspace.texts.get(shown)]
            if moved:
                raise ApiError(409, "changed_on_disk", "a file changed on disk since "
                               "`pss serve` started; nothing was saved",
                               [Problem(f"files.{shown}", "changed on disk") for shown in moved])
            for shown, target in targets.items():
                _write_atomically(target, changed[shown])
        return Reply(200, StudioOut({"saved": list(changed), "folder": str(self.save_dir)}))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
