"""`python -m benchmarks [--no-peers]`: every benchmark, printed as figures and ratios."""

from __future__ import annotations

import sys

from benchmarks.engine import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
