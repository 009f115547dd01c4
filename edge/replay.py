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
from edge.fused_picture import FusedPicture, wants_picture
from edge.overlay import Overlay
from edge.pipeline import CameraPipeline, FrameResult, cap_fps
from edge.plan_view import draw_radar_on_frame
from edge.radar.picture import RadarPicture
from edge.recording import VideoRecorder
from edge.sources import Frame, FrameSource, open_source


@dataclass
class ReplaySummary:
    frames: int = 0
    alerts: Counter = field(default_factory=Counter)
    corrupt_frames: int = 0
    radar_reports: int = 0
    elapsed_s: float = 0.0
    media_s: float = 0.0
    incomplete: str | None = None

    def line(self) -> str:
        rules = ", ".join(f"{r} {n}" for r, n in sorted(self.alerts.items())) or "none"
        fps = self.frames / self.elapsed_s if self.elapsed_s else 0.0
        text = (f"{self.frames} frame(s) ({self.media_s:.1f} s of video) in {self.elapsed_s:.1f} s, {fps:.1f} frames/s; "
                f"{sum(self.alerts.values())} alert(s): {rules}")
        if self.radar_reports:
            text += f"; {self.radar_reports} radar/AIS report(s)"
        if self.corrupt_frames:
            text += f"; {self.corrupt_frames} corrupt frame(s) skipped"
        return text


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def write_image(path: Path, img) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise ZastavaError(f"{path}: cannot write the image")


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
    plan_out: Path | None = None,
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
    # Radar and AIS recordings are decoded up front and handed over as the video's clock passes
    # their own times, so `--start-time` must be the wall time of the video's first frame.
    picture = fused = None
    if wants_picture(config):
        picture = RadarPicture(config)
        picture.load_recordings()
        fused = FusedPicture(config, picture)
    pipe = pipeline or CameraPipeline(config, camera_id, recording_clock(start), picture=picture)
    radar_video = None
    if picture is not None and out_video:
        from edge.radar.overlay import RadarVideoView

        radar_video = RadarVideoView(config, picture)
        radar_video = radar_video if radar_video.feeds() else None
    overlay = Overlay(camera) if out_video else None
    rate = min(src.fps or 25.0, camera.fps_cap or 1e9)
    recorder = VideoRecorder(out_video, rate) if out_video else None
    plan_video = plan_out is not None and plan_out.suffix.lower() not in IMAGE_SUFFIXES
    plan_recorder = VideoRecorder(plan_out, rate) if plan_video and fused is not None else None
    last_wall = None
    if snapshots:
        snapshots.mkdir(parents=True, exist_ok=True)
    summary = ReplaySummary()
    started = time.perf_counter()
    frames: Iterator[Frame] = cap_fps(progress(iter(src), src.frame_count), camera.fps_cap)
    try:
        for frame, det in DetectionStream(pipe.detector, frames):
            if picture is not None:
                picture.advance_to(pipe.wall(frame.timestamp).timestamp())
            result = pipe.step(frame, det)
            records = list(result.alerts)
            if fused is not None:
                fused.update(camera_id, result, pipe.model)
                records += fused.evaluate(result.wall)
                last_wall = result.wall
            summary.frames += 1
            summary.media_s = frame.timestamp
            for rec in records:
                summary.alerts[rec.alert.rule] += 1
                if snapshots and rec.snapshot:
                    (snapshots / f"{rec.alert.id}.jpg").write_bytes(rec.snapshot)
                on_alert(rec)
            if overlay is not None:
                overlay.note_alerts(records, frame.timestamp)
                geo = pipe.rules.geometry((frame.width, frame.height))
                img = overlay.draw(frame.image, result.tracks, frame.timestamp, geo.zones, geo.lines,
                                   pipe.wall(frame.timestamp))
                if picture is not None and pipe.model is not None:
                    targets = picture.store.snapshot(result.wall).targets
                    draw_radar_on_frame(img, pipe.model, targets, result.fusion.links if result.fusion else {},
                                        result.tracks)
                if radar_video is not None:  # radar pictures (CAT240, displays) beside the camera
                    img = radar_video.beside(img, result.wall)
                recorder.write(img)
            if plan_recorder is not None:
                plan_recorder.write(fused.render_plan(result.wall))
            on_frame(result)
            if max_frames and summary.frames >= max_frames:
                break
    finally:
        if recorder:
            recorder.close()
        if plan_recorder:
            plan_recorder.close()
        src.close()
    if plan_out is not None and not plan_video and fused is not None and last_wall is not None:
        write_image(plan_out, fused.render_plan(last_wall))
    if picture is not None:
        summary.radar_reports = picture.replayed
    summary.elapsed_s = time.perf_counter() - started
    summary.corrupt_frames = src.stats.corrupt_frames
    summary.incomplete = src.incomplete
    return summary
