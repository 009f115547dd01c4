"""`zastava-edge eval track|alerts`: accuracy of the edge pipeline's stages on labelled data.

Each action registers itself in `register`; add one with a `_register_<action>(esub)` function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from edge.cli.common import add_detector_options, detector_config, progress
from edge.errors import DatasetError, ZastavaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy of tracking and of alerts on labelled sequences")
    esub = p.add_subparsers(dest="eval_command", metavar="ACTION", parser_class=type(p))
    esub.required = True
    _register_track(esub)
    _register_alerts(esub)
    _register_radar_scenario(esub)
    _register_fusion(esub)
    from edge.cli.radar_video_cmd import register_eval

    register_eval(esub)


# -- tracker options, shared by every command that tracks ------------------------------------------


def add_tracker_options(p: argparse.ArgumentParser) -> None:
    """One `--track-<field>` option per TrackerConfig field; unset ones keep the config default."""
    from edge.track import TrackerConfig

    g = p.add_argument_group("tracker")
    for name, field in TrackerConfig.model_fields.items():
        kind = int if field.annotation is int else float
        g.add_argument(
            f"--track-{name.replace('_', '-')}",
            dest=f"track_{name}",
            type=kind,
            metavar="N" if kind is int else "X",
            help=f"{field.description} (default {field.default})",
        )


def tracker_config(args: argparse.Namespace):
    from edge.track import TrackerConfig

    values = {
        name: getattr(args, f"track_{name}")
        for name in TrackerConfig.model_fields
        if getattr(args, f"track_{name}", None) is not None
    }
    try:
        return TrackerConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        where = f"--track-{'-'.join(str(x) for x in err['loc']).replace('_', '-')}" if err["loc"] else "tracker options"
        raise ZastavaError(f"{where}: {err['msg']}") from None


# -- eval track ----------------------------------------------------------------------------------------


def _register_track(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "track",
        help="MOTA, IDF1 and ID switches of detector + tracker on a MOTChallenge sequence",
        description=(
            "Run the detector and the tracker over SEQ_DIR/img1/*.jpg and score the tracks against "
            "SEQ_DIR/gt/gt.txt with py-motmetrics (IoU >= 0.5 matches). Only persons are kept by default, "
            "as MOTChallenge ground truth labels pedestrians."
        ),
    )
    p.add_argument("sequence", type=Path, metavar="SEQ_DIR", help="a MOTChallenge-layout sequence folder")
    p.add_argument("--fps", type=float, help="frame rate (timestamps = index / fps); default: SEQ_DIR/seqinfo.ini")
    p.add_argument("--json", action="store_true", help="last line: JSON with mota, idf1, id_switches, precision, recall")
    p.add_argument(
        "--compare",
        action="store_true",
        help="also run roboflow `trackers` ByteTrack and OC-SORT (defaults) on the same detections and print a table",
    )
    # ByteTrack's second stage feeds on low-score boxes, so the detector must keep them.
    add_detector_options(p, conf=0.1)
    p.set_defaults(classes="person")
    add_tracker_options(p)
    p.set_defaults(run=run_track)


def _sequence_fps(args: argparse.Namespace, seq) -> float:
    if args.fps is not None:
        if not args.fps > 0:
            raise ZastavaError(f"--fps {args.fps:g}: must be positive")
        return args.fps
    if seq.fps is None:
        raise DatasetError(f"{seq.root}: no seqinfo.ini with a frameRate; give the frame rate with --fps")
    return seq.fps


def run_track(args: argparse.Namespace) -> int:
    from edge.evaluation.tracking import detect_sequence, load_sequence, run_roboflow, run_zastava, score_tracks

    seq = load_sequence(args.sequence)
    fps = _sequence_fps(args, seq)
    track_cfg = tracker_config(args)
    from edge.detect import Detector  # loads onnxruntime: only once the input is known to be good

    detector = Detector(detector_config(args))
    frames = detect_sequence(detector, seq, fps, progress=lambda it, total: progress(it, total=total, desc="detect"))
    runs = [run_zastava(frames, track_cfg)]
    if args.compare:
        runs += run_roboflow(frames, fps)
    numbers = [f.number for f in frames]
    rows = []
    for r in runs:
        score = score_tracks(seq.gt, r.hypotheses, frames=numbers)
        rows.append({"tracker": r.name, **score.as_dict(), "ms_per_frame": round(r.ms_per_frame, 3)})

    print(
        f"{seq.root.name}: {len(frames)} frames at {fps:g} fps, {rows[0]['gt_boxes']} gt boxes of "
        f"{rows[0]['gt_objects']} objects; {detector.model_path.name} at {detector.input_hw[0]}x{detector.input_hw[1]}, "
        f"conf {detector.config.conf:g}"
    )
    if args.compare:
        print(f"{'tracker':<20} {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} {'precision':>9} {'recall':>6} {'ms/frame':>8}")
        for r in rows:
            print(
                f"{r['tracker']:<20} {r['mota']:>6.3f} {r['idf1']:>6.3f} {r['id_switches']:>5d} "
                f"{r['precision']:>9.3f} {r['recall']:>6.3f} {r['ms_per_frame']:>8.3f}"
            )
    else:
        r = rows[0]
        print(
            f"MOTA {r['mota']:.3f}  IDF1 {r['idf1']:.3f}  ID switches {r['id_switches']}  "
            f"precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
            f"({r['false_positives']} false positives, {r['misses']} misses; tracker {r['ms_per_frame']:.3f} ms/frame)"
        )
    if args.json:
        head = {"sequence": seq.root.name, "fps": fps, "frames": len(frames), "model": detector.model_path.name}
        print(json.dumps({**head, "rows": rows} if args.compare else {**head, **rows[0]}))
    sys.stdout.flush()
    return 0


# -- eval alerts ---------------------------------------------------------------------------------------


def _register_alerts(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "alerts",
        help="event precision and recall of a config's alerts on a MOTChallenge sequence",
        description=(
            "Derive ground-truth events by running CONFIG's own rules over SEQ_DIR/gt/gt.txt, run the camera's "
            "whole pipeline over SEQ_DIR/img1, and match each alert to at most one event of the same rule and "
            "zone or line: from 1 s before to 2 s after the event, with IoU >= 0.3 against the ground-truth box "
            "in the alert's frame. Crowding rules are left out (their events are about no single track)."
        ),
    )
    p.add_argument("sequence", type=Path, metavar="SEQ_DIR", help="a MOTChallenge-layout sequence folder")
    p.add_argument("-c", "--config", required=True, type=Path, help="node config whose rules are evaluated")
    p.add_argument("--camera", help="camera of the config (default: the first)")
    p.add_argument("--fps", type=float, help="frame rate (default: the camera's source_fps, else seqinfo.ini)")
    p.add_argument("--json", action="store_true", help="last line: JSON with precision, recall, events, alerts")
    p.set_defaults(run=run_alerts)


def run_alerts(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.evaluation.alerts import evaluate_alerts
    from edge.evaluation.tracking import load_sequence

    config = load_config(args.config)
    camera = config.camera(args.camera) if args.camera else config.cameras[0]
    seq = load_sequence(args.sequence)
    if args.fps is None and camera.source_fps:
        args.fps = camera.source_fps
    fps = _sequence_fps(args, seq)
    score = evaluate_alerts(config, camera.id, seq, fps,
                            progress=lambda it, total: progress(it, total=total, desc="replay"))
    print(f"{seq.root.name} at {fps:g} fps, camera {camera.id} of {args.config}: "
          f"{score.events} ground-truth event(s), {score.alerts} alert(s), {score.matched} matched")
    print(f"precision {score.precision:.3f}  recall {score.recall:.3f}")
    for a in score.unmatched_alerts:
        print(f"  false alert: {a['rule']} track {a['track_id']} at {a['media_time']:.2f} s (frame {a['frame']})")
    for e in score.missed_events:
        print(f"  missed event: {e.rule} gt track {e.track_id} at {e.time:.2f} s (frame {e.frame})")
    if args.json:
        print(json.dumps(score.as_dict()))
    return 0


# -- eval radar-scenario / eval fusion ----------------------------------------------------------------


def _register_radar_scenario(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "radar-scenario",
        help="write the fusion scenario's radar feed (NMEA TTM) from a sequence's real trajectories",
        description="No public recording has radar and video of one scene: this writes what a radar on the "
        "camera's mast would have reported for the sequence's ground-truth people (their boxes placed on the "
        "ground with the sequence's calibration), with stated noise, dropouts and clutter. See "
        "edge/evaluation/radar_scenario.py for every assumption.",
    )
    p.add_argument("sequence", type=Path, metavar="SEQ_DIR", help="a MOTChallenge sequence with View_*.xml (Tsai)")
    p.add_argument("--out", type=Path, required=True, help="NMEA file to write")
    p.add_argument("--fps", type=float, default=7.0)
    p.add_argument("--range-sigma", type=float, default=1.0, help="range noise, metres (1 sigma)")
    p.add_argument("--bearing-sigma", type=float, default=0.5, help="bearing noise, degrees (1 sigma)")
    p.add_argument("--dropout", type=float, default=0.1, help="probability a report is missed")
    p.add_argument("--clutter-rate", type=float, default=0.2, help="false tracks born per second")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(run=run_radar_scenario)


def run_radar_scenario(args: argparse.Namespace) -> int:
    from edge.evaluation.fusion import pets_camera
    from edge.evaluation.radar_scenario import POST_LAT, POST_LON, generate, trajectories, write
    from edge.evaluation.tracking import load_sequence
    from edge.geo import LocalFrame

    seq = load_sequence(args.sequence)
    frame = LocalFrame(POST_LAT, POST_LON)
    model = pets_camera(seq, frame)
    tracks = trajectories(seq.gt, model.pixel_to_ground)
    sc = generate(tracks, tuple(float(v) for v in model.camera_en), args.fps, range_sigma_m=args.range_sigma,
                  bearing_sigma_deg=args.bearing_sigma, dropout=args.dropout, clutter_rate=args.clutter_rate,
                  seed=args.seed, frame=frame)
    write(args.out, sc)
    print(f"{args.out}: {len(sc.lines)} sentences, {sc.reports} target reports of {len(sc.people)} people and "
          f"{sc.clutter_tracks} clutter tracks; radar at east {sc.radar_position[0]:.1f} m, north "
          f"{sc.radar_position[1]:.1f} m of the post ({POST_LAT}, {POST_LON})")
    return 0


def _register_fusion(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "fusion",
        help="radar-camera link accuracy on a sequence with the scenario's radar feed",
        description="Detector and tracker on SEQ_DIR/img1, the radar feed replayed in step, fusion each frame. "
        "Prints the share of camera-track frames linked to the radar target of the same true person, and the "
        "share of links that are wrong.",
    )
    p.add_argument("sequence", type=Path, metavar="SEQ_DIR")
    p.add_argument("--radar", type=Path, required=True, help="the NMEA feed (from `eval radar-scenario`)")
    p.add_argument("--fps", type=float, default=7.0)
    p.add_argument("--range-sigma", type=float, default=1.0, help="the radar's stated range accuracy, metres")
    p.add_argument("--bearing-sigma", type=float, default=0.5, help="the radar's stated bearing accuracy, degrees")
    p.add_argument("--json", action="store_true", help="last line: JSON with link_accuracy and wrong_link_rate")
    add_detector_options(p, conf=0.1)
    p.set_defaults(classes="person")
    add_tracker_options(p)
    p.set_defaults(run=run_fusion)


def run_fusion(args: argparse.Namespace) -> int:
    from edge.detect import Detector
    from edge.evaluation.fusion import evaluate_fusion
    from edge.evaluation.tracking import load_sequence

    seq = load_sequence(args.sequence)
    if not args.radar.is_file():
        raise ZastavaError(f"{args.radar}: no such radar feed (write one with `zastava-edge eval radar-scenario`)")
    score = evaluate_fusion(seq, args.radar, args.fps, Detector(detector_config(args)), tracker_config(args),
                            range_sigma_m=args.range_sigma, bearing_sigma_deg=args.bearing_sigma,
                            progress=lambda it, total: progress(it, total=total, desc="detect"))
    print(f"{seq.root.name} at {args.fps:g} fps with {args.radar.name}: {score.frames} frames, {score.radar_reports} "
          f"radar reports, {score.eligible} camera-track frames with their person on radar, {score.links} links")
    print(f"link accuracy {score.link_accuracy:.3f}  wrong-link rate {score.wrong_link_rate:.3f} ({score.wrong} wrong)")
    if args.json:
        print(json.dumps(score.as_dict()))
    return 0
