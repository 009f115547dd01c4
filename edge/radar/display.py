"""A captured radar display (a radar or chart-overlay screen as a video stream) read as radar video.

The config maps the screen to the radar: the radar picture's region on the screen, the pixel of
the radar (the sweep's centre), the radius of a known range (the range scale) and whether the
screen is north-up or heading-up (then the heading of the screen's top). One frame per antenna
rotation (`scan_s`) is resampled into a polar sweep (azimuth bins x range cells, true bearings)
and goes on exactly like CAT240 video: plot extraction, tracking, reports.

A display is not the radar's video: its brightness is the power through the display's own gain
curve (often in dB), so CA-CFAR's false-alarm rate does not hold on it. Configure a permissive
`cfar.pfa` (0.05) and the brightness a blip has at least (`cfar.min_amplitude`, e.g. 100 of 255);
the clutter map learns the screen's fixed furniture (range rings, the heading marker) with the
coast. A picture also loses the antenna's timing: a plot is dated by its frame, so a moving
target's track lags by up to one rotation of its motion (tests/test_radar_video_display.py).

    >>> s = DisplaySettings(centre_px=(100, 100), radius_px=80, range_m=1600, azimuths=360, range_cells=80)
    >>> img = np.zeros((200, 200, 3), np.uint8); img[58:62, 138:142] = (0, 255, 0)   # NE of the centre
    >>> sweep = DisplayMapper(s).sweep(img, time=0.0)
    >>> a, k = np.unravel_index(np.argmax(sweep.power), sweep.power.shape)
    >>> bool(40 <= a <= 50), round(float(k * sweep.cell_m))
    (True, 1120)
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import cv2
import numpy as np

from edge.radar.config import RadarFeedConfig
from edge.radar.reports import TargetReport
from edge.radar.sweep import Sweep
from edge.radar.video import RadarVideoDecoder
from edge.radar.video_config import DisplaySettings

CHANNEL = {"blue": 0, "green": 1, "red": 2}


class DisplayMapper:
    """Screen pixels <-> the radar's (true azimuth, range) for one display geometry."""

    def __init__(self, settings: DisplaySettings):
        self.s = settings
        n_az, n_rg = settings.azimuths, settings.range_cells
        self.cell_m = settings.range_m / n_rg
        heading = settings.heading_deg if settings.orientation == "heading-up" else 0.0
        bearing = (np.arange(n_az) + 0.5) * 360.0 / n_az  # true bearing of each bin's centre
        screen = np.radians(bearing - heading)[:, None]  # the angle on the screen from its top
        radius = (np.arange(n_rg) * self.cell_m / settings.range_m * settings.radius_px)[None, :]
        cx, cy = settings.centre_px
        self.map_x = (cx + radius * np.sin(screen)).astype(np.float32)
        self.map_y = (cy - radius * np.cos(screen)).astype(np.float32)
        self.index = 0

    def intensity(self, image: np.ndarray) -> np.ndarray:
        """The echo channel of a BGR frame, zero outside the configured region."""
        img = image if image.ndim == 3 else image[:, :, None]
        ch = self.s.channel
        if ch == "max" or img.shape[2] == 1:
            out = img.max(axis=2)
        elif ch == "gray":
            out = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        else:
            out = img[:, :, CHANNEL[ch]]
        if self.s.region is not None:
            x, y, w, h = self.s.region
            masked = np.zeros_like(out)
            masked[y:y + h, x:x + w] = out[y:y + h, x:x + w]
            out = masked
        return out

    def sweep(self, image: np.ndarray, time: float) -> Sweep:
        power = cv2.remap(self.intensity(image).astype(np.float32), self.map_x, self.map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        n_az = self.s.azimuths
        sweep = Sweep(self.index, power, np.full(n_az, float(time)), np.ones(n_az, bool), self.cell_m)
        self.index += 1
        return sweep

    def to_screen(self, range_m, azimuth_deg) -> np.ndarray:
        """(range, true azimuth) -> screen pixels (N, 2)."""
        heading = self.s.heading_deg if self.s.orientation == "heading-up" else 0.0
        a = np.radians(np.asarray(azimuth_deg, dtype=np.float64) - heading)
        r = np.asarray(range_m, dtype=np.float64) / self.s.range_m * self.s.radius_px
        cx, cy = self.s.centre_px
        return np.stack([cx + r * np.sin(a), cy - r * np.cos(a)], -1)


class DisplayDecoder(RadarVideoDecoder):
    """Frames of a captured display in (`feed(image, time)`), radar track reports out."""

    def __init__(self, cfg: RadarFeedConfig, **kw):
        super().__init__(cfg, **kw)
        self.mapper = DisplayMapper(cfg.display)
        self._next_scan: float | None = None

    def feed(self, message, received: float) -> list[TargetReport]:
        self.stats.messages += 1
        image = np.asarray(message)
        if image.ndim not in (2, 3) or image.size == 0:
            self.stats.error("not a picture")
            return self._drain()
        if self._next_scan is not None and received < self._next_scan:
            self.ignored["frame between scans"] += 1
            return self._drain()
        self._next_scan = received + self.cfg.display.scan_s - 1e-6
        if self._next_scan - received > 2 * self.cfg.display.scan_s:  # the clock went back
            self._next_scan = received
        return self.process(self.mapper.sweep(image, received)) + self._drain()


def recording_start(cfg: RadarFeedConfig) -> float:
    """Wall time (epoch s) of a display recording's first frame: configured, else the file's mtime."""
    if cfg.display is not None and cfg.display.start_time is not None:
        t = cfg.display.start_time
        return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()
    try:
        return Path(cfg.source).stat().st_mtime
    except (OSError, TypeError):
        return math.nan
