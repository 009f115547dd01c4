"""ByteTrack-style multi-object tracking: stable ids for detections across frames.

Each frame (ByteTrack, Zhang et al. 2022, with time instead of frame counts):
1. every track's Kalman filter predicts to the frame's timestamp (real dt, px/s);
2. high-score detections are matched to confirmed tracks, tracked or lost, by IoU;
3. low-score detections are matched to the confirmed tracks still unmatched that were
   tracked last frame (a partly occluded person scores low but is still there);
4. the remaining high-score detections are matched to tentative tracks;
5. unmatched high-score detections above `new_track_score` start tentative tracks, which are
   confirmed after `min_hits` matches and dropped at their first miss;
6. a confirmed track without a match is lost, and forgotten after `lost_seconds`.

A detection only ever matches a track of its own class.

    >>> import numpy as np
    >>> from edge.detect import Detections
    >>> tracker = Tracker(TrackerConfig(min_hits=1))
    >>> det = Detections(np.array([[10, 10, 50, 90]], np.float32), np.array([0.9], np.float32),
    ...                  np.array([0]), ("person",))
    >>> [(t.id, t.class_name) for t in tracker.update(det, 0.0)]
    [(1, 'person')]
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.track.association import assign, box_iou
from edge.track.kalman import KalmanBank, KalmanNoise, xyxy_to_xywh

if TYPE_CHECKING:  # the detector module loads onnxruntime; tracking needs only its data class
    from edge.detect.detector import Detections

log = logging.getLogger(__name__)


class TrackerConfig(BaseModel):
    """How detections become tracks. Times are in seconds so one config fits any frame rate.

    The defaults are ByteTrack's published ones, with its 30-fps frame counts and per-frame
    Kalman noise converted to seconds.
    """

    model_config = ConfigDict(extra="forbid")

    high_score: float = Field(
        0.5, ge=0.0, le=1.0, description="Detections at or above this score are matched first and may start tracks."
    )
    low_score: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Detections below this score are ignored; from here to high_score they only keep tracks alive.",
    )
    # ByteTrack: track_thresh + 0.1, so a box hovering at the high-score line does not spawn tracks.
    new_track_score: float = Field(
        0.6, ge=0.0, le=1.0, description="Lowest score of an unmatched high-score detection that starts a new track."
    )
    match_iou: float = Field(
        0.2, ge=0.0, le=1.0, description="Lowest IoU between a predicted track box and a high-score detection to pair them."
    )
    second_match_iou: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Lowest IoU to pair a low-score detection with a track (stricter: low scores are often clutter).",
    )
    tentative_match_iou: float = Field(
        0.3, ge=0.0, le=1.0, description="Lowest IoU to pair a high-score detection with a tentative (unconfirmed) track."
    )
    min_hits: int = Field(2, ge=1, le=100, description="Matches a new track needs before it is confirmed and reported.")
    lost_seconds: float = Field(
        1.0, ge=0.0, description="Seconds a track survives unseen (occluded, missed) before it is forgotten."
    )
    history: int = Field(64, ge=1, le=100_000, description="Most (timestamp, box, score) entries kept per track.")
    measurement_noise: float = Field(
        0.05, gt=0.0, description="Std of detected box coordinates, as a fraction of the box size (Kalman R)."
    )
    # ByteTrack's per-frame noise (h/20 position, h/160 velocity, at 30 fps) as per-second densities.
    position_noise: float = Field(
        0.27, ge=0.0, description="Unmodelled position drift, in box sizes per sqrt(second) (Kalman Q)."
    )
    velocity_noise: float = Field(
        1.0, ge=0.0, description="Unmodelled change of velocity, in box sizes per second per sqrt(second) (Kalman Q)."
    )
    initial_velocity_noise: float = Field(
        1.9, gt=0.0, description="Std of a new track's unknown velocity, in box sizes per second."
    )

    @model_validator(mode="after")
    def _ordered_scores(self) -> TrackerConfig:
        if self.low_score > self.high_score:
            raise ValueError(f"low_score ({self.low_score}) is above high_score ({self.high_score})")
        return self

    def kalman_noise(self) -> KalmanNoise:
        return KalmanNoise(
            measurement=self.measurement_noise,
            position=self.position_noise,
            velocity=self.velocity_noise,
            initial_velocity=self.initial_velocity_noise,
        )


class TrackState(enum.IntEnum):
    TENTATIVE = 0  # not yet matched min_hits times; not reported
    TRACKED = 1  # confirmed and matched in the latest frame
    LOST = 2  # confirmed, unmatched since `last_seen`


HistoryEntry = tuple[float, tuple[float, float, float, float], float]


class Track:
    """One tracked object. `box`, `score` and `history` hold what the detector saw; `velocity`
    (px/s of the box centre) comes from the motion filter.

    Ids are unique within a tracker across classes, from 1, given when a track starts: tentative
    tracks that never get confirmed leave gaps in the ids that are reported.
    """

    __slots__ = (
        "id",
        "class_id",
        "class_name",
        "box",
        "score",
        "best_score",
        "first_seen",
        "last_seen",
        "history",
        "hits",
        "state",
        "velocity",
    )

    def __init__(
        self,
        track_id: int,
        class_id: int,
        class_name: str,
        box: np.ndarray,
        score: float,
        timestamp: float,
        history: int,
    ):
        self.id = track_id
        self.class_id = class_id
        self.class_name = class_name
        self.box = box
        self.score = score
        self.best_score = score
        self.first_seen = timestamp
        self.last_seen = timestamp
        self.history: deque[HistoryEntry] = deque([(timestamp, tuple(box.tolist()), score)], maxlen=history)
        self.hits = 1
        self.state = TrackState.TENTATIVE
        self.velocity = np.zeros(2)

    @property
    def is_confirmed(self) -> bool:
        return self.state is not TrackState.TENTATIVE

    @property
    def is_lost(self) -> bool:
        return self.state is TrackState.LOST

    @property
    def centre(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (float(x1 + x2) / 2.0, float(y1 + y2) / 2.0)

    def _matched(self, box: np.ndarray, box_tuple: tuple, score: float, timestamp: float) -> None:
        self.box = box
        self.score = score
        if score > self.best_score:
            self.best_score = score
        self.last_seen = timestamp
        self.history.append((timestamp, box_tuple, score))
        self.hits += 1

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.0f}" for v in self.box)
        return f"Track({self.id} {self.class_name} {self.state.name.lower()} [{box}] score {self.score:.2f})"


class Tracker:
    """Assigns stable ids to detections, frame after frame (timestamps in seconds, increasing).

    Not thread-safe: one tracker per camera, fed from one thread.
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._tracks: list[Track] = []
        self._kf = KalmanBank(self.config.kalman_noise())
        # Per-track columns kept row-aligned with self._tracks and the filter bank.
        self._class_ids = np.zeros(0, dtype=np.int64)
        self._states = np.zeros(0, dtype=np.int8)
        self._last_seen = np.zeros(0)
        self._next_id = 1
        self._time: float | None = None

    @property
    def tracks(self) -> list[Track]:
        """Every live track: tentative, tracked and lost."""
        return list(self._tracks)

    def reset(self) -> None:
        """Forget every track (a new scene); ids keep counting up."""
        self._tracks = []
        self._kf = KalmanBank(self.config.kalman_noise())
        self._class_ids = np.zeros(0, dtype=np.int64)
        self._states = np.zeros(0, dtype=np.int8)
        self._last_seen = np.zeros(0)
        self._time = None

    def update(self, detections: Detections, timestamp: float) -> list[Track]:
        """Feed one frame's detections; returns the confirmed tracks matched in this frame."""
        cfg = self.config
        now = float(timestamp)
        if self._time is None or now >= self._time:
            dt = 0.0 if self._time is None else now - self._time
            self._time = now
        else:  # a frame stamped earlier than the last one: match it without moving time back
            log.debug("timestamp %.3f is before the previous %.3f; not predicting", now, self._time)
            dt = 0.0

        # Forget tracks unseen for too long before matching, so none comes back with a stale id
        # (a stream that stalls for longer than lost_seconds expires even tracked ones).
        expired = now - self._last_seen > cfg.lost_seconds
        if expired.any():
            self._keep(~expired)
        self._kf.predict(dt, frozen_size=self._states == TrackState.LOST)

        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(detections.scores, dtype=np.float64).reshape(-1)
        class_ids = np.asarray(detections.class_ids, dtype=np.int64).reshape(-1)
        high = scores >= cfg.high_score
        low = ~high & (scores >= cfg.low_score)

        n = len(self._tracks)
        iou = box_iou(self._kf.boxes(), xyxy)
        iou *= self._class_ids[:, None] == class_ids[None, :]  # other classes never match

        track_free = np.ones(n, dtype=bool)
        det_free = np.ones(len(scores), dtype=bool)
        pairs_t: list[np.ndarray] = []
        pairs_d: list[np.ndarray] = []

        def match(tracks_ok: np.ndarray, dets_ok: np.ndarray, min_iou: float) -> None:
            rows = np.flatnonzero(tracks_ok & track_free)
            cols = np.flatnonzero(dets_ok & det_free)
            if not len(rows) or not len(cols):
                return
            r, c = assign(iou.take(rows, 0).take(cols, 1), min_iou)
            rows, cols = rows[r], cols[c]
            track_free[rows] = False
            det_free[cols] = False
            pairs_t.append(rows)
            pairs_d.append(cols)

        confirmed = self._states != TrackState.TENTATIVE
        match(confirmed, high, cfg.match_iou)
        match(self._states == TrackState.TRACKED, low, cfg.second_match_iou)
        match(~confirmed, high, cfg.tentative_match_iou)

        matched_t = np.concatenate(pairs_t) if pairs_t else np.zeros(0, dtype=np.int64)
        matched_d = np.concatenate(pairs_d) if pairs_d else np.zeros(0, dtype=np.int64)
        self._kf.update(matched_t, xyxy_to_xywh(xyxy[matched_d]))

        reported: list[Track] = []
        boxes32 = xyxy.astype(np.float32)
        matched_boxes = boxes32[matched_d]
        tracks = self._tracks
        min_hits = cfg.min_hits
        for ti, box, box_tuple, score in zip(
            matched_t.tolist(), matched_boxes, map(tuple, matched_boxes.tolist()), scores[matched_d].tolist()
        ):
            track = tracks[ti]
            track._matched(box, box_tuple, score, now)
            if track.hits >= min_hits:
                track.state = TrackState.TRACKED
                reported.append(track)
        if len(matched_t):
            self._states[matched_t] = [tracks[i].state for i in matched_t.tolist()]
            self._last_seen[matched_t] = now

        # Unmatched: a confirmed track is lost, a tentative one was a fluke.
        unmatched_confirmed = track_free & confirmed
        for i in np.flatnonzero(unmatched_confirmed & (self._states == TrackState.TRACKED)).tolist():
            self._tracks[i].state = TrackState.LOST
        self._states[unmatched_confirmed] = TrackState.LOST
        dropped = track_free & ~confirmed
        if dropped.any():
            self._keep(~dropped)

        born = np.flatnonzero(det_free & high & (scores >= cfg.new_track_score))
        if len(born):
            reported.extend(self._start(born, xyxy, boxes32, scores, class_ids, detections, now))

        for track, velocity in zip(self._tracks, self._kf.mean[:, 4:6].copy()):
            track.velocity = velocity
        return reported

    def _start(
        self,
        born: np.ndarray,
        xyxy: np.ndarray,
        boxes32: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        detections: Detections,
        now: float,
    ) -> list[Track]:
        """Tentative tracks (confirmed at once when min_hits is 1) for detections at `born`."""
        cfg = self.config
        new = []
        for di in born.tolist():
            cid = int(class_ids[di])
            track = Track(self._next_id, cid, detections.class_name(cid), boxes32[di], float(scores[di]), now, cfg.history)
            self._next_id += 1
            if cfg.min_hits <= 1:
                track.state = TrackState.TRACKED
            new.append(track)
        self._tracks.extend(new)
        self._kf.add(xyxy_to_xywh(xyxy[born]))
        self._class_ids = np.concatenate([self._class_ids, class_ids[born]])
        self._states = np.concatenate([self._states, np.array([t.state for t in new], dtype=np.int8)])
        self._last_seen = np.concatenate([self._last_seen, np.full(len(born), now)])
        return [t for t in new if t.is_confirmed]

    def _keep(self, mask: np.ndarray) -> None:
        self._tracks = [t for t, k in zip(self._tracks, mask.tolist()) if k]
        self._kf.keep(mask)
        self._class_ids = self._class_ids[mask]
        self._states = self._states[mask]
        self._last_seen = self._last_seen[mask]
