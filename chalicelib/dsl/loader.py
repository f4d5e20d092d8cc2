"""A folder of `.pss` files to a checked pack: read → parse → lower → check.

In: the pack folder (or texts held in memory). Out: a `CheckedPack` and its digest, or
`PolicyError` carrying every diagnostic (rendered with source lines and carets). Paths in
diagnostics and reasons are shown as `<folder name>/<relative path>`, e.g.
`policies/cardiac.pss`, wherever the folder lives (repository or Lambda bundle).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.dsl import ast
from chalicelib.dsl.checker import CheckedPack, check
from chalicelib.dsl.parser import grammar_path, parse_text
from chalicelib.dsl.source import Diagnostic, SourceMap, Span, render
from chalicelib.errors import PolicyError


@dataclass(frozen=True)
class LoadedPack:
    """A checked pack with its digest, warnings and source texts."""

    checked: CheckedPack
    digest: str
    warnings: tuple[Diagnostic, ...]
    sources: SourceMap


def pack_files(folder: Path) -> list[Path]:
    """Every `.pss` file under `folder`, in a stable order."""
    return sorted(p for p in folder.rglob("*.pss") if p.is_file())


def parse_sources(texts: dict[str, str]) -> tuple[list[ast.Module], list[Diagnostic]]:
    """Parse and lower each (shown path, text); syntax errors come back as diagnostics."""
    # Lowering needs Lark's tree classes; a pack loaded from `pss bundle`'s AST cache (the
    # Lambda cold start) never parses, so it never pays for importing them.
    from chalicelib.dsl.lowering import lower

    modules: list[ast.Module] = []
    diagnostics: list[Diagnostic] = []
    for shown, text in texts.items():
        tree = parse_text(text, shown)
        if isinstance(tree, Diagnostic):
            diagnostics.append(tree)
        else:
            module = lower(tree, shown)
            diagnostics.extend(module.problems)
            modules.append(module)
    return modules, diagnostics


def check_sources(
    texts: dict[str, str], read_file: Callable[[str], str] | None = None
) -> tuple[CheckedPack | None, list[Diagnostic]]:
    """Parse and check a pack held in memory: (checked pack or None, every diagnostic)."""

    def no_files(relative: str) -> str:
        raise OSError(f"no file {relative}")

    modules, diagnostics = parse_sources(texts)
    if diagnostics:
        # A file that does not parse hides its declarations: checking the rest would report
        # every use of them as unknown. Syntax errors first, then everything else.
        return None, diagnostics
    return check(modules, read_file or no_files)


# `pss bundle` writes the lowered AST of the pack beside it, so a Lambda cold start skips
# building the parser and parsing (most of its cost). The cache is our own build artifact,
# keyed by the digest of the sources it came from; any other digest means it is stale and the
# pack is parsed as usual.
AST_CACHE = ".ast-cache.pickle"


def write_ast_cache(folder: Path) -> Path:
    """Parse the pack in `folder` and store its modules, keyed by the sources' digest."""
    files = pack_files(folder)
    texts, problems = _read_files(folder, files)
    modules, diagnostics = parse_sources(texts)
    if problems or diagnostics:
        raise PolicyError(problems + diagnostics, "cannot cache a pack that does not parse")
    target = folder / AST_CACHE
    payload = (_digest(folder, files), tuple(modules))
    target.write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    return target


def _cached_modules(folder: Path, digest: str) -> list[ast.Module] | None:
    cache = folder / AST_CACHE
    if not cache.is_file():
        return None
    try:
        cached_digest, modules = pickle.loads(cache.read_bytes())  # our own build artifact
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
        return None
    return list(modules) if cached_digest == digest else None


def _read_files(folder: Path, files: list[Path]) -> tuple[dict[str, str], list[Diagnostic]]:
    texts: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for file in files:
        shown = f"{folder.name}/{file.relative_to(folder).as_posix()}"
        try:
            raw = file.read_bytes()
            texts[shown] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Where the bad byte is, so an author can find it (often a Latin-1 `é`).
            line = raw.count(b"\n", 0, exc.start) + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            problems.append(Diagnostic(
                "error", f"not valid UTF-8 text: byte 0x{raw[exc.start]:02x}",
                Span(shown, line, col, line, col + 1), "save the file as UTF-8"))
        except OSError as exc:
            problem = f"cannot read file: {exc.__class__.__name__}"
            problems.append(Diagnostic("error", problem, Span(shown, 1, 1)))
    return texts, problems


def load_pack(folder: str | Path) -> LoadedPack:
    """Load and check the pack in `folder`; raise `PolicyError` listing every error."""
    root = Path(folder)
    if not root.is_dir():
        missing = Diagnostic(
            "error", f"policy folder `{root}` does not exist", Span(str(root), 0, 0)
        )
        raise PolicyError([missing], missing.headline())
    files = pack_files(root)
    texts, diagnostics = _read_files(root, files)
    sources = SourceMap(dict(texts))

    def read_file(relative: str) -> str:
        if "\0" in relative:
            raise OSError("a file name cannot hold a NUL character")
        target = (root / relative).resolve()
        if root.resolve() not in target.parents:
            raise OSError("code files must live inside the policy folder")
        return target.read_text(encoding="utf-8")

    digest = _digest(root, files)
    cached = None if diagnostics else _cached_modules(root, digest)
    if cached is not None:
        checked, found = check(cached, read_file)
    else:
        checked, found = check_sources(texts, read_file)
    diagnostics.extend(found)
    if checked is None or any(d.severity == "error" for d in diagnostics):
        raise PolicyError(diagnostics, render(diagnostics, sources))
    warnings = tuple(d for d in diagnostics if d.severity == "warning")
    return LoadedPack(checked, digest, warnings, sources)


def _digest(root: Path, files: list[Path]) -> str:
    """sha256 over the grammar and every file of the pack (`.pss` and code CSVs)."""
    digest = hashlib.sha256()
    digest.update(grammar_path().read_bytes())
    extra = sorted(p for p in root.rglob("*.csv") if p.is_file())
    for file in sorted({*files, *extra}):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
    return "sha256:" + digest.hexdigest()
