"""Running a camera's whole pipeline offline on a recording, as fast as the machine allows.

What an operator runs before a config goes live: which alerts would it have raised, and what
did the node see (the annotated video, the evidence snapshots).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.alerts import AlertRecord
from edge.config import NodeConfig
from edge.detect.stream import DetectionStream
from edge.errors import ZastavaError
from edge.overlay import Overlay
from edge.pipeline import CameraPipeline, FrameResult, cap_fps
from edge.recording import VideoRecorder
from edge.sources import Frame, FrameSource, open_source


@dataclass
class ReplaySummary:
    frames: int = 0
    alerts: Counter = field(default_factory=Counter)
    corrupt_frames: int = 0
    elapsed_s: float = 0.0
    media_s: float = 0.0
    incomplete: str | None = None

    def line(self) -> str:
        rules = ", ".join(f"{r} {n}" for r, n in sorted(self.alerts.items())) or "none"
        fps = self.frames / self.elapsed_s if self.elapsed_s else 0.0
        text = (f"{self.frames} frame(s) ({self.media_s:.1f} s of video) in {self.elapsed_s:.1f} s, {fps:.1f} frames/s; "
                f"{sum(self.alerts.values())} alert(s): {rules}")
        if self.corrupt_frames:
            text += f"; {self.corrupt_frames} corrupt frame(s) skipped"
        return text


def recording_clock(start: dt.datetime) -> Callable[[float], dt.datetime]:
    """A recording's timestamps are seconds from its start; alerts need wall time."""
    return lambda t: start + dt.timedelta(seconds=t)


def replay(
    config: NodeConfig,
    camera_id: str,
    source: str | FrameSource,
    *,
    start: dt.datetime | None = None,
    fps: float | None = None,
    out_video: Path | None = None,
    snapshots: Path | None = None,
    on_alert: Callable[[AlertRecord], None] = lambda rec: None,
    on_frame: Callable[[FrameResult], None] = lambda res: None,
    progress: Callable[[Iterator[Frame], int | None], Iterator[Frame]] = lambda it, total: it,
    max_frames: int | None = None,
    pipeline: CameraPipeline | None = None,
) -> ReplaySummary:
    camera = config.camera(camera_id)
    tz = ZoneInfo(config.node.timezone)
    start = (start or dt.datetime.now(dt.timezone.utc)).astimezone(tz)
    src = source if isinstance(source, FrameSource) else open_source(source, fps=fps)
    if src.is_live:
        src.close()
        raise ZastavaError(f"{src.name}: replay needs a recording (file or folder); use `run` for live sources")
    pipe = pipeline or CameraPipeline(config, camera_id, recording_clock(start))
    overlay = Overlay(camera) if out_video else None
    recorder = VideoRecorder(out_video, min(src.fps or 25.0, camera.fps_cap or 1e9)) if out_video else None
    if snapshots:
        snapshots.mkdir(parents=True, exist_ok=True)
    summary = ReplaySummary()
    started = time.perf_counter()
    frames: Iterator[Frame] = cap_fps(progress(iter(src), src.frame_count), camera.fps_cap)
    try:
        for frame, det in DetectionStream(pipe.detector, frames):
            result = pipe.step(frame, det)
            summary.frames += 1
            summary.media_s = frame.timestamp
            for rec in result.alerts:
                summary.alerts[rec.alert.rule] += 1
                if snapshots and rec.snapshot:
                    (snapshots / f"{rec.alert.id}.jpg").write_bytes(rec.snapshot)
                on_alert(rec)
            if overlay is not None:
                overlay.note_alerts(result.alerts, frame.timestamp)
                geo = pipe.rules.geometry((frame.width, frame.height))
                recorder.write(overlay.draw(frame.image, result.tracks, frame.timestamp, geo.zones, geo.lines,
                                            pipe.wall(frame.timestamp)))
            on_frame(result)
            if max_frames and summary.frames >= max_frames:
                break
    finally:
        if recorder:
            recorder.close()
        src.close()
    summary.elapsed_s = time.perf_counter() - started
    summary.corrupt_frames = src.stats.corrupt_frames
    summary.incomplete = src.incomplete
    return summary
