"""`zastava-edge`: the edge node's command line.

Every error a user can cause prints one line on stderr and exits non-zero (2 for bad input,
1 for an internal fault); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from edge import __version__
from edge.errors import ZastavaError

PROG = "zastava-edge"


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we print only the error, on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from edge.cli import bench, calibrate_cmd, config_cmd, detect, eval_cmd, models_cmd, outbox_cmd, radar_cmd, replay, run

    parser = OneLineParser(prog=PROG, description="Zastava edge node: detection on camera and radar streams.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv for debug)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    detect.register(sub)
    models_cmd.register(sub)
    bench.register(sub)
    eval_cmd.register(sub)
    replay.register(sub)
    config_cmd.register(sub)
    run.register(sub)
    outbox_cmd.register(sub)
    calibrate_cmd.register(sub)
    radar_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    debug = args.debug or bool(os.environ.get("ZASTAVA_DEBUG"))
    try:
        return int(args.run(args) or 0)
    except ZastavaError as e:
        if debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zastava-edge detect ... | head` closing early is not an error
        sys.stderr.close()
        return 0
    except Exception as e:  # a bug of ours: still one line, but say how to see more
        if debug:
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
