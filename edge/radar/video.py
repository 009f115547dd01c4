"""Radar pictures into radar tracks: CAT240 datagrams (or captured display frames) in, the same
TargetReports as NMEA/ASTERIX target tracks out, so the track store, fusion, geo rules and alerts
take them unchanged.

    datagrams -> CAT240 radials -> sweeps -> plot extractor -> plots -> tracker -> reports
    frames    -> display mapping -> sweeps ┘     (CFAR + clutter map + clustering, or ONNX on the PPI)

Two extractors stand behind one interface (`extract(sweep) -> plots`), chosen by the feed's
`video.detector`. Bad input never raises: broken blocks are counted by reason in `stats`.
Sweeps are processed as they complete, inline (replay, evaluation: deterministic), or on a
worker thread of their own (`start_worker`, the live node), so the socket keeps being read while
a large sweep is processed.

    >>> dec = RadarVideoDecoder(RadarFeedConfig(id="v", format="cat240", transport="udp", port=4000,
    ...                                         position=(58.2, 11.5)))   # doctest: +SKIP
    >>> reports = dec.feed(datagram, received=time.time())                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge.geo import LocalFrame
from edge.radar.asterix import _utc_of_tod
from edge.radar.cat240 import Cat240Error, VideoRadial, VideoSummary, decode_block
from edge.radar.cfar import CFAR
from edge.radar.clutter import ClutterMap
from edge.radar.config import RadarFeedConfig
from edge.radar.plots import Plot, extract_plots
from edge.radar.ppi import PpiRenderer
from edge.radar.reports import DecoderStats, TargetReport
from edge.radar.sweep import Sweep, SweepAssembler
from edge.radar.tracker import RadarTracker
from edge.radar.video_config import RadarVideoSettings

log = logging.getLogger(__name__)


class PlotExtractor(Protocol):
    name: str

    def extract(self, sweep: Sweep) -> list[Plot]: ...

    def tracked(self, sweep: Sweep, tracks: list) -> None:
        """The tracker's tracks after this sweep (the CFAR path's clutter map holds their cells)."""


class CfarExtractor:
    """CFAR on the polar video, the static clutter map, then clustering into plots."""

    name = "cfar"

    def __init__(self, settings: RadarVideoSettings):
        c = settings.cfar
        self.cfar = CFAR(guard=c.guard, ref=c.ref, pfa=c.pfa, method=c.method, os_rank=c.os_rank,
                         min_amplitude=c.min_amplitude)
        m = settings.clutter_map
        self.clutter = ClutterMap(weight=m.weight, ratio=m.ratio, learn_scans=m.learn_scans) if m.enabled else None
        self.plot_settings = settings.plots
        self.detections: np.ndarray | None = None  # the latest sweep's CFAR mask, before the clutter map
        self.hold: list[tuple[int, int, int, int]] = []  # confirmed tracks' cells: the clutter map keeps off them

    def extract(self, sweep: Sweep) -> list[Plot]:
        mask = self.cfar.detect(sweep.power)
        if not sweep.filled.all():
            mask[~sweep.filled] = False  # bins no radial filled are no measurement
        self.detections = mask
        if self.clutter is not None:
            mask = self.clutter.apply(sweep.power, mask, hold=self.hold)
        return extract_plots(sweep, mask, min_cells=self.plot_settings.min_cells, max_cells=self.plot_settings.max_cells)

    def tracked(self, sweep: Sweep, tracks: list) -> None:
        """Hold the cells around every confirmed track for the next sweep's clutter map learning: a
        vessel that stops is a target, not clutter (the track-aided map; see edge.radar.clutter)."""
        self.hold = track_regions(sweep, [t for t in tracks if t.confirmed])


class OnnxExtractor:
    """A picture model (the detector issue's ONNX detector) on the sweep rendered as a PPI."""

    name = "onnx"

    def __init__(self, settings: RadarVideoSettings, detector=None):
        from edge.detect import Detector

        s = settings.onnx
        self.detector = detector or Detector(s.model)
        self.renderer = PpiRenderer(s.size_px, s.range_m)
        self.classes = set(s.classes)

    def tracked(self, sweep: Sweep, tracks: list) -> None:
        pass  # a picture model keeps no map of the scene

    def extract(self, sweep: Sweep) -> list[Plot]:
        img = cv2.cvtColor(self.renderer.render(sweep), cv2.COLOR_GRAY2BGR)
        det = self.detector.detect(img)
        if not len(det):
            return []
        names = det.class_names()
        xyxy = det.xyxy.astype(np.float64)
        u, v = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        rng, az = self.renderer.to_polar(sweep, u, v)
        m_px = self.renderer.metres_per_px(sweep)
        times = sweep.time_at(az / 360.0 * sweep.azimuths)
        plots = []
        for i in range(len(det)):
            if self.classes and names[i] not in self.classes:
                continue
            w, h = (xyxy[i, 2] - xyxy[i, 0]) * m_px, (xyxy[i, 3] - xyxy[i, 1]) * m_px
            plots.append(Plot(time=float(times[i]), range_m=float(rng[i]), azimuth_deg=float(az[i]),
                              range_extent_m=float(max(w, h)),
                              azimuth_extent_deg=float(math.degrees(min(w, h) / max(rng[i], 1.0))),
                              amplitude=float(det.scores[i]), power=float(det.scores[i]), cells=1,
                              score=float(det.scores[i])))
        return plots


def track_regions(sweep: Sweep, tracks: list, margin_cells: int = 2) -> list[tuple[int, int, int, int]]:
    """(a0, a1, k0, k1) azimuth rows and range cells (inclusive; rows may run past either end, wrapping)
    around each track: its latest plot's extent, two position sigmas and `margin_cells` more."""
    out = []
    n_az = sweep.azimuths
    bin_deg = 360.0 / n_az
    for t in tracks:
        east, north = float(t.x[0]), float(t.x[1])
        rng = math.hypot(east, north)
        az = (math.degrees(math.atan2(east, north)) - sweep.heading_deg) % 360.0
        p = t.last_plot
        sigma = 2.0 * t.position_sigma_m
        half_r = (p.range_extent_m / 2 if p else 0.0) + sigma + margin_cells * sweep.cell_m
        half_a = (p.azimuth_extent_deg / 2 if p else 0.0) + math.degrees(sigma / max(rng, 1.0)) + margin_cells * bin_deg
        half_a = min(half_a, 90.0)
        k = rng / sweep.cell_m - sweep.first_cell
        a = az / bin_deg - 0.5
        out.append((int(math.floor(a - half_a / bin_deg)), int(math.ceil(a + half_a / bin_deg)),
                    int(math.floor(k - half_r / sweep.cell_m)), int(math.ceil(k + half_r / sweep.cell_m))))
    return out


def make_extractor(settings: RadarVideoSettings) -> PlotExtractor:
    return OnnxExtractor(settings) if settings.detector == "onnx" else CfarExtractor(settings)


@dataclass(frozen=True)
class TrackView:
    """What the overlay draws of a track."""

    id: int
    east: float
    north: float
    speed_mps: float
    course_deg: float
    confirmed: bool
    history: tuple


@dataclass(frozen=True)
class VideoFrame:
    """One processed sweep, for the radar overlay: its picture, plots and tracks."""

    time: float
    sweep: Sweep | None  # the latest keeps its sweep; the replay timeline keeps only the picture
    picture: bytes | None  # JPEG of the grayscale PPI (timeline entries)
    plots: tuple[Plot, ...]
    tracks: tuple[TrackView, ...]
    max_range_m: float


class RadarVideoDecoder:
    """CAT240 datagrams (or data blocks) in, radar track reports out."""

    def __init__(self, cfg: RadarFeedConfig, *, extractor: PlotExtractor | None = None):
        self.cfg = cfg
        self.source = cfg.id
        self.settings = s = cfg.video
        self.stats = DecoderStats()
        self.ignored: Counter[str] = Counter()
        self.assembler = SweepAssembler(s.azimuths, s.max_range_cells)
        self.extractor = extractor or make_extractor(s)
        self.tracker = RadarTracker(s.tracker, range_sigma_m=cfg.range_sigma_m, azimuth_sigma_deg=cfg.bearing_sigma_deg)
        self.frame = LocalFrame(*cfg.position)  # the radar's own east-north frame
        self.sweeps = self.plots = 0
        self.summaries: list[str] = []
        self.latest: VideoFrame | None = None
        self.timeline: deque[VideoFrame] | None = None  # replay: a picture per sweep, for the overlay
        self.on_sweep = None  # (sweep, plots) -> None: evaluation hooks
        self._queue: queue.Queue | None = None
        self._out: list[TargetReport] = []
        self._out_lock = threading.Lock()
        self._worker: threading.Thread | None = None

    # -- input ---------------------------------------------------------------------------------

    def feed(self, message: bytes, received: float) -> list[TargetReport]:
        """One datagram (one or more CAT240 blocks); reports of the sweeps it completed."""
        self.stats.messages += 1
        reports: list[TargetReport] = []
        data = bytes(message)
        pos = 0
        while pos < len(data):
            if len(data) - pos < 3:
                self.stats.error("truncated block header")
                break
            length = int.from_bytes(data[pos + 1:pos + 3], "big")
            if length < 3 or pos + length > len(data):
                self.stats.error("block length past the datagram" if length >= 3 else "block length below 3")
                break
            if data[pos] != 240:
                self.stats.error(f"category {data[pos]} on a CAT240 feed")
                pos += length
                continue
            try:
                messages = decode_block(data[pos:pos + length])
            except Cat240Error as e:
                self.stats.error(str(e))
                break  # nothing after a broken block can be trusted
            except Exception as e:  # noqa: BLE001 - a bug here must not stop the feed; counted
                self.stats.error(f"internal: {type(e).__name__}")
                break
            pos += length
            for m in messages:
                if isinstance(m, VideoSummary):
                    self.ignored["CAT240 video summary"] += 1
                    self.summaries = (self.summaries + [m.text])[-16:]
                    continue
                reports += self._radial(m, received)
        return reports + self._drain()

    def _radial(self, radial: VideoRadial, received: float) -> list[TargetReport]:
        t = _utc_of_tod(radial.time_of_day, received) if radial.time_of_day is not None else received
        sweep = self.assembler.add(radial, t)
        return self.process(sweep) if sweep is not None else []

    def flush(self) -> list[TargetReport]:
        """The sweep in progress, processed (the end of a recording)."""
        sweep = self.assembler.flush()
        return (self.process(sweep) if sweep is not None else []) + self._drain()

    # -- processing ------------------------------------------------------------------------------

    def process(self, sweep: Sweep) -> list[TargetReport]:
        """Plots and tracks of one sweep; inline, or handed to the worker (reports come later)."""
        if self._queue is not None:
            try:
                self._queue.put_nowait(sweep)
            except queue.Full:
                self.stats.error("sweep dropped: processing fell behind")
            return []
        return self._process(sweep)

    def _process(self, sweep: Sweep) -> list[TargetReport]:
        try:
            plots = self.extractor.extract(sweep)
        except Exception as e:  # noqa: BLE001 - a bad sweep is counted, the feed goes on
            log.exception("radar feed %s: plot extraction failed", self.source)
            self.stats.error(f"plot extraction: {type(e).__name__}")
            return []
        self.sweeps += 1
        self.plots += len(plots)
        updated = self.tracker.update(plots, sweep.time)
        self.extractor.tracked(sweep, self.tracker.tracks)
        if self.on_sweep is not None:
            self.on_sweep(sweep, plots)
        reports = self._reports(updated)
        self.stats.reports += len(reports)
        self._remember(sweep, plots)
        return reports

    def _reports(self, tracks) -> list[TargetReport]:
        if not tracks:
            return []
        east = np.array([t.x[0] for t in tracks])
        north = np.array([t.x[1] for t in tracks])
        lat, lon = self.frame.to_geo(east, north)
        out = []
        for i, t in enumerate(tracks):
            p = t.last_plot
            out.append(TargetReport(
                source=self.source, kind="radar", target=str(t.id), time=float(t.time), lat=float(lat[i]),
                lon=float(lon[i]), range_m=float(math.hypot(east[i], north[i])),
                bearing_deg=float(math.degrees(math.atan2(east[i], north[i])) % 360.0), speed_mps=t.speed_mps,
                course_deg=t.course_deg, status="tracking", origin=(self.frame.lat, self.frame.lon),
                extra={"detector": self.extractor.name, "sigma_m": round(t.position_sigma_m, 2), "hits": t.hits,
                       "plot_range_m": round(p.range_m, 1) if p else None,
                       "plot_azimuth_deg": round(p.azimuth_deg, 3) if p else None,
                       "plot_amplitude": p.amplitude if p else None}))
        return out

    def _remember(self, sweep: Sweep, plots: list[Plot]) -> None:
        tracks = tuple(TrackView(t.id, float(t.x[0]), float(t.x[1]), t.speed_mps, t.course_deg, t.confirmed,
                                 tuple(t.history[-30:])) for t in self.tracker.tracks)
        self.latest = VideoFrame(sweep.time, sweep, None, tuple(plots), tracks, sweep.max_range_m)
        if self.timeline is not None:
            img = PpiRenderer(self.settings.picture_px).render(sweep)
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
            self.timeline.append(VideoFrame(sweep.time, None, jpg.tobytes() if ok else None, tuple(plots), tracks,
                                            sweep.max_range_m))

    def keep_timeline(self) -> None:
        """Replay: keep each sweep's picture, plots and tracks, to draw the overlay at any time."""
        self.timeline = deque(maxlen=self.settings.keep_pictures)

    def frame_at(self, t: float) -> VideoFrame | None:
        """The latest processed sweep at time t (replay timeline, else the live latest)."""
        if self.timeline is None:
            return self.latest
        best = None
        for f in self.timeline:
            if f.time <= t:
                best = f
            else:
                break
        return best

    # -- the live node's worker ---------------------------------------------------------------------

    def start_worker(self, stop: threading.Event) -> None:
        """Process sweeps on a thread of their own; `feed` then returns the reports done since."""
        self._queue = queue.Queue(maxsize=2)

        def run() -> None:
            while not stop.is_set():
                try:
                    sweep = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                reports = self._process(sweep)
                with self._out_lock:
                    self._out += reports

        self._worker = threading.Thread(target=run, name=f"radar-video:{self.source}", daemon=True)
        self._worker.start()

    def _drain(self) -> list[TargetReport]:
        if self._queue is None:
            return []
        with self._out_lock:
            out, self._out = self._out, []
        return out

    def take_reports(self) -> list[TargetReport]:
        """Reports the worker finished and no `feed` call has returned yet."""
        return self._drain()
