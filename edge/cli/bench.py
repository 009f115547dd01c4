"""`zastava-edge bench`: detection path throughput against raw inference, side by side."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.common import add_detector_options, detector_config, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure raw inference and full detection-path throughput side by side",
        description="Interleaved rounds of raw ONNX Runtime inference and the full detection path "
        "(decode, preprocess, infer, postprocess) on SOURCE; medians over rounds.",
    )
    p.add_argument("source", help="video file (replayed in a loop), image folder, or stream")
    add_detector_options(p)
    p.add_argument("--frames", type=positive_int, default=60, help="frames per round for each measurement")
    p.add_argument("--rounds", type=positive_int, default=12, help="interleaved rounds (median reported)")
    p.add_argument("--json", action="store_true", help="last line: the figures as one JSON object")
    p.add_argument("-c", "--config", type=Path,
                   help="node config: measure its camera's tracker + rules per frame against the detection path instead")
    p.add_argument("--camera", help="camera of --config (default: the first)")
    p.add_argument("--objects", type=positive_int, default=50, help="objects in view for the tracker + rules measurement")
    p.add_argument("--fusion", action="store_true",
                   help="measure radar ingest + radar-camera fusion + geo rules per frame against the detection path")
    p.add_argument("--radar-tracks", type=positive_int, default=200, help="radar targets for --fusion (1 report/s each)")
    p.add_argument("--feed", choices=("inline", "udp"), default="inline",
                   help="with --fusion: decode the radar's sentences on the loop's thread (inline), or send them to a "
                   "node's UDP feed thread from a process of their own, as on a running node (udp)")
    p.add_argument("--parts", action="store_true",
                   help="with --fusion: also measure what ingest alone, and ingest with the fusion step, add")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.parts and not args.fusion:
        from edge.errors import ZastavaError

        raise ZastavaError("--parts measures the parts of the radar work: it goes with --fusion")
    if args.fusion:
        return run_fusion(args)
    if args.config:
        return run_pipeline(args)
    from edge.bench import run_bench

    def on_round(i: int, row: dict) -> None:
        print(
            f"round {i + 1}/{args.rounds}: raw single {row['raw_single']:.1f}/s, raw parallel "
            f"{row['raw_parallel']:.1f}/s, full path {row['full']:.1f}/s, ratio {row['ratio']:.2f}",
            file=sys.stderr,
        )

    r = run_bench(detector_config(args), args.source, frames_per_round=args.frames, rounds=args.rounds, on_round=on_round)
    print(f"model {r.model} {r.input_size} on {r.provider}; source {r.source}; {r.rounds} rounds x {r.frames_per_round} frames")
    print(f"raw inference, 1 run x all cores:       {r.raw_single_fps:7.1f} frames/s")
    print(f"raw inference, {r.runs} runs x {r.threads} thread(s):     {r.raw_parallel_fps:7.1f} frames/s")
    print(f"full detection path ({r.runs} runs in flight): {r.full_fps:7.1f} frames/s")
    print(f"ratio full / best raw:                  {r.ratio:7.2f}")
    print(f"ratio full / single-run raw:            {r.ratio_vs_single:7.2f}")
    print(f"latency per frame (read to detections): p50 {r.latency_p50_ms:.1f} ms, p99 {r.latency_p99_ms:.1f} ms")
    print(
        f"stages, one frame at a time (median ms): decode {r.decode_ms:.2f}, preprocess {r.preprocess_ms:.2f}, "
        f"infer {r.infer_ms:.2f}, postprocess {r.postprocess_ms:.2f}"
    )
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from edge.bench import run_pipeline_bench
    from edge.config import load_config

    config = load_config(args.config)
    camera = config.camera(args.camera) if args.camera else config.cameras[0]

    def on_round(i: int, row: dict) -> None:
        print(f"round {i + 1}/{args.rounds}: detection path {row['detection_ms']:.2f} ms/frame, "
              f"tracker + rules {row['track_rules_ms']:.3f} ms/frame ({100 * row['share']:.1f}%)", file=sys.stderr)

    r = run_pipeline_bench(config, camera.id, args.source, objects=args.objects, frames_per_round=args.frames,
                           rounds=args.rounds, on_round=on_round)
    print(f"camera {camera.id} of {args.config}; source {r.source}; {r.rounds} rounds x {r.frames_per_round} frames")
    print(f"scene: {r.tiles} tile(s) of real detections, {r.detections_mean:.1f} detections and "
          f"{r.objects_mean:.1f} confirmed tracks per frame")
    print(f"detection path:   {r.detection_ms:7.2f} ms/frame")
    print(f"tracker + rules:  {r.track_rules_ms:7.3f} ms/frame")
    print(f"share:            {100 * r.share:7.1f} % of the detection path")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0


def run_fusion(args: argparse.Namespace) -> int:
    from edge.errors import ZastavaError
    from edge.fusion_bench import run_fusion_bench

    if args.radar_tracks < args.objects:
        raise ZastavaError(f"--radar-tracks ({args.radar_tracks}) must be at least --objects ({args.objects})")

    def on_round(i: int, row: dict) -> None:
        parts = "".join(f"; {k[6:]} alone +{100 * v:.1f}%" for k, v in row.items()
                        if k in ("added_ingest", "added_step", "added_sender"))
        feed = f", feed threads {row['feed_ms']:.3f}" if "feed_ms" in row else ""
        print(f"round {i + 1}/{args.rounds}: camera loop {row['camera_ms']:.2f} ms/frame, with radar {row['fused_ms']:.2f} "
              f"(+{100 * row['added']:.1f}%){parts}; radar work {row['fusion_ms']:.3f}{feed} ms/frame", file=sys.stderr)

    r = run_fusion_bench(args.source, model=args.model or "yolox-nano", camera_tracks=args.objects,
                         radar_tracks=args.radar_tracks, frames_per_round=args.frames, rounds=args.rounds,
                         parts=args.parts, feed=args.feed, on_round=on_round)
    print(f"source {r.source}; {r.rounds} rounds x {r.frames_per_round} frames; medians")
    print(f"scene: {r.camera_tracks:.1f} camera tracks, {r.radar_targets:.1f} live radar targets, "
          f"{r.sentences_per_frame:.1f} TTM sentences and {r.links:.1f} camera-radar links per frame")
    print(f"camera loop without radar:          {r.camera_ms:7.2f} ms/frame")
    print(f"camera loop with radar and fusion:  {r.fused_ms:7.2f} ms/frame")
    print(f"added to the per-frame time:        {100 * r.added:7.1f} % (95% interval {100 * r.added_low:.1f} to "
          f"{100 * r.added_high:.1f} %)")
    print(f"radar work's own time:              {r.fusion_ms:7.3f} ms/frame ({100 * r.cpu_share:.1f}% of the camera loop)")
    if r.feed_ms is not None:
        print(f"radar feed: a node's UDP feed thread, bursts coalesced for {1000 * r.coalesce_s:.1f} ms (one frame of "
              "this loop, as 40 ms is at 25 fps)")
        print(f"  its threads' CPU (reader, expiry): {r.feed_ms:7.3f} ms/frame (in the share above)")
        print(f"  the bench's sender process:       {r.sender_ms:7.3f} ms/frame (the radar's work, on these cores)")
        print(f"  the sender alone adds:            {100 * r.added_sender:7.1f} % (a control: to a socket nobody reads)")
    if r.added_ingest is not None:
        print(f"  ingest alone adds:                {100 * r.added_ingest:7.1f} %")
        print(f"  ingest and the fusion step add:   {100 * r.added_step:7.1f} %")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0
