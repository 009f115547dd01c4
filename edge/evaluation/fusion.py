"""Fusion accuracy on PETS09-S3-MF1 with the generated radar feed (edge.evaluation.radar_scenario).

Per frame, each camera track is matched to a ground-truth person by its box (IoU >= 0.5, one
to one); each radar target is a person by the scenario's numbering (clutter is nobody's).
- a camera track is the person it matched most often: a frame where its box misses the truth
  (a poor detection) keeps that identity; a track that never matched anyone is nobody;
- link accuracy: of the camera-track frames whose person has a live radar target, the share
  in which the track is linked to that person's radar target;
- wrong-link rate: of all links in all frames, the share that join a camera track to another
  person's radar target, to clutter, or a camera track that is no person to any radar target.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.errors import DatasetError
from edge.evaluation.radar_scenario import CLUTTER_BASE, PERSON_BASE, POST_LAT, POST_LON, T0
from edge.evaluation.tracking import MotSequence
from edge.fusion import Fusion, FusionConfig
from edge.geo import LocalFrame
from edge.radar.nmea import NmeaDecoder
from edge.radar.store import SensorAccuracy, TrackStore

SOURCE = "radar"
log = logging.getLogger(__name__)


def pets_camera(seq: MotSequence, frame: LocalFrame):
    """The sequence's Tsai calibration (View_001.xml) as a CameraModel in the post's frame:
    world millimetres, world x pointing east (the scenario's stated placement)."""
    from edge.camera_model import CameraModel
    from edge.tsai import TsaiCamera

    xml = next(iter(sorted(seq.root.glob("View_*.xml"))), None)
    if xml is None:
        raise DatasetError(f"{seq.root}: no View_*.xml calibration beside the sequence")
    geometry = TsaiCamera.from_xml(xml).to_geometry(frame, units_m=0.001, origin_en=(0.0, 0.0), x_bearing_deg=90.0)
    return CameraModel.from_config(geometry, frame)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match_to_truth(tracks, truth: list[tuple[int, tuple[float, float, float, float]]]) -> dict[int, int]:
    """Camera track id -> ground-truth id, one to one, IoU >= 0.5."""
    if not tracks or not truth:
        return {}
    tb = np.array([tr.box for tr in tracks], dtype=np.float64)
    gb = np.array([[x, y, x + w, y + h] for _, (x, y, w, h) in truth], dtype=np.float64)
    iou = _iou(tb, gb)
    rows, cols = linear_sum_assignment(-iou)
    return {tracks[r].id: truth[c][0] for r, c in zip(rows, cols) if iou[r, c] >= 0.5}


def person_of(radar_target: str) -> int | None:
    n = int(radar_target)
    return n - PERSON_BASE if PERSON_BASE <= n < CLUTTER_BASE else None


@dataclass(frozen=True)
class FusionScore:
    link_accuracy: float
    wrong_link_rate: float
    eligible: int  # camera-track frames whose person had a live radar target
    correct: int
    links: int
    wrong: int
    frames: int
    radar_reports: int

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def radar_lines(path: Path) -> Iterator[str]:
    try:
        with path.open("r", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the radar feed: {e.strerror or e}") from None


def evaluate_fusion(seq: MotSequence, radar_file: Path, fps: float, detector, tracker_config, *,
                    fusion_config: FusionConfig | None = None, range_sigma_m: float = 1.0,
                    bearing_sigma_deg: float = 0.5,
                    progress: Callable[[Iterator, int | None], Iterator] = lambda it, total: it) -> FusionScore:
    from edge.evaluation.tracking import detect_sequence
    from edge.track import Tracker

    frame = LocalFrame(POST_LAT, POST_LON)
    model = pets_camera(seq, frame)
    decoder = NmeaDecoder(SOURCE)
    lines = radar_lines(Path(radar_file))
    # The radar's position (its own RMC) orients each target's error ellipse along its beam.
    pending: list = []
    origin = None
    reports = 0
    store = TrackStore(frame)
    frames = detect_sequence(detector, seq, fps, progress=progress)
    tracker = Tracker(tracker_config)
    fusion = Fusion("pets", model, store, fusion_config)
    eligible = correct = n_links = wrong = 0
    exhausted = False
    seen: list[tuple] = []  # (frame, track id, per-frame person, link) to score once identities are known
    votes: dict[int, Counter] = {}
    for fr in frames:
        t_wall = T0.timestamp() + fr.timestamp
        while not exhausted and (not pending or pending[-1].time <= t_wall):
            line = next(lines, None)
            if line is None:
                exhausted = True
                break
            for rep in decoder.feed(line, t_wall):
                pending.append(rep)
            if origin is None and decoder.own.lat is not None:
                origin = tuple(float(v) for v in frame.to_local(decoder.own.lat, decoder.own.lon))
                store.accuracy[SOURCE] = SensorAccuracy(range_sigma_m=range_sigma_m, bearing_sigma_deg=bearing_sigma_deg,
                                                        origin=origin, stale_s=3.0)
        while pending and pending[0].time <= t_wall:
            store.add(pending.pop(0))
            reports += 1
        store.expire(t_wall)
        tracks = tracker.update(fr.detections, fr.timestamp)
        result = fusion.step(tracks, t_wall)
        truth = match_to_truth(tracks, seq.gt.get(fr.number, []))
        for tr in tracks:
            person = truth.get(tr.id)
            if person is not None:
                votes.setdefault(tr.id, Counter())[person] += 1
            live = {p for p in range(1, CLUTTER_BASE - PERSON_BASE) if store.get((SOURCE, f"{PERSON_BASE + p:02d}"))}
            seen.append((fr.number, tr.id, person, result.links.get(tr.id), live))
    # A track is the person it matched most often; a frame where its box misses the truth
    # (IoU < 0.5: a poor detection) keeps that identity rather than counting as nobody.
    identity = {tid: c.most_common(1)[0][0] for tid, c in votes.items()}
    for number, tid, person, link, live in seen:
        person = person if person is not None else identity.get(tid)
        if person is not None and person in live:
            eligible += 1
            if link is not None and person_of(link[1]) == person:
                correct += 1
        if link is not None:
            n_links += 1
            if person is None or person_of(link[1]) != person:
                wrong += 1
                log.debug("frame %d: camera track %d (person %s) wrongly linked to radar %s", number, tid, person, link[1])
    if not frames:
        raise DatasetError(f"{seq.frames}: no frame")
    return FusionScore(correct / eligible if eligible else 0.0, wrong / n_links if n_links else 0.0, eligible, correct,
                       n_links, wrong, len(frames), reports)
