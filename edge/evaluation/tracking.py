"""Tracking accuracy on a MOTChallenge-layout sequence, scored by py-motmetrics.

Sequence layout: SEQ_DIR/img1/*.jpg (frames in name order) and SEQ_DIR/gt/gt.txt with one
`frame,id,x,y,w,h[,...]` line per box (1-based frames, top-left pixel boxes). MOTChallenge's
optional columns are honoured when present: a 0 in column 7 ("consider") drops the box, and in
9-column files (MOT16/17/20) a class other than 1 (pedestrian) in column 8 drops it too. PETS09's
10-column files carry world coordinates there instead, so they are read as all-pedestrian.

A ground-truth box and a hypothesis box match when their IoU is at least 0.5 (MOTChallenge's
rule). MOTA, IDF1, ID switches, precision and recall come from motmetrics; hand-written CLEAR
and ID metrics would be one more thing to prove.

    >>> gt = {1: [(1, (0, 0, 10, 10))], 2: [(1, (1, 0, 10, 10))]}
    >>> hyp = {1: [(7, (0, 0, 10, 10))], 2: [(7, (1, 0, 10, 10))]}
    >>> score_tracks(gt, hyp).mota
    1.0
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import DatasetError, ZastavaError

if TYPE_CHECKING:
    from edge.detect.detector import Detections, Detector
    from edge.track import TrackerConfig

log = logging.getLogger(__name__)

# motmetrics 1.4 calls np.asfarray, which numpy 2.0 removed; give it back only where missing.
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]

# A box as (x, y, w, h) in pixels, top-left corner first; MOT files and motmetrics use this form.
Box = tuple[float, float, float, float]
# Per 1-based frame number: (object or track id, box) pairs.
FrameBoxes = Mapping[int, Sequence[tuple[int, Box]]]

MATCH_IOU = 0.5


@dataclass(frozen=True)
class MotSequence:
    """A MOTChallenge-layout sequence: its frames folder and its ground truth per frame."""

    root: Path
    frames: Path
    gt: dict[int, list[tuple[int, Box]]]
    fps: float | None  # from seqinfo.ini, where the sequence has one

    @property
    def gt_boxes(self) -> int:
        return sum(len(v) for v in self.gt.values())


def load_sequence(root: str | Path) -> MotSequence:
    """Check the layout and read gt/gt.txt; every problem is one DatasetError line."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such sequence folder")
    frames = root / "img1"
    if not frames.is_dir():
        raise DatasetError(f"{root}: no img1/ folder of frames (MOTChallenge layout: SEQ/img1/*.jpg, SEQ/gt/gt.txt)")
    gt_file = root / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise DatasetError(f"{root}: no ground truth at gt/gt.txt (MOTChallenge layout: SEQ/img1/*.jpg, SEQ/gt/gt.txt)")
    from edge.sources import _seqinfo_fps

    return MotSequence(root=root, frames=frames, gt=read_mot_file(gt_file), fps=_seqinfo_fps(frames))


def read_mot_file(path: Path) -> dict[int, list[tuple[int, Box]]]:
    """{frame: [(id, (x, y, w, h)), ...]} from a MOTChallenge text file."""
    boxes: dict[int, list[tuple[int, Box]]] = {}
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            frame, oid = int(float(fields[0])), int(float(fields[1]))
            x, y, w, h = (float(v) for v in fields[2:6])
            consider = float(fields[6]) if len(fields) >= 7 else 1.0
            pedestrian = int(float(fields[7])) == 1 if len(fields) == 9 else True
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{n}: expected `frame,id,x,y,w,h,...`, found {line.strip()[:80]!r}") from None
        # MOTChallenge's "consider" flag (0: crowd, reflection...) and MOT16/17/20's class column.
        # Their benchmark ignores hypotheses on such boxes; here they count as false positives,
        # which is stricter and needs no distractor matching.
        if consider == 0 or not pedestrian:
            continue
        boxes.setdefault(frame, []).append((oid, (x, y, w, h)))
    if not boxes:
        raise DatasetError(f"{path}: no ground-truth boxes")
    return boxes


@dataclass(frozen=True)
class TrackingScore:
    mota: float
    idf1: float
    id_switches: int
    precision: float
    recall: float
    motp_iou: float  # mean IoU of matched pairs (motmetrics reports 1 - IoU as MOTP)
    false_positives: int
    misses: int
    gt_boxes: int
    gt_objects: int
    frames: int

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("mota", "idf1", "precision", "recall", "motp_iou"):
            d[k] = round(d[k], 4)
        return d


