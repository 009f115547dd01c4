"""`zastava-edge replay -c CONFIG [SOURCE]`: what a config would have raised on a recording."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from edge.cli.common import positive_int, progress
from edge.errors import SourceError, ZastavaError


def iso_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-11-22T22:30:00+01:00") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run a camera's whole pipeline on a recording: alerts as JSON lines",
        description="Detector, tracker, rules and alerts of one camera of CONFIG on a recording, as fast as "
        "the machine allows. Alerts go to stdout as JSON lines, a summary to stderr.",
    )
    p.add_argument("-c", "--config", required=True, type=Path, help="node config (YAML)")
    p.add_argument("source", nargs="?", help="recording (video file or image folder); default: the camera's source")
    p.add_argument("--camera", help="camera id (default: the config's first camera)")
    p.add_argument("--out", type=Path, help="write an annotated video: zones, lines, tracks and trails, alerts, "
                   "and (with radars and camera geometry) the projected radar/AIS targets and fusion links")
    p.add_argument("--plan-out", type=Path, help="with radar/AIS feeds or geo rules: the node's plan view (radar and AIS "
                   "tracks, camera wedge, geo zones), as a video (.mp4/.avi) or the last picture (.png/.jpg)")
    p.add_argument("--snapshots", type=Path, help="write each alert's evidence JPEG here, named by alert id")
    p.add_argument("--start-time", type=iso_time, help="wall time of the recording's first frame (default: now)")
    p.add_argument("--fps", type=float, help="frame rate of an image folder")
    p.add_argument("--max-frames", type=positive_int)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.replay import replay

    config = load_config(args.config)
    if args.plan_out and not (config.radars or config.geo_rules):
        raise ZastavaError(f"{args.config}: --plan-out needs radar/AIS feeds or geo rules in the config")
    camera = config.camera(args.camera) if args.camera else config.cameras[0]
    source = args.source or camera.source
    out = sys.stdout

    def on_alert(rec) -> None:
        out.write(rec.alert.to_json() + "\n")
        out.flush()

    summary = replay(
        config,
        camera.id,
        source,
        start=args.start_time,
        fps=args.fps or camera.source_fps,
        out_video=args.out,
        plan_out=args.plan_out,
        snapshots=args.snapshots,
        on_alert=on_alert,
        progress=lambda it, total: progress(it, total=total, desc=f"replay {camera.id}"),
        max_frames=args.max_frames,
    )
    print(summary.line(), file=sys.stderr)
    if summary.incomplete and not args.max_frames:
        raise SourceError(summary.incomplete)
    if summary.frames == 0:
        raise ZastavaError(f"{source}: no frame could be decoded")
    return 0
