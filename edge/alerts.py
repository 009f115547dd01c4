"""From a rule event to an alert with its evidence: a JPEG of the frame with the object boxed."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from ulid import ULID

from edge.annotate import draw_label
from edge.config import NodeConfig, SnapshotSettings
from edge.contract import MAX_BYTES, Alert, Kind, PathPoint, SnapshotInfo
from edge.geometry import anchor_points
from edge.rules import RuleEvent
from edge.sources import Frame

SEVERITY_COLOURS = {  # BGR
    "info": (200, 200, 200),
    "low": (80, 200, 80),
    "medium": (0, 200, 255),
    "high": (0, 110, 255),
    "critical": (40, 40, 230),
}


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert: Alert
    snapshot: bytes | None


def encode_snapshot(img: np.ndarray, settings: SnapshotSettings) -> tuple[bytes, int, int]:
    """JPEG no wider than max_width, lowering the quality until it fits max_bytes."""
    h, w = img.shape[:2]
    if w > settings.max_width:
        scale = settings.max_width / w
        img = cv2.resize(img, (settings.max_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    quality = settings.quality
    while True:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        if buf.size <= settings.max_bytes or quality <= 10:
            break
        quality = max(10, quality - 15)
    if buf.size > settings.max_bytes:  # still too big at quality 10: halve the picture until it fits
        small = img
        while buf.size > settings.max_bytes and small.shape[1] > 64:
            small = cv2.resize(small, (small.shape[1] // 2, max(1, small.shape[0] // 2)), interpolation=cv2.INTER_AREA)
            _, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 10])
        img = small
    return buf.tobytes(), img.shape[1], img.shape[0]


def draw_evidence(img: np.ndarray, event: RuleEvent, zone_px: np.ndarray | None, line_px: np.ndarray | None) -> np.ndarray:
    """The frame with the zone or line and the event's objects boxed, labelled with the rule."""
    out = img.copy()
    colour = SEVERITY_COLOURS[event.rule.severity]
    thick = max(2, round(min(out.shape[:2]) / 240))
    if zone_px is not None:
        cv2.polylines(out, [zone_px.astype(np.int32).reshape(-1, 1, 2)], True, colour, max(1, thick // 2), cv2.LINE_AA)
    if line_px is not None:
        p, q = (tuple(int(v) for v in pt) for pt in line_px)
        cv2.line(out, p, q, colour, thick, cv2.LINE_AA)
    scale = max(0.45, min(out.shape[:2]) / 900)
    for tr in event.tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in tr.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        draw_label(out, f"#{tr.id} {tr.class_name} {tr.score:.2f}", x1, y1, colour, scale)
    draw_label(out, f"{event.rule.id} ({event.rule_type})", 4, out.shape[0] - 4, colour, scale)
    return out


def alert_id(when: dt.datetime, site: str, node: str, camera: str, event: RuleEvent) -> str:
    """A ULID whose time is the event's and whose other 80 bits are a hash of what the event is.

    The same event gets the same id: a node that re-processes a recording after a crash raises
    alerts central already has, and central's idempotent insert keeps one row each.
    """
    tracks = ",".join(str(tr.id) for tr in event.tracks)
    what = f"{site}/{node}/{camera}/{event.rule.id}/{tracks}/{event.time:.6f}/{event.direction}"
    ms = int(when.timestamp() * 1000)
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + hashlib.sha256(what.encode()).digest()[:10]))


def fit_on_the_wire(alert: Alert) -> Alert:
    """Central refuses an alert over the contract's size limit; long names and ids could push
    one over, so the path gives way first (oldest points dropped)."""
    limit = MAX_BYTES[Kind.ALERT]
    while len(alert.to_json().encode()) > limit and alert.path:
        alert = alert.model_copy(update={"path": alert.path[len(alert.path) // 4 + 1:]})
    return alert


class AlertBuilder:
    """Makes Alert records for one camera; `wall(t)` maps a frame timestamp to UTC."""

    def __init__(self, config: NodeConfig, camera_id: str, wall):
        self.config = config
        self.camera = config.camera(camera_id)
        self.wall = wall

    def reconfigure(self, config: NodeConfig) -> None:
        self.config = config
        self.camera = config.camera(self.camera.id)

    def _utc(self, t: float) -> dt.datetime:
        return self.wall(t).astimezone(dt.timezone.utc)

    def build(self, event: RuleEvent, frame: Frame, zone_px: np.ndarray | None, line_px: np.ndarray | None) -> AlertRecord:
        settings = self.config.alerts
        primary = event.primary
        tracks = event.tracks
        if primary is not None and len(tracks) == 1:
            bbox = tuple(float(v) for v in primary.box)
        else:  # a crowd: the box around everyone in it
            boxes = np.array([tr.box for tr in tracks], dtype=np.float64).reshape(-1, 4)
            bbox = (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()) if len(boxes) else (0, 0, 0, 0)
            bbox = tuple(float(v) for v in bbox)
        path = []
        if primary is not None:
            recent = list(primary.history)[-settings.path_points :]
            if recent:
                pts = anchor_points(np.array([box for _, box, _ in recent], dtype=np.float64), event.rule.anchor)
                path = [PathPoint(t=self._utc(ts), x=round(float(x), 1), y=round(float(y), 1))
                        for (ts, _, _), (x, y) in zip(recent, pts)]
        jpeg, w, h = encode_snapshot(draw_evidence(frame.image, event, zone_px, line_px), settings.snapshot)
        when = self._utc(event.time)
        alert = Alert(
            id=alert_id(when, self.config.node.site, self.config.node.id, self.camera.id, event),
            site=self.config.node.site,
            node=self.config.node.id,
            camera=self.camera.id,
            rule=event.rule.id,
            rule_type=event.rule_type,
            severity=event.rule.severity,
            zone=event.zone,
            line=event.line,
            direction=event.direction,
            **{"class": primary.class_name if primary else ""},
            score=round(float(primary.score), 4) if primary else 0.0,
            best_score=round(float(primary.best_score), 4) if primary else 0.0,
            track_id=primary.id if primary else None,
            track_ids=[tr.id for tr in tracks],
            count=event.count,
            time=when,
            started=self._utc(event.started),
            first_seen=self._utc(min(tr.first_seen for tr in tracks)) if tracks else when,
            last_seen=self._utc(max(tr.last_seen for tr in tracks)) if tracks else when,
            frame=frame.index,
            media_time=round(frame.timestamp, 6),
            bbox=tuple(round(v, 1) for v in bbox),
            frame_size=(frame.width, frame.height),
            path=path,
            snapshot=SnapshotInfo(width=w, height=h, bytes=len(jpeg), sha256=hashlib.sha256(jpeg).hexdigest()),
        )
        return AlertRecord(fit_on_the_wire(alert), jpeg)
