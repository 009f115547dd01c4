"""The annotated picture of a camera: zones, lines, tracks with ids and trails, alerts.

Used by `replay --out` (and later the live overlay stream). Drawing only; nothing here decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import cv2
import numpy as np

from edge.alerts import SEVERITY_COLOURS
from edge.annotate import PALETTE, draw_label
from edge.geometry import anchor_points

ALERT_HOLD_S = 2.0  # an alerted object stays highlighted this long after its alert
ZONE_FILL_ALPHA = 0.18


def _hex_to_bgr(colour: str | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if not colour:
        return default
    r, g, b = int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    return (b, g, r)


def track_colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[(track_id * 7) % len(PALETTE)]


class Overlay:
    """Draws one camera's scene; `recent_alerts` remembers what to highlight."""

    def __init__(self, camera):
        self.camera = camera
        self._alerted: dict[int, tuple[float, str, str]] = {}  # track id -> (time, rule, severity)

    def note_alerts(self, records: Sequence, t: float) -> None:
        for rec in records:
            for tid in rec.alert.track_ids:
                self._alerted[tid] = (t, rec.alert.rule, rec.alert.severity)

    def draw(self, img: np.ndarray, tracks: Sequence, t: float, zones_px: dict, lines_px: dict,
             wall: dt.datetime | None = None) -> np.ndarray:
        out = img.copy()
        scale = max(0.45, min(out.shape[:2]) / 1000)
        thick = max(1, round(min(out.shape[:2]) / 400))
        fill = out.copy()
        for z in self.camera.zones:
            pts = zones_px[z.id].astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(fill, [pts], _hex_to_bgr(z.color, (255, 180, 0)))
        cv2.addWeighted(fill, ZONE_FILL_ALPHA, out, 1 - ZONE_FILL_ALPHA, 0, dst=out)
        for z in self.camera.zones:
            c = _hex_to_bgr(z.color, (255, 180, 0))
            pts = zones_px[z.id].astype(np.int32)
            cv2.polylines(out, [pts.reshape(-1, 1, 2)], True, c, thick + 1, cv2.LINE_AA)
            draw_label(out, z.name or z.id, int(pts[:, 0].min()), int(pts[:, 1].min()) + 2, c, scale)
        for ln in self.camera.lines:
            self._draw_line(out, ln, lines_px[ln.id], thick, scale)
        for tr in tracks:
            self._draw_track(out, tr, t, thick, scale)
        stamp = f"t={t:.2f}s" + (f"  {wall.strftime('%Y-%m-%d %H:%M:%S %Z')}" if wall else "") + f"  tracks={len(tracks)}"
        draw_label(out, stamp, 4, int(24 * scale / 0.45), (40, 40, 40), scale)
        return out

    @staticmethod
    def _draw_line(out: np.ndarray, ln, pts: tuple, thick: int, scale: float) -> None:
        c = _hex_to_bgr(ln.color, (0, 255, 255))
        a, b = np.array(pts[0]), np.array(pts[1])
        cv2.line(out, tuple(a.astype(int)), tuple(b.astype(int)), c, thick + 2, cv2.LINE_AA)
        # An arrow from the middle towards the "in" side shows which way is in.
        d = b - a
        normal = np.array([d[1], -d[0]]) / (np.linalg.norm(d) + 1e-9)  # left of a->b with y down
        if ln.in_side == "right":
            normal = -normal
        mid = (a + b) / 2
        tip = mid + normal * max(25.0, 0.08 * np.linalg.norm(d))
        cv2.arrowedLine(out, tuple(mid.astype(int)), tuple(tip.astype(int)), c, thick + 1, cv2.LINE_AA, tipLength=0.35)
        draw_label(out, f"{ln.name or ln.id} (in)", int(tip[0]), int(tip[1]), c, scale)

    def _draw_track(self, out: np.ndarray, tr, t: float, thick: int, scale: float) -> None:
        x1, y1, x2, y2 = (int(round(v)) for v in tr.box)
        alerted = self._alerted.get(tr.id)
        hot = alerted is not None and t - alerted[0] <= ALERT_HOLD_S
        c = SEVERITY_COLOURS[alerted[2]] if hot else track_colour(tr.id)
        trail = np.array([box for _, box, _ in tr.history], dtype=np.float64).reshape(-1, 4)
        if len(trail) > 1:
            pts = anchor_points(trail).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], False, c, thick, cv2.LINE_AA)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thick * (3 if hot else 1), cv2.LINE_AA)
        label = f"#{tr.id} {tr.class_name}" + (f"  ALERT {alerted[1]}" if hot else "")
        draw_label(out, label, x1, y1, c, scale)
