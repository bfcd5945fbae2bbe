"""The command line the sample builders share: `python samples/make_X.py OUTPUT [--force]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def build_main(build: Callable[[Path], object], doc: str) -> int:
    """Parse OUTPUT and --force, then `build(OUTPUT)`; 1 when OUTPUT exists without --force."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--force", action="store_true", help="Replace OUTPUT if it exists.")
    args = parser.parse_args()
    if args.output.exists():
        if not args.force:
            print(f"{args.output} exists (use --force)", file=sys.stderr)
            return 1
        args.output.unlink()
    build(args.output)
    return 0
