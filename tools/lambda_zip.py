"""Take what cannot run on Lambda out of the deployment zip that `chalice package` wrote.

Chalice ships all of `chalicelib/`. Some of it only ever runs on a developer's machine (the
studio behind `pss serve`) and must not be deployed; the columnar batch core, its file
formats and SUS profiles, and the Spark engine need the `arrow`/`spark` extras (pyarrow,
pyspark), which the Lambda package never holds, so they could only fail there (the S3 batch
handler keeps the row evaluator). `make package` runs this on
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
NEEDS_EXTRAS = tuple(f"chalicelib/batch/{name}.py"
                     for name in ("columnar", "formats", "local", "profiles", "spark"))
NOT_DEPLOYED = DEV_ONLY + NEEDS_EXTRAS
# Bytecode a local run left beside our sources (Chalice packs the working tree as it is):
# the zip is the same from a fresh clone and from a checkout the tests have run in.
LOCAL_BYTECODE = "/__pycache__/"


def strip(archive: Path, prefixes: tuple[str, ...] = NOT_DEPLOYED) -> list[str]:
    """Rewrite `archive` without the entries under `prefixes`; return the names removed."""
    scratch = archive.with_name(archive.name + ".tmp")
    removed = []
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(scratch, "w") as target:
        for info in source.infolist():
            ours = info.filename.startswith(("chalicelib/", "app.py"))
            if info.filename.startswith(prefixes) or (ours and LOCAL_BYTECODE in info.filename):
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
        print(f"{name}: removed {len(removed)} file(s) that cannot run on Lambda "
              f"({', '.join(NOT_DEPLOYED)}) or are local bytecode")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
