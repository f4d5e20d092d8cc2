"""The served pack as the studio edits it: a snapshot of its files, and edited copies of it.

In: the served `PolicySet` and its folder, read once when the studio is mounted (so later
saves to disk do not move the what-if's base). Out: the edited pack's file texts (served
files overlaid with the client's), its diagnostics as `pss check` gives them, or the edited
pack compiled. Nothing here writes anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from chalicelib.api.replies import bad_request
from chalicelib.dsl.loader import check_sources
from chalicelib.dsl.source import Diagnostic, Span
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PolicyError
from chalicelib.limits import PACK_ROOT, pack_files
from chalicelib.testing import invalid_inputs

PACK_SUFFIXES = (".pss", ".csv")


@dataclass(frozen=True)
class Workspace:
    """The served pack: its compiled set, its folder's name on disk, and its file texts by
    the names clients use (`policies/cardiac.pss`, whatever the folder is called)."""

    served: PolicySet
    folder: str
    texts: Mapping[str, str]

    @classmethod
    def snapshot(cls, served: PolicySet, policy_dir: Path) -> Workspace:
        """Read every `.pss` and `.csv` file of the served pack's folder."""
        texts = {}
        for file in sorted(policy_dir.rglob("*")):
            if file.is_file() and file.suffix in PACK_SUFFIXES:
                shown = f"{PACK_ROOT}/{file.relative_to(policy_dir).as_posix()}"
                texts[shown] = file.read_text(encoding="utf-8")
        return cls(served, policy_dir.name, texts)

    def edited(self, files: Mapping[str, str]) -> dict[str, str]:
        """Every file of the edited pack: the served ones, overlaid with `files`; 400 for a
        name or text the what-if API would refuse too (`limits.pack_files`, the one rule)."""
        passed, problems = pack_files(files)
        if problems:
            raise bad_request(problems)
        return {**self.texts, **{file.name: file.text for file in passed}}

    def changed(self, files: Mapping[str, str]) -> dict[str, str]:
        """Only the files whose text differs from the served pack's (new files included)."""
        self.edited(files)  # the same checks of names and texts
        return dict(sorted((name, text) for name, text in files.items()
                           if self.texts.get(name) != text))

    def _sources(self, files: Mapping[str, str]) -> tuple[dict[str, str], Callable[[str], str]]:
        merged = self.edited(files)

        def read_file(relative: str) -> str:
            # Code files are named relative to the pack folder (`file "codes/x.csv"`).
            parts = PurePosixPath(relative).parts
            if ".." in parts or PurePosixPath(relative).is_absolute():
                raise OSError("code files must live inside the policy folder")
            text = merged.get(f"{PACK_ROOT}/{PurePosixPath(*parts).as_posix()}")
            if text is None:
                raise OSError(f"no file {relative} in the pack")
            return text

        return {k: v for k, v in merged.items() if k.endswith(".pss")}, read_file

    def check(self, files: Mapping[str, str]) -> list[Diagnostic]:
        """What `pss check` says of the edited pack: errors and warnings, in file order."""
        texts, read_file = self._sources(files)
        checked, diagnostics = check_sources(texts, read_file)
        if checked is not None and not any(d.severity == "error" for d in diagnostics):
            compiled = PolicySet(checked, "sha256:studio-check", self.served.clock)
            diagnostics = [*diagnostics, *invalid_inputs(compiled)]
        return sorted(diagnostics, key=lambda d: (d.span, d.message))

    def compile(self, files: Mapping[str, str]) -> PolicySet:
        """The edited pack, compiled (the served one itself when nothing differs from it);
        `PolicyError` when it fails `pss check`."""
        from chalicelib.batch.whatif import compile_pack

        if not self.changed(files):
            return self.served
        texts, read_file = self._sources(files)
        policy_set = compile_pack(texts, self.served, read_file)
        bad_tests = invalid_inputs(policy_set)
        if bad_tests:
            raise PolicyError(bad_tests)
        return policy_set


def diagnostic_dict(d: Diagnostic) -> dict[str, object]:
    """A diagnostic as the studio shows it: where (1-based line and column), what, hint."""
    span: Span = d.span
    return {
        "file": span.file, "line": span.line, "col": span.col,
        "end_line": span.end_line, "end_col": span.end_col,
        "severity": d.severity, "message": d.message, "hint": d.hint,
        "headline": d.headline(),
    }
