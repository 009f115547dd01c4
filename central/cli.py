"""`zastava-central`: the central aggregator's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from central import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zastava-central",
        description="Zastava central aggregator. Ingest, storage and the API are not built yet; "
        "this release only installs the command.",
    )
    parser.add_argument("--version", action="version", version=f"zastava-central {__version__}")
    parser.parse_args(argv)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
