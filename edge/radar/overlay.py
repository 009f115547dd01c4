"""The radar picture itself, annotated: the PPI of the latest sweep with range rings, north, the
guard (geo) zones, every plot (a cross) and every track (a square, its id, speed and a velocity
vector, and its recent path); tentative tracks are drawn thin. Shown beside the camera overlay
by `replay --out` and served by the live view.

    >>> img = radar_picture(decoder.frame_at(t), zones, title="post-7 cat240")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from edge.annotate import draw_label
from edge.plan_view import _nice_step
from edge.radar.ppi import PpiRenderer

PLOT = (0, 255, 255)
TRACK = (60, 220, 60)
TENTATIVE = (140, 140, 140)
RING = (90, 90, 90)
ZONE = (60, 140, 255)


def _px(east, north, c: float, s: float) -> np.ndarray:
    return np.stack([c + np.asarray(east, dtype=np.float64) / s, c - np.asarray(north, dtype=np.float64) / s], -1)


def radar_picture(frame, zones: Sequence[tuple[str, np.ndarray]] = (), *, size: int = 800, title: str = "",
                  vector_s: float | None = None) -> np.ndarray:
    """BGR picture of a processed sweep (edge.radar.video.VideoFrame); zones: (name, (N, 2) east/north
    polygon around the radar, metres)."""
    if frame is None:
        img = np.zeros((size, size, 3), np.uint8)
        draw_label(img, f"{title} no radar sweep yet".strip(), 6, 24, (40, 40, 40), 0.5)
        return img
    if frame.picture is not None:
        gray = cv2.imdecode(np.frombuffer(frame.picture, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray.shape[0] != size:
            gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    else:
        gray = PpiRenderer(size).render(frame.sweep)
    img = cv2.applyColorMap(gray, cv2.COLORMAP_BONE) if gray.max() else cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    c = size / 2.0
    s = frame.max_range_m / c  # metres per pixel
    step = _nice_step(frame.max_range_m / 4)
    for k in range(1, int(frame.max_range_m / step) + 1):
        r = int(round(k * step / s))
        cv2.circle(img, (int(c), int(c)), r, RING, 1, cv2.LINE_AA)
        cv2.putText(img, f"{k * step:g} m", (int(c) + 4, int(c) - r + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, RING, 1,
                    cv2.LINE_AA)
    cv2.arrowedLine(img, (size - 30, 60), (size - 30, 20), (200, 200, 200), 2, cv2.LINE_AA, tipLength=0.3)
    cv2.putText(img, "N", (size - 36, 78), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 200, 200), 1, cv2.LINE_AA)
    for name, poly in zones:
        pts = _px(poly[:, 0], poly[:, 1], c, s).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, ZONE, 2, cv2.LINE_AA)
        draw_label(img, name, int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min()) + 2, ZONE, 0.45)
    for p in frame.plots:
        x, y = _px(p.east, p.north, c, s).astype(int)
        cv2.drawMarker(img, (int(x), int(y)), PLOT, cv2.MARKER_CROSS, 9, 1, cv2.LINE_AA)
    horizon = vector_s or float(_nice_step(max(1.0, frame.max_range_m / 40 / 5)))
    for t in frame.tracks:
        colour = TRACK if t.confirmed else TENTATIVE
        p = _px(t.east, t.north, c, s)
        x, y = p.astype(int)
        if t.confirmed and len(t.history) > 1:
            path = _px([h[1] for h in t.history], [h[2] for h in t.history], c, s).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [path], False, colour, 1, cv2.LINE_AA)
        half = 6 if t.confirmed else 4
        cv2.rectangle(img, (int(x) - half, int(y) - half), (int(x) + half, int(y) + half), colour,
                      2 if t.confirmed else 1, cv2.LINE_AA)
        if t.confirmed:
            crs = math.radians(t.course_deg)
            q = p + np.array([math.sin(crs), -math.cos(crs)]) * t.speed_mps * horizon / s
            cv2.line(img, (int(x), int(y)), (int(q[0]), int(q[1])), colour, 2, cv2.LINE_AA)
            draw_label(img, f"{t.id} {t.speed_mps * 1.943844:.1f} kn", int(x) + 8, int(y) - 8, colour, 0.45)
    if title:
        draw_label(img, title, 6, 24, (40, 40, 40), 0.5)
    n_conf = sum(t.confirmed for t in frame.tracks)
    draw_label(img, f"{len(frame.plots)} plots, {n_conf} tracks; vectors {horizon:g} s", 6, size - 6, (40, 40, 40), 0.45)
    return img


def zones_around(config, radar_position: tuple[float, float], frame_local) -> list[tuple[str, np.ndarray]]:
    """The node's geo zones as east/north polygons around a radar at `radar_position`."""
    re, rn = frame_local.to_local(*radar_position)
    out = []
    for z in config.geo_zones:
        lat, lon = np.array(z.points, dtype=np.float64).T
        e, n = frame_local.to_local(lat, lon)
        out.append((z.name or z.id, np.column_stack([np.asarray(e) - re, np.asarray(n) - rn])))
    return out


def beside(camera: np.ndarray, radar: np.ndarray) -> np.ndarray:
    """The camera overlay with the radar picture on its right, scaled to the camera's height."""
    h = camera.shape[0]
    side = cv2.resize(radar, (h, h), interpolation=cv2.INTER_AREA) if radar.shape[0] != h else radar
    return np.hstack([camera, side])


class RadarVideoView:
    """The annotated radar picture of each radar video feed of a node, at a time."""

    def __init__(self, config, picture, size: int | None = None):
        self.config, self.picture = config, picture
        self.size = size
        self.decoders = {fid: d for fid, d in picture.decoders.items() if hasattr(d, "frame_at")}

    def feeds(self) -> list[str]:
        return sorted(self.decoders)

    def render(self, feed_id: str, t: float) -> np.ndarray | None:
        dec = self.decoders.get(feed_id)
        if dec is None:
            return None
        import datetime as dt

        cfg = dec.cfg
        zones = zones_around(self.config, cfg.position, self.picture.frame)
        frame = dec.frame_at(t)
        stamp = dt.datetime.fromtimestamp(frame.time if frame else t, dt.timezone.utc).strftime("%H:%M:%S")
        return radar_picture(frame, zones, size=self.size or cfg.video.picture_px,
                             title=f"{cfg.id} ({cfg.format}, {dec.extractor.name}) {stamp} UTC")

    def beside(self, camera: np.ndarray, t: float) -> np.ndarray:
        """The camera overlay with every radar video picture at time t to its right."""
        out = camera
        for fid in self.feeds():
            out = beside(out, self.render(fid, t))
        return out
