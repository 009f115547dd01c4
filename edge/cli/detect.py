"""`zastava-edge detect SOURCE`: detections on a picture, a folder, a video or a live stream."""

from __future__ import annotations

import argparse
import json
import sys
import time

from edge.annotate import draw_detections
from edge.detect.stream import DetectionStream
from edge.cli.common import add_detector_options, detector_config, positive_int, progress
from edge.errors import SourceError, ZastavaError
from edge.recording import VideoRecorder, write_image
from edge.sources import ImageSource, ReconnectPolicy, open_source


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="run the detector on an image, folder, video, stream URL or camera index",
        description="Run the detector on SOURCE and print its detections, one line per frame.",
    )
    p.add_argument("source", help="image, image folder, video file, rtsp:// or http:// URL, or USB camera index")
    add_detector_options(p)
    p.add_argument("--out", help="write an annotated image (image source) or video (.mp4/.avi/.mkv)")
    p.add_argument("--json", action="store_true", help="one JSON object per frame on stdout")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--fps", type=float, help="frame rate for image folders (timestamps = index / fps)")
    p.add_argument(
        "--reconnect-attempts", type=int, default=5, help="live sources: give up after this many failed reconnects"
    )
    p.set_defaults(run=run)


def _human_line(frame, det) -> str:
    if not len(det):
        return f"frame {frame.index} t={frame.timestamp:.3f}s: nothing"
    items = ", ".join(f"{n} {s:.2f}" for n, s in zip(det.class_names(), det.scores.tolist()))
    return f"frame {frame.index} t={frame.timestamp:.3f}s: {len(det)} — {items}"


def run(args: argparse.Namespace) -> int:
    from edge.detect import Detector  # loads onnxruntime: only when a command needs it

    source = open_source(args.source, fps=args.fps, policy=ReconnectPolicy(max_attempts=args.reconnect_attempts))
    detector = Detector(detector_config(args))
    single_image = isinstance(source, ImageSource)
    recorder = None
    if args.out and not single_image:
        recorder = VideoRecorder(args.out, source.fps or 25.0)
    out = sys.stdout
    n_frames = n_dets = 0
    started = time.perf_counter()
    frames = progress(source, total=source.frame_count, desc="detect")
    try:
        for frame, det in DetectionStream(detector, frames):
            n_frames += 1
            n_dets += len(det)
            if args.json:
                record = {"frame": frame.index, "timestamp": round(frame.timestamp, 6), "source": frame.source,
                          "width": frame.width, "height": frame.height, "detections": det.records()}
                out.write(json.dumps(record) + "\n")
            else:
                out.write(_human_line(frame, det) + "\n")
            if args.out:
                annotated = draw_detections(frame.image, det)
                if single_image:
                    write_image(args.out, annotated)
                else:
                    recorder.write(annotated)
            if args.max_frames and n_frames >= args.max_frames:
                break
    finally:
        if recorder:
            recorder.close()
        source.close()
    elapsed = time.perf_counter() - started
    stats = source.stats
    summary = f"{n_frames} frame(s), {n_dets} detection(s), {n_frames / elapsed:.1f} frames/s on {detector.provider}"
    if stats.corrupt_frames:
        summary += f", {stats.corrupt_frames} corrupt frame(s) skipped"
    if stats.dropped_frames:
        summary += f", {stats.dropped_frames} live frame(s) dropped"
    print(summary, file=sys.stderr)
    if source.incomplete and not args.max_frames:
        raise SourceError(source.incomplete)
    if n_frames == 0:
        raise ZastavaError(f"{args.source}: no frame could be decoded")
    return 0
