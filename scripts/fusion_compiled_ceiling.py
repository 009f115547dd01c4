"""What the fusion bench's radar work would add if only its compiled calls remained.

An experiment, not a benchmark the README's goal is judged by: it bounds what moving the radar
work's per-frame Python into compiled passes could give. It records every compiled call the
work makes on each frame of the bench's scene (the TTM scans and row writes, the store's
snapshot kernel with the targets in view, the box anchors, ground fix and ground velocities, and the association,
assignment and links in one call) with copies of its arguments, then measures, in interleaved
rounds beside the camera's loop on the real video, the whole radar work against replaying just
those calls. The list of kernels is written out below: a kernel added to the per-frame work
later must be added to it.

    .venv/bin/python scripts/fusion_compiled_ceiling.py $ZASTAVA_DATA/video/vtest.avi --rounds 30
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge.camera_model  # noqa: E402
import edge.fusion  # noqa: E402
import edge.geometry  # noqa: E402
import edge.ground_velocity  # noqa: E402
import edge.links  # noqa: E402
import edge.pairing  # noqa: E402
import edge.radar.store  # noqa: E402
import edge.radar.ttm_scan  # noqa: E402
from edge.bench import _cycle, _take  # noqa: E402
from edge.detect.detector import Detector  # noqa: E402
from edge.detect.stream import DetectionStream  # noqa: E402
from edge.fusion_bench import FusionScene, bench_config  # noqa: E402
from edge.sources import open_source  # noqa: E402
from edge.track import Tracker  # noqa: E402

# The module globals through which the radar work calls compiled code, per frame.
COMPILED = {
    edge.radar.ttm_scan: ["scan"],
    edge.radar.store: ["_ttm_row", "live_predicted"],  # _ttm_row: a TTM scanned into its row
    edge.geometry: ["_anchors"],
    edge.camera_model: ["_projective_fix"],
    edge.ground_velocity: ["_advance"],
    edge.pairing: ["radar_view"],  # the store's live targets and the fusion's side of those in view
    edge.links: ["step", "columns_of", "settled"],  # step: association, assignment and links in one call
    # the boxes' ground fix and velocities in one call; the fused picture's places; the radar-AIS pairing
    edge.fusion: ["_camera_kernel", "places", "linear_sum_assignment"],
}


def record_calls(scene: FusionScene, frames: int) -> list[list]:
    """Run the scene's radar work for `frames` frames; each frame's compiled calls, in order."""
    calls: list[list] = []

    def recording(f):
        def call(*args):
            calls[-1].append((f, copy.deepcopy(args)))
            return f(*args)
        return call

    saved = {(m, n): getattr(m, n) for m, names in COMPILED.items() for n in names}
    for (m, n), f in saved.items():
        setattr(m, n, recording(f))
    try:
        tracker = Tracker(scene.camera.tracker)
        for k in range(frames):
            calls.append([])
            scene.radar_work(k, tracker.update(scene.detections[k], k * scene.dt_frame))
    finally:
        for (m, n), f in saved.items():
            setattr(m, n, f)
    return calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    first = next(iter(open_source(args.source)))
    detector = Detector(bench_config("yolox-nano", first.width, first.height).cameras[0].detector)
    total = args.frames * (args.rounds + 1)
    whole = FusionScene(first, detector.names, frames=total)
    print(f"recording the compiled calls of {total} frames...", file=sys.stderr)
    calls = record_calls(FusionScene(first, detector.names, frames=total), total)
    cycle = _cycle(args.source)
    states = {v: {"i": 0, "tracker": Tracker(whole.camera.tracker)} for v in ("camera", "whole", "compiled")}

    def loop(variant: str) -> float:
        state = states[variant]
        started, n = time.perf_counter(), 0
        for _frame, _det in DetectionStream(detector, _take(cycle, args.frames)):
            k = state["i"] % total
            state["i"] += 1
            tracks = state["tracker"].update(whole.detections[k], k * whole.dt_frame)
            if variant == "whole":
                whole.radar_work(k, tracks)
            elif variant == "compiled":
                for f, a in calls[k]:
                    f(*a)
            n += 1
        return (time.perf_counter() - started) / n * 1000

    for v in states:  # warm-up
        loop(v)
    rows = []
    for i in range(args.rounds):
        order = ("whole", "compiled") if i % 2 == 0 else ("compiled", "whole")
        camera = loop("camera")
        got = {v: loop(v) / camera - 1 for v in order}
        rows.append((camera, got["whole"], got["compiled"]))
        print(f"round {i + 1}/{args.rounds}: camera loop {camera:.2f} ms/frame; whole radar work +{100 * got['whole']:.1f}%, "
              f"its compiled calls alone +{100 * got['compiled']:.1f}%", file=sys.stderr)
    print(f"compiled calls per frame: {statistics.mean(len(c) for c in calls):.1f}")
    print(f"camera loop: {statistics.median(r[0] for r in rows):.2f} ms/frame (median of {args.rounds} rounds)")
    print(f"whole radar work adds:          {100 * statistics.median(r[1] for r in rows):5.1f} %")
    print(f"its compiled calls alone add:   {100 * statistics.median(r[2] for r in rows):5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
