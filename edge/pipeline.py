"""One camera's pipeline after detection: tracker -> rules -> alerts, one frame at a time.

    >>> pipe = CameraPipeline(config, "cam1", wall=lambda t: start + timedelta(seconds=t))  # doctest: +SKIP
    >>> for frame, det in DetectionStream(pipe.detector, frames):                            # doctest: +SKIP
    ...     result = pipe.step(frame, det)

A new config is handed over with `request_config` from any thread and applied between two
frames, so a reload never drops or half-processes a frame.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from edge.alerts import AlertBuilder, AlertRecord
from edge.config import CameraConfig, NodeConfig
from edge.detect import Detections, Detector
from edge.detect.config import LIVE_DETECTOR_FIELDS
from edge.rules import RuleEngine, RuleEvent
from edge.sources import Frame
from edge.track import Track, Tracker

log = logging.getLogger(__name__)

Wall = Callable[[float], dt.datetime]


@dataclass(frozen=True, slots=True)
class FrameResult:
    frame: Frame
    detections: Detections
    tracks: list[Track]
    events: list[RuleEvent]
    alerts: list[AlertRecord]


def needs_restart(old: CameraConfig, new: CameraConfig) -> list[str]:
    """The fields whose change a running camera cannot absorb between two frames."""
    reasons = []
    if old.source != new.source:
        reasons.append("source")
    if old.fps_cap != new.fps_cap:
        reasons.append("fps_cap")
    d_old, d_new = old.detector.model_dump(), new.detector.model_dump()
    reasons += [f"detector.{k}" for k in d_old if k not in LIVE_DETECTOR_FIELDS and d_old[k] != d_new[k]]
    return reasons


class CameraPipeline:
    def __init__(self, config: NodeConfig, camera_id: str, wall: Wall, detector: Detector | None = None):
        self.config = config
        self.camera = config.camera(camera_id)
        self.wall = wall
        self.detector = detector or Detector(self.camera.detector)
        self.tracker = Tracker(self.camera.tracker)
        self.rules = RuleEngine(self.camera)
        self.alerts = AlertBuilder(config, camera_id, wall)
        self._pending: NodeConfig | None = None
        self.reloads = 0

    def request_config(self, config: NodeConfig) -> None:
        """Queue a validated config; it takes effect before the next frame."""
        self._pending = config

    def _apply_pending(self) -> None:
        config, self._pending = self._pending, None
        if config is None:
            return
        new = config.camera(self.camera.id)
        if new.tracker != self.camera.tracker:
            self.tracker = Tracker(new.tracker)
        if new.detector != self.camera.detector:
            self.detector.apply_live_settings(new.detector)
        self.rules.reconfigure(new)
        self.alerts.reconfigure(config)
        self.config, self.camera = config, new
        self.reloads += 1
        log.info("camera %s: config %s applied", new.id, config.version or "(unversioned)")

    def step(self, frame: Frame, detections: Detections) -> FrameResult:
        self._apply_pending()
        t = frame.timestamp
        tracks = self.tracker.update(detections, t)
        size = (frame.width, frame.height)
        events = self.rules.evaluate(tracks, t, self.wall(t), size)
        records = []
        if events:
            geo = self.rules.geometry(size)
            for e in events:
                records.append(self.alerts.build(e, frame, geo.zones.get(e.zone), geo.lines.get(e.line)))
        return FrameResult(frame, detections, tracks, events, records)


def cap_fps(frames: Iterable[Frame], fps_cap: float | None) -> Iterator[Frame]:
    """Keep frames no closer than 1/fps_cap apart in capture time, on an even schedule."""
    if not fps_cap:
        yield from frames
        return
    interval, due = 1.0 / fps_cap, None
    for f in frames:
        if due is None or f.timestamp >= due - 1e-3:
            yield f
            due = (f.timestamp if due is None else due) + interval
            if due < f.timestamp:  # fell behind (a gap in the source): restart the schedule here
                due = f.timestamp + interval
