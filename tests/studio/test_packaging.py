"""Where the studio goes: in the wheel with its built page, never on the Lambda import path.
(The Lambda zip's exclusion is proven on the real package in tests/e2e/test_package.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.studio.http import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_import_app_never_imports_the_studio() -> None:
    code = ("import sys, app; "
            "print(sorted(m for m in sys.modules if m.startswith('chalicelib.studio')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_carries_the_built_page(tmp_path: Path) -> None:
    built = sorted(p.name for p in STATIC_DIR.glob("*"))
    if "studio.js" not in built:
        pytest.fail("the studio page is not built: run `make studio` (make test does)")
    source = tmp_path / "src"  # build from a copy: setuptools writes build/ and egg-info
    shutil.copytree(ROOT / "chalicelib", source / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", source / "pyproject.toml")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"chalicelib/studio/static/{name}" for name in built} <= names
    assert "chalicelib/studio/http.py" in names