def score_tracks(gt: FrameBoxes, hypotheses: FrameBoxes, *, frames: Iterable[int] | None = None) -> TrackingScore:
    """Score tracker output against ground truth, frame by frame, with motmetrics.

    `frames` lists the 1-based frame numbers that were tracked (default: every frame either
    side names); a frame in it with no hypotheses counts all its ground truth as missed.
    """
    try:
        import motmetrics as mm
    except ImportError:
        raise ZastavaError("tracking evaluation needs py-motmetrics: pip install motmetrics") from None

    numbers = sorted(set(frames) if frames is not None else set(gt) | set(hypotheses))
    acc = mm.MOTAccumulator(auto_id=False)
    for f in numbers:
        g = gt.get(f, ())
        h = hypotheses.get(f, ())
        dist = mm.distances.iou_matrix(
            np.array([b for _, b in g], np.float64).reshape(-1, 4),
            np.array([b for _, b in h], np.float64).reshape(-1, 4),
            max_iou=1.0 - MATCH_IOU,
        )
        acc.update([i for i, _ in g], [i for i, _ in h], dist, frameid=f)
    mh = mm.metrics.create()
    names = ["mota", "idf1", "num_switches", "precision", "recall", "motp", "num_false_positives", "num_misses",
             "num_objects", "num_unique_objects", "num_frames"]
    row = mh.compute(acc, metrics=names, name="seq").loc["seq"]

    def num(key: str) -> float:
        v = float(row[key])
        return v if np.isfinite(v) else 0.0

    return TrackingScore(
        mota=num("mota"),
        idf1=num("idf1"),
        id_switches=int(num("num_switches")),
        precision=num("precision"),
        recall=num("recall"),
        motp_iou=1.0 - num("motp") if num("num_objects") else 0.0,
        false_positives=int(num("num_false_positives")),
        misses=int(num("num_misses")),
        gt_boxes=int(num("num_objects")),
        gt_objects=int(num("num_unique_objects")),
        frames=int(num("num_frames")),
    )


def xyxy_to_xywh(box: Sequence[float] | np.ndarray) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2 - x1, y2 - y1)


# -- running trackers over a sequence -------------------------------------------------------


@dataclass(frozen=True)
class DetectedFrame:
    """One frame's detections, ready to feed to any tracker."""

    number: int  # 1-based MOT frame number
    timestamp: float
    detections: Detections


def frame_number(path: Path, index: int) -> int:
    """MOTChallenge names frames by number (000001.jpg); otherwise file order, from 1."""
    return int(path.stem) if path.stem.isdigit() else index + 1


def detect_sequence(
    detector: Detector,
    seq: MotSequence,
    fps: float,
    *,
    progress: Callable[[Iterator, int | None], Iterator] = lambda items, total: items,
) -> list[DetectedFrame]:
    """Run the detector once over every frame of the sequence, stamped index / fps.

    `progress(items, total)` may wrap the frames, e.g. in a progress bar.
    """
    from edge.detect.stream import DetectionStream
    from edge.sources import ImageFolderSource

    source = ImageFolderSource(seq.frames, fps=fps)
    frames = []
    try:
        for frame, det in DetectionStream(detector, progress(iter(source), source.frame_count)):
            frames.append(DetectedFrame(frame_number(source.files[frame.index], frame.index), frame.timestamp, det))
    finally:
        source.close()
    if not frames:
        raise DatasetError(f"{seq.frames}: no frame could be read")
    if source.stats.corrupt_frames:
        log.warning("%s: %d unreadable frame(s) skipped", seq.frames, source.stats.corrupt_frames)
    return frames


@dataclass(frozen=True)
class TrackerRun:
    """A tracker's output over a sequence and what its updates cost."""

    name: str
    hypotheses: dict[int, list[tuple[int, Box]]]
    ms_per_frame: float


def run_zastava(frames: Sequence[DetectedFrame], config: TrackerConfig | None = None) -> TrackerRun:
    """Zastava's tracker over pre-computed detections; reports the confirmed tracks it matched."""
    from edge.track import Tracker

    tracker = Tracker(config)
    hypotheses: dict[int, list[tuple[int, Box]]] = {}
    spent = 0.0
    for f in frames:
        t0 = time.perf_counter()
        tracks = tracker.update(f.detections, f.timestamp)
        spent += time.perf_counter() - t0
        hypotheses[f.number] = [(t.id, xyxy_to_xywh(t.box)) for t in tracks]
    return TrackerRun("zastava", hypotheses, 1000.0 * spent / max(len(frames), 1))


def run_roboflow(frames: Sequence[DetectedFrame], fps: float) -> list[TrackerRun]:
    """Roboflow `trackers`' ByteTrack and OC-SORT, default settings, on the same detections.

    They take supervision.Detections and the real frame rate (which only converts their
    30-fps-based lost-track buffer to this rate), get the same timestamps, and report a
    detection with a tracker id only once its track is confirmed, as Zastava does.
    """
    try:
        import supervision as sv
        from trackers import ByteTrackTracker, OCSORTTracker
    except ImportError as e:
        raise ZastavaError(f"--compare needs roboflow `trackers` and `supervision` (pip install trackers): {e}") from None

    inputs = [
        sv.Detections(
            xyxy=f.detections.xyxy.astype(np.float32).reshape(-1, 4),
            confidence=f.detections.scores.astype(np.float32),
            class_id=f.detections.class_ids.astype(int),
        )
        for f in frames
    ]
    runs = []
    for name, cls in (("trackers ByteTrack", ByteTrackTracker), ("trackers OC-SORT", OCSORTTracker)):
        tracker = cls(frame_rate=fps)
        hypotheses: dict[int, list[tuple[int, Box]]] = {}
        spent = 0.0
        for f, det in zip(frames, inputs):
            t0 = time.perf_counter()
            out = tracker.update(det, timestamp=f.timestamp)
            spent += time.perf_counter() - t0
            hypotheses[f.number] = [(int(i), xyxy_to_xywh(box)) for box, i in zip(out.xyxy, out.tracker_id) if i >= 0]
        runs.append(TrackerRun(name, hypotheses, 1000.0 * spent / max(len(frames), 1)))
    return runs
