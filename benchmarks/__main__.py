"""`python -m benchmarks [--no-peers] [--only engine,cds,...]`: every benchmark, printed as
figures and ratios from one run (no pass/fail: timing goals are read, not asserted)."""

from __future__ import annotations

import importlib
import sys

SUITES = ("engine", "cds", "api", "auth", "serve", "batch")


def main(argv: list[str]) -> int:
    """Run the chosen suites in order; a suite whose module is absent is skipped."""
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), SUITES)
    for name in SUITES:
        if name not in only:
            continue
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError:
            continue
        print(f"\n== {name} ==", flush=True)
        if name == "engine":
            module.main(argv)
        elif name == "batch":
            sys.argv = [f"benchmarks.{name}"]  # it parses its own options
            module.main()
        else:
            print("\n".join(module.main()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
