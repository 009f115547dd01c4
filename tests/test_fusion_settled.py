"""Settled links: between global associations (every `reassociate_s`, and whenever a camera
track arrives) a settled link is only checked against its gates and the assignment runs over
the other tracks. It must decide as the global association every frame decides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import run_cli
from edge.fusion import Fusion, FusionConfig
from edge.radar.store import SensorAccuracy, TrackStore
from test_fusion import camera, frame, person_track, report  # noqa: F401 - fixtures and helpers


def run(camera, frame, config: FusionConfig, radar_at, people, frames: int, dt_s: float = 0.2,
        sigma_deg: float = 0.5) -> list[dict]:
    """Links per frame; radar_at(k) -> {target: (east, north, ve, vn)}, people(k) -> {track: (east, north)}.
    With settled links, they must have been in use (checked only against their gates) for a while."""
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=sigma_deg, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, config)
    out, used = [], 0
    for k in range(frames):
        t = k * dt_s
        for tgt, (e, n, ve, vn) in radar_at(k).items():
            store.add(report(tgt, t, e, n, frame, speed=math.hypot(ve, vn), course=math.degrees(math.atan2(ve, vn)) % 360))
        tracks = [person_track(tid, camera, e, n, t) for tid, (e, n) in people(k).items()]
        settled_before = bool(fusion._settled.any())
        out.append(dict(fusion.step(tracks, t).links))
        used += settled_before and fusion._last_global != t  # a frame between global associations
    assert config.reassociate_s == 0 or used >= frames // 3, "settled links were used"
    return out


def test_a_settled_link_whose_target_leaves_its_gates_is_reassociated_at_once(camera, frame):
    # Radar 11 follows the walker, then (frame 12) jumps 15 m away; radar 12 has been on the walker all along.
    def radar_at(k):
        walker = (-4.0 + 0.2 * k, 60.0, 1.0, 0.0)
        away = (-4.0 + 0.2 * k, 75.0, 1.0, 0.0)
        return {"11": walker if k < 12 else away, "12": (walker[0] + 0.3, 60.2, 1.0, 0.0) if k >= 8 else away}
    def people(k):
        return {1: (-4.0 + 0.2 * k, 60.0)}
    every_frame = run(camera, frame, FusionConfig(reassociate_s=0), radar_at, people, 24)
    settled = run(camera, frame, FusionConfig(reassociate_s=1.0), radar_at, people, 24)
    assert every_frame[10] == {1: ("radar", "11")} and every_frame[-1] == {1: ("radar", "12")}
    assert settled == every_frame, "the same links, frame by frame"


def test_an_arriving_track_can_take_the_target_a_settled_link_holds(camera, frame):
    # Track 1 stands nearer radar 21 and links to it; then it steps towards 22 (still within 21's
    # gates) as track 2 arrives on 21: the arrival's global association lets the better pairing
    # challenge the settled link, as an association every frame would.
    def radar_at(k):
        return {"21": (0.0, 60.0, 0.0, 0.0), "22": (2.4, 60.0, 0.0, 0.0)}
    def people(k):
        return {1: (1.0, 60.0)} if k < 12 else {1: (1.6, 60.0), 2: (0.0, 60.0)}
    every_frame = run(camera, frame, FusionConfig(reassociate_s=0), radar_at, people, 30, sigma_deg=1.0)
    settled = run(camera, frame, FusionConfig(reassociate_s=1.0), radar_at, people, 30, sigma_deg=1.0)
    assert every_frame[11] == {1: ("radar", "21")} and every_frame[-1] == {1: ("radar", "22"), 2: ("radar", "21")}
    assert settled == every_frame


@pytest.mark.slow
def test_settled_links_score_as_a_global_association_every_frame_on_pets09(data_dir: Path, tmp_path: Path):
    from edge.detect.detector import Detector, DetectorConfig
    from edge.evaluation.fusion import evaluate_fusion
    from edge.evaluation.tracking import load_sequence
    from edge.track.tracker import TrackerConfig

    seq_dir = data_dir / "mot" / "PETS09-S3-MF1"
    feed = tmp_path / "radar.nmea"
    assert run_cli("eval", "radar-scenario", str(seq_dir), "--out", str(feed), "--seed", "8").returncode == 0
    seq, detector = load_sequence(seq_dir), Detector(DetectorConfig(model="yolox-nano", conf=0.1, classes=["person"]))
    every_frame, settled = (evaluate_fusion(seq, feed, 7.0, detector, TrackerConfig(), fusion_config=FusionConfig(reassociate_s=r))
                            for r in (0.0, 0.5))
    assert settled == every_frame and settled.link_accuracy >= 0.95 and settled.eligible > 500
