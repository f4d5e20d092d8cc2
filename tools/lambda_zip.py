"""Take development-only code out of the Lambda deployment zip that `chalice package` wrote.

Chalice ships all of `chalicelib/`; some of it only ever runs on a developer's machine (the
studio behind `pss serve`) and must not be deployed. `make package` runs this on
`build/package/deployment.zip`; the packaging test runs it the same way and proves the zip
still answers a referral without them.

Run: `python tools/lambda_zip.py build/package/deployment.zip`.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

# Paths inside the zip (prefixes) that are never part of the deployed function.
DEV_ONLY = ("chalicelib/studio/",)


def strip(archive: Path, prefixes: tuple[str, ...] = DEV_ONLY) -> list[str]:
    """Rewrite `archive` without the entries under `prefixes`; return the names removed."""
    scratch = archive.with_name(archive.name + ".tmp")
    removed = []
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(scratch, "w") as target:
        for info in source.infolist():
            if info.filename.startswith(prefixes):
                removed.append(info.filename)
                continue
            target.writestr(info, source.read(info), compress_type=info.compress_type)
    scratch.replace(archive)
    return removed


def main(argv: list[str]) -> int:
    """Strip every zip named in `argv`."""
    if not argv:
        print("usage: python tools/lambda_zip.py DEPLOYMENT.zip", file=sys.stderr)
        return 2
    for name in argv:
        removed = strip(Path(name))
        print(f"{name}: removed {len(removed)} development-only file(s) ({', '.join(DEV_ONLY)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
