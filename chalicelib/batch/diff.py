"""What-if: the same cases under two policy sets, and what moved between them.

In: a base pack and a head pack (folders; `pss_dev.gitbase.extract_base` makes one from a git ref)
and cases (an activity CSV, or a folder of referral JSON files). Out: a `tally.Tally` of what
moved, each changed case explained by `explain.changed_clause`; rendered as text
(`tally.text_report`), JSON (`Tally.to_dict`) or HTML (`report.html_report`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from chalicelib.batch.classify import InputError, Progress, read_layout
from chalicelib.batch.explain import decide_or_reason, explain
from chalicelib.batch.lines import records
from chalicelib.batch.parallel import iter_blocks, run_blocks
from chalicelib.batch.rows import FastRows, Layout, RowDecider, RowError, row_request
from chalicelib.batch.tally import REJECTED_OUTCOME, TOP, Outcome, Tally
from chalicelib.engine.policy_set import PolicySet
from chalicelib.errors import PolicyError
from chalicelib.limits import load_json


class DiffJob:
    """Compares the rows of one block under both packs (in-process or in a forked worker)."""

    def __init__(self, base: PolicySet, head: PolicySet, layout: Layout, top: int) -> None:
        fast = FastRows(layout, [base.rule_index, head.rule_index])
        self.fast = fast
        self.base = RowDecider(base, layout, fast)
        self.head = RowDecider(head, layout, fast)
        self.layout = layout
        self.top = top

    def _outcome(self, decider: RowDecider, fields: list[str], found: Any) -> Outcome:
        try:
            return Outcome.of(decider.decide_read(fields, found))
        except RowError:
            return REJECTED_OUTCOME

    def __call__(self, block: bytes, first_line: int) -> Tally:
        """Tally one block of whole records starting at input line `first_line`."""
        tally = Tally(top_limit=self.top)
        for at, fields, problem, _ in records(block, first_line):
            if problem is not None:
                tally.add(at, f"line {at}", REJECTED_OUTCOME, REJECTED_OUTCOME, str)
                continue
            found = self.fast.read(fields)
            old = self._outcome(self.base, fields, found)
            new = self._outcome(self.head, fields, found)
            case = (
                fields[self.layout.index["record_id"]]
                if len(fields) == len(self.layout.header)
                else ""
            )
            tally.add(at, case or f"line {at}", old, new, partial(self._why, fields))
        return tally

    def _why(self, fields: list[str]) -> str:
        try:
            request = row_request(fields, self.layout)
        except RowError as exc:
            return str(exc)
        return explain(self.base.policy_set, self.head.policy_set, request)


def diff_csv(
    source: io.BufferedIOBase | Any,
    base: PolicySet,
    head: PolicySet,
    workers: int = 1,
    top: int = TOP,
    progress: Progress | None = None,
) -> Tally:
    """Compare every row of an activity CSV under both packs; `InputError` if unusable."""
    layout, blocks = read_layout(iter_blocks(source))
    total = Tally(top_limit=top)
    for part in run_blocks(blocks, DiffJob(base, head, layout, top), workers):
        total.merge(part)
        if progress is not None:
            progress.update(part.cases, 0)
    if progress is not None:
        progress.close()
    return total


def diff_requests(
    cases: Sequence[tuple[str, Any]], base: PolicySet, head: PolicySet, top: int = TOP
) -> Tally:
    """Compare referral requests (name, JSON data) under both packs, in process."""
    tally = Tally(top_limit=top)
    for order, (name, request) in enumerate(cases):
        old_d = decide_or_reason(base, request)
        new_d = decide_or_reason(head, request)
        old = REJECTED_OUTCOME if isinstance(old_d, str) else Outcome.of_decision(old_d)
        new = REJECTED_OUTCOME if isinstance(new_d, str) else Outcome.of_decision(new_d)
        tally.add(order, name, old, new, partial(explain, base, head, request))
    return tally


def read_case_folder(folder: Path) -> list[tuple[str, Any]]:
    """Every `*.json` referral in a folder (sorted by name); `InputError` for unreadable ones."""
    cases = []
    for file in sorted(folder.glob("*.json")):
        try:
            cases.append((file.name, load_json(file.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:  # JSONDecodeError, LimitError, UnicodeDecodeError
            raise InputError(f"cannot read case `{file}`: {exc}") from None
    if not cases:
        raise InputError(f"`{folder}` holds no *.json cases")
    return cases


def load_pack(folder: Path, role: str) -> PolicySet:
    """Load one side of the diff; a pack that fails `pss check` is an `InputError`."""
    from chalicelib import load_policy_set

    try:
        return load_policy_set(folder)
    except PolicyError as exc:
        raise InputError(f"{role} pack `{folder}` fails `pss check`: {exc}") from None
