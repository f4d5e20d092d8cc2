"""The base side of a what-if taken from git: the pack as it was at a ref, via `git archive`.

In: a git ref and the head pack's folder (which says where the pack lives in the
repository). Out: the pack extracted into a scratch folder, or `InputError` saying why not.
Development-only (`pss diff` on a developer's machine or in CI): it runs `git`, which no
deployed function has, so it lives outside `chalicelib` and the Lambda package.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path

from chalicelib.batch.classify import InputError


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


def extract_base(ref: str, head: Path, into: Path) -> Path:
    """Write the pack as it was at git `ref` under `into`; `InputError` if that cannot be done.

    The pack's path inside the repository is the head folder's (or `policies/` when the head
    lives outside the repository); it is extracted under its own folder name, so reasons
    read `policies/cardiac.pss:14` as they do for the head.
    """
    where = head.resolve() if head.is_dir() else Path.cwd()
    top = _git(["rev-parse", "--show-toplevel"], where)
    if top.returncode != 0:
        raise InputError(f"base `{ref}` is not a folder, and `{where}` is not in a git repository")
    root = Path(top.stdout.decode().strip())
    try:
        inside = head.resolve().relative_to(root).as_posix()
    except ValueError:
        inside = "policies"
    if _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root).returncode != 0:
        raise InputError(f"base `{ref}` is neither a folder nor a git ref of this repository")
    archive = _git(["archive", "--format=tar", ref, "--", inside], root)
    if archive.returncode != 0:
        raise InputError(f"`{inside}/` does not exist at git ref `{ref}`")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / inside
