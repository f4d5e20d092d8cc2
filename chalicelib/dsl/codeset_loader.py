"""Code set declarations to compiled `CodeSet`s: normalise, expand ranges, include, load CSV.

In: the `codeset` declarations, a reader for files under the pack folder, and an error sink.
Out: one `CodeSet` per declaration that has no error. Every malformed code is reported with
its position; a CSV problem is reported at the `file` item with the CSV line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from chalicelib.codes import SYSTEMS, expand_range, normalise
from chalicelib.dsl import ast
from chalicelib.dsl.codesets import CodeSet
from chalicelib.dsl.source import Span, did_you_mean
from chalicelib.limits import visible

ErrorSink = Callable[[Span, str, str], None]
_EXAMPLES = {"icd10": "`C18.7`", "opcs4": "`K26.2`", "drug": "`cetuximab`", "ods": "`RBA`"}


def load_codesets(
    decls: dict[str, ast.CodeSetDecl], read_file: Callable[[str], str], error: ErrorSink
) -> dict[str, CodeSet]:
    """Compile every declaration, resolving `include` in dependency order."""
    done: dict[str, CodeSet] = {}
    visiting: set[str] = set()

    def build(name: str) -> CodeSet | None:
        if name in done:
            return done[name]
        decl = decls[name]
        if name in visiting:
            error(decl.span, f"code set `{name}` includes itself", "")
            return None
        visiting.add(name)
        result = _build_one(decl, decls, build, read_file, error)
        visiting.discard(name)
        if result is not None:
            done[name] = result
        return result

    for name in decls:
        build(name)
    return done


def _build_one(
    decl: ast.CodeSetDecl,
    decls: dict[str, ast.CodeSetDecl],
    build: Callable[[str], CodeSet | None],
    read_file: Callable[[str], str],
    error: ErrorSink,
) -> CodeSet | None:
    if decl.system not in SYSTEMS:
        error(
            decl.span,
            f"unknown code system `{decl.system}`",
            did_you_mean(decl.system, SYSTEMS) or "one of: " + ", ".join(SYSTEMS),
        )
        return None
    keys: list[str] = []
    ok = True
    for item in decl.items:
        if item.kind == "include":
            ok = _include(decl, item, decls, build, keys, error) and ok
        elif item.kind == "file":
            ok = _load_file(decl.system, item, read_file, keys, error) and ok
        else:
            found = _item_codes(decl.system, item.kind, item.value, item.high)
            if isinstance(found, str):
                error(item.span, found, f"a {decl.system} code looks like {_EXAMPLES[decl.system]}")
                ok = False
            else:
                keys.extend(found)
    return CodeSet.build(decl.name, decl.system, keys) if ok else None


def _include(
    decl: ast.CodeSetDecl,
    item: ast.CodeItem,
    decls: dict[str, ast.CodeSetDecl],
    build: Callable[[str], CodeSet | None],
    keys: list[str],
    error: ErrorSink,
) -> bool:
    if item.value not in decls:
        error(item.span, f"unknown code set `{item.value}`", did_you_mean(item.value, decls))
        return False
    included = build(item.value)
    if included is None:
        return False
    if included.system != decl.system:
        error(
            item.span,
            f"cannot include {included.system} set `{item.value}` in "
            f"{decl.system} set `{decl.name}`",
            "",
        )
        return False
    keys.extend(included.keys)
    return True


def _item_codes(system: str, kind: str, value: str, high: str) -> list[str] | str:
    """Return the canonical keys of one item, or an error message."""
    low_code = normalise(system, value)
    if low_code is None:
        return f"`{value}` is not a valid {system} code"
    if kind != "range":
        return [low_code]
    high_code = normalise(system, high)
    if high_code is None:
        return f"`{high}` is not a valid {system} code"
    expanded = expand_range(low_code, high_code)
    if expanded is None:
        return (
            f"`{value}-{high}` is not a range: both ends must be at the same level and "
            "the first must not come after the second"
        )
    return expanded


def _load_file(
    system: str,
    item: ast.CodeItem,
    read_file: Callable[[str], str],
    keys: list[str],
    error: ErrorSink,
) -> bool:
    try:
        text = read_file(item.value)
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a name the OS refuses
        error(item.span, f"cannot read code file `{visible(item.value, 200)}`",
              str(exc.__class__.__name__))
        return False
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "code" not in reader.fieldnames:
        error(
            item.span,
            f"code file `{item.value}` has no `code` column",
            "the first line must be a header naming a `code` column",
        )
        return False
    ok = True
    for row in reader:
        cell = (row.get("code") or "").strip()
        low, _, high = cell.partition("-") if system in ("icd10", "opcs4") else (cell, "", "")
        found = _item_codes(system, "range" if high else "single", low, high)
        if isinstance(found, str):
            error(item.span, f"{item.value} line {reader.line_num}: {found}", "")
            ok = False
        else:
            keys.extend(found)
    return ok
