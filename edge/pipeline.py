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
from edge.camera_model import CameraModel
from edge.config import CameraConfig, NodeConfig
from edge.detect import Detections, Detector
from edge.detect.config import LIVE_DETECTOR_FIELDS
from edge.fusion import Fusion, FusionResult
from edge.geo import LocalFrame
from edge.radar.picture import RadarPicture
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
    fusion: FusionResult | None = None  # with camera geometry and a radar picture
    wall: float = 0.0  # the frame's capture time, UTC epoch seconds


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
    def __init__(self, config: NodeConfig, camera_id: str, wall: Wall, detector: Detector | None = None,
                 picture: RadarPicture | None = None):
        self.config = config
        self.camera = config.camera(camera_id)
        self.wall = wall
        self.detector = detector or Detector(self.camera.detector)
        self.tracker = Tracker(self.camera.tracker)
        self.rules = RuleEngine(self.camera)
        self.picture = picture
        self.model = self.fusion = None
        self._geometry(config)
        self.alerts = AlertBuilder(config, camera_id, wall, model=self.model)
        self._pending: NodeConfig | None = None
        self.reloads = 0

    def _geometry(self, config: NodeConfig) -> None:
        """The camera model (with geometry) and its fusion with the radar picture (with radars)."""
        camera = config.camera(self.camera.id)
        if camera.geometry is None:
            self.model = self.fusion = None
            return
        frame = self.picture.frame if self.picture is not None else (
            LocalFrame(config.node.lat, config.node.lon) if config.node.lat is not None else None)
        self.model = CameraModel.from_config(camera.geometry, frame)
        self.fusion = Fusion(camera.id, self.model, self.picture.store, camera.fusion) if self.picture else None

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
        if new.geometry != self.camera.geometry or new.fusion != self.camera.fusion:
            self._geometry(config)
        self.alerts.reconfigure(config, model=self.model)
        self.config, self.camera = config, new
        self.reloads += 1
        log.info("camera %s: config %s applied", new.id, config.version or "(unversioned)")

    def step(self, frame: Frame, detections: Detections) -> FrameResult:
        self._apply_pending()
        t = frame.timestamp
        wall = self.wall(t)
        tracks = self.tracker.update(detections, t)
        fusion = self.fusion.step(tracks, wall.timestamp()) if self.fusion is not None else None
        size = (frame.width, frame.height)
        events = self.rules.evaluate(tracks, t, wall, size)
        records = []
        if events:
            geo = self.rules.geometry(size)
            fused = {o.camera_track.id: o for o in fusion.camera_objects} if fusion else {}
            for e in events:
                primary = e.primary
                records.append(self.alerts.build(e, frame, geo.zones.get(e.zone), geo.lines.get(e.line),
                                                 fused=fused.get(primary.id) if primary is not None else None))
        return FrameResult(frame, detections, tracks, events, records, fusion, wall.timestamp())


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
