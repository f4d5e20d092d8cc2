"""Fixtures of the batch tests: the small test pack (as a folder and compiled), synthetic files."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from chalicelib import load_policy_set
from chalicelib.engine.policy_set import PolicySet
from pss_dev.synth import write_csv
from tests.conftest import fixed_clock

FIXTURES = Path(__file__).parent / "fixtures"
PACK_DIR = FIXTURES / "policies"


@pytest.fixture(scope="session")
def pack() -> PolicySet:
    return load_policy_set(PACK_DIR, fixed_clock)


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    """A writable copy of the test pack, in a folder named `policies`."""
    target = tmp_path / "head" / "policies"
    shutil.copytree(PACK_DIR, target)
    return target


def synth_text(rows: int, seed: int, bad_share: float = 0.005) -> str:
    out = io.StringIO()
    write_csv(out, rows, seed, bad_share)
    return out.getvalue()
