"""The plan view of a post: what radar, AIS and cameras see, drawn from above, north up.

Range rings around the post, geo zones, each camera's field-of-view wedge, radar targets (a
square, track number, speed, a heading vector), AIS vessels (a triangle, name), and which
radar targets a camera has confirmed (a ring and the camera's class). No map tiles needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from edge.annotate import draw_label

BG = (24, 24, 24)
RING = (70, 70, 70)
RADAR = (0, 200, 255)
AIS = (255, 200, 0)
CONFIRMED = (60, 220, 60)
CAMERA = (200, 200, 200)
HIGHLIGHT = (40, 40, 255)


class PlanView:
    def __init__(self, size: int = 800, range_m: float = 500.0):
        self.size = size
        self.range_m = range_m

    @property
    def vector_s(self) -> float:
        """How far ahead the heading vectors reach: a few seconds on a 30 m view, minutes on a 10 km one."""
        return float(_nice_step(max(1.0, self.range_m / 40)))

    def px(self, east, north) -> np.ndarray:
        """Local metres -> picture pixels (the post at the centre, north up)."""
        half = self.size / 2
        s = half / self.range_m
        e, n = np.asarray(east, dtype=np.float64), np.asarray(north, dtype=np.float64)
        return np.stack([half + e * s, half - n * s], -1)

    def render(self, *, zones: Sequence[tuple] = (), cameras: Sequence[tuple] = (), objects: Sequence = (),
               radar_only: Sequence = (), ais: Sequence = (), highlight=None, title: str = "") -> np.ndarray:
        """zones: (name, kind, (N,2) local polygon, colour|None); cameras: (id, (east, north), (M,2) wedge);
        objects: FusedObjects; radar_only/ais: store Targets not in `objects`; highlight: a key to circle."""
        img = np.full((self.size, self.size, 3), BG, np.uint8)
        c = self.size // 2
        step = _nice_step(self.range_m / 4)
        for k in range(1, int(self.range_m / step) + 1):
            r = int(round(k * step * c / self.range_m))
            cv2.circle(img, (c, c), r, RING, 1, cv2.LINE_AA)
            cv2.putText(img, f"{k * step:g} m", (c + 4, c - r + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, RING, 1, cv2.LINE_AA)
        cv2.arrowedLine(img, (self.size - 30, 60), (self.size - 30, 20), CAMERA, 2, cv2.LINE_AA, tipLength=0.3)
        cv2.putText(img, "N", (self.size - 36, 78), cv2.FONT_HERSHEY_SIMPLEX, 0.5, CAMERA, 1, cv2.LINE_AA)
        for name, kind, poly, colour in zones:
            col = colour or ((255, 140, 60) if kind == "maritime" else (60, 140, 255))
            pts = self.px(poly[:, 0], poly[:, 1]).astype(np.int32).reshape(-1, 1, 2)
            overlay = img.copy()
            cv2.fillPoly(overlay, [pts], col)
            cv2.addWeighted(overlay, 0.15, img, 0.85, 0, dst=img)
            cv2.polylines(img, [pts], True, col, 2, cv2.LINE_AA)
            draw_label(img, name, int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min()) + 2, col, 0.45)
        for cam_id, pos, wedge in cameras:
            if wedge is not None and len(wedge):
                pts = self.px(wedge[:, 0], wedge[:, 1]).astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(img, [pts], True, CAMERA, 1, cv2.LINE_AA)
            p = self.px(*pos).astype(int)
            cv2.circle(img, tuple(p), 5, CAMERA, -1, cv2.LINE_AA)
            draw_label(img, cam_id, int(p[0]) + 6, int(p[1]) - 4, CAMERA, 0.4)
        for obj in objects:
            self._object(img, obj, highlight)
        for tgt in radar_only:
            self._radar(img, tgt, RADAR, None, highlight)
        for tgt in ais:
            self._ais(img, tgt)
        cv2.circle(img, (c, c), 4, (255, 255, 255), -1, cv2.LINE_AA)
        if title:
            draw_label(img, title, 6, 24, (40, 40, 40), 0.5)
        draw_label(img, f"vectors: {self.vector_s:g} s of travel", 6, self.size - 6, (40, 40, 40), 0.4)
        return img

    def _vector(self, img, p, speed, course, colour) -> None:
        if speed is None or course is None or speed <= 0:
            return
        c = math.radians(course)
        end = self.px(0, 0)  # scale only
        h = self.vector_s
        q = p + (self.px(speed * h * math.sin(c), speed * h * math.cos(c)) - end)
        cv2.line(img, tuple(p.astype(int)), tuple(q.astype(int)), colour, 1, cv2.LINE_AA)

    def _radar(self, img, tgt, colour, label, highlight) -> None:
        if not tgt.has_position:
            return
        p = self.px(tgt.east, tgt.north)
        x, y = p.astype(int)
        cv2.rectangle(img, (x - 4, y - 4), (x + 4, y + 4), colour, 2, cv2.LINE_AA)
        self._vector(img, p, tgt.speed_mps, tgt.course_deg, colour)
        speed = f" {tgt.speed_mps * 1.943844:.1f} kn" if tgt.speed_mps is not None else ""
        draw_label(img, f"{label or tgt.target}{speed}", x + 6, y - 6, colour, 0.4)
        if highlight is not None and highlight == ("radar",) + tgt.key:
            cv2.circle(img, (x, y), 14, HIGHLIGHT, 2, cv2.LINE_AA)

    def _ais(self, img, tgt) -> None:
        if not tgt.has_position:
            return
        p = self.px(tgt.east, tgt.north)
        x, y = p.astype(int)
        cv2.polylines(img, [np.array([[x, y - 7], [x - 6, y + 5], [x + 6, y + 5]], np.int32)], True, AIS, 2, cv2.LINE_AA)
        self._vector(img, p, tgt.speed_mps, tgt.course_deg, AIS)
        draw_label(img, tgt.name or tgt.target, x + 7, y + 12, AIS, 0.4)

    def _object(self, img, obj, highlight) -> None:
        from edge.geo_rules import object_key

        p = self.px(obj.east, obj.north)
        x, y = p.astype(int)
        if obj.radar is not None:
            colour = CONFIRMED if obj.camera_track is not None else RADAR
            label = f"{obj.radar.target} {obj.class_name}" if obj.camera_track is not None else obj.radar.target
            self._radar(img, obj.radar, colour, label, None)
            if obj.ais is not None:
                self._ais(img, obj.ais)
        else:  # a camera track placed on the ground
            cv2.circle(img, (x, y), 4, CAMERA, 1, cv2.LINE_AA)
            draw_label(img, f"#{obj.camera_track.id} {obj.class_name}", x + 5, y + 12, CAMERA, 0.35)
        if highlight is not None and highlight == object_key(obj):
            cv2.circle(img, (x, y), 16, HIGHLIGHT, 2, cv2.LINE_AA)


def _nice_step(x: float) -> float:
    """1, 2 or 5 times a power of ten, near x."""
    p = 10 ** math.floor(math.log10(max(x, 1e-9)))
    for m in (1, 2, 5, 10):
        if m * p >= x:
            return m * p
    return 10 * p


def draw_radar_on_frame(img: np.ndarray, model, targets: Sequence, links: dict, tracks: Sequence) -> np.ndarray:
    """The radar and AIS picture projected into a camera's frame: a marker per target on the ground
    (id, range, speed, heading) and a line from each linked camera track to its radar target."""
    out = img
    if not targets:
        return out
    pts = np.array([[t.east, t.north, 0.0] for t in targets], dtype=np.float64)
    pix, visible = model.world_to_pixel(pts)
    cx, cy = model.camera_en
    boxes = {tr.id: tr.box for tr in tracks}
    where = {}
    for tgt, (u, v), ok in zip(targets, pix, visible):
        if not ok:
            continue
        colour = AIS if tgt.kind == "ais" else RADAR
        x, y = int(round(u)), int(round(v))
        where[tgt.key] = (x, y)
        cv2.drawMarker(out, (x, y), colour, cv2.MARKER_DIAMOND if tgt.kind == "ais" else cv2.MARKER_SQUARE, 14, 2,
                       cv2.LINE_AA)
        rng = math.hypot(tgt.east - cx, tgt.north - cy)
        speed = f" {tgt.speed_mps:.1f} m/s" if tgt.speed_mps is not None else ""
        head = f" hdg {tgt.course_deg:.0f}" if tgt.course_deg is not None else ""  # OpenCV fonts have no degree sign
        draw_label(out, f"{tgt.name or tgt.target} {rng:.0f} m{speed}{head}", x + 8, y + 18, colour, 0.4)
    for tid, key in links.items():
        if tid in boxes and key in where:
            x1, y1, x2, y2 = boxes[tid]
            cv2.line(out, (int((x1 + x2) / 2), int(y2)), where[key], CONFIRMED, 2, cv2.LINE_AA)
    return out
