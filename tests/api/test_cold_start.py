"""What a Lambda cold start imports: only what its first answer needs.

PyJWT (with `cryptography`), Lark and the CDS Hooks / OpenAPI models together cost about a
third of a cold start (`make bench`), and a REST call needs none of them: the authorizer
imports PyJWT when a token arrives, the parser loads Lark when a pack is parsed rather than
read from `pss bundle`'s AST cache, and the OpenAPI and CDS routes import their models.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from chalicelib.dsl.loader import write_ast_cache

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("jwt", "cryptography", "lark", "chalicelib.cds.models", "chalicelib.api.openapi")


def _imported_after(code: str, cwd: Path = ROOT) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m in {HEAVY!r} "
             f"or m.split('.')[0] in {HEAVY[:3]!r})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True,
                          text=True, check=False, env={"PSS_API_KEYS": "t:k", "PATH": ""})
    assert done.returncode == 0, done.stderr
    imported: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def test_importing_the_app_loads_no_token_parser_or_cds_models() -> None:
    assert _imported_after("import app") == []


def test_a_pack_read_from_the_ast_cache_never_loads_lark(tmp_path: Path) -> None:
    pack = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", pack)
    write_ast_cache(pack)
    loaded = _imported_after(
        f"from chalicelib.dsl.loader import load_pack\nload_pack({str(pack)!r})")
    assert loaded == []


def test_the_same_pack_without_a_cache_is_parsed_with_lark(tmp_path: Path) -> None:
    pack = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", pack)
    loaded = _imported_after(
        f"from chalicelib.dsl.loader import load_pack\nload_pack({str(pack)!r})")
    assert "lark" in loaded  # the probe sees the import when it happens
