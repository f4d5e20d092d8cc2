"""Studio fixtures: the national pack served by the studio's use cases, in process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chalicelib import load_policy_set
from chalicelib.engine.policy_set import PolicySet
from chalicelib.studio.service import StudioService, read_examples
from chalicelib.studio.workspace import Workspace
from tests.conftest import fixed_clock

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
EXAMPLES = ROOT / "examples"
# The threshold the what-if tests move: SABR's WHO performance status limit.
WHO_LIMIT = "who_performance_status <= 2"
WHO_LIMIT_EDITED = "who_performance_status <= 1"


@pytest.fixture(scope="session")
def served() -> PolicySet:
    return load_policy_set(POLICIES, fixed_clock)


@pytest.fixture(scope="session")
def workspace(served: PolicySet) -> Workspace:
    return Workspace.snapshot(served, POLICIES)


@pytest.fixture(scope="session")
def studio(workspace: Workspace) -> StudioService:
    """Saving off: the repository's own pack is never written by a test."""
    return StudioService(workspace, read_examples(EXAMPLES), save_dir=None)


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target, ignore=shutil.ignore_patterns(".ast-cache*"))
    return target


@pytest.fixture
def saving_studio(served: PolicySet, pack_copy: Path) -> StudioService:
    return StudioService(Workspace.snapshot(served, pack_copy), (), save_dir=pack_copy)


def cancer_with(workspace: Workspace, old: str, new: str) -> dict[str, str]:
    text = workspace.texts["policies/cancer.pss"]
    assert old in text
    return {"policies/cancer.pss": text.replace(old, new, 1)}


def example(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data
