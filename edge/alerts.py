"""From a rule event to an alert with its evidence: a JPEG of the frame with the object boxed."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
from ulid import ULID

from edge.annotate import draw_label
from edge.config import NodeConfig, SnapshotSettings
from edge.contract import MAX_BYTES, AisEvidence, Alert, Kind, PathPoint, Position, RadarEvidence, SnapshotInfo
from edge.geo import bearing_of
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


def radar_evidence(frame, target) -> RadarEvidence:
    rng = math.hypot(target.east, target.north)
    lat, lon = (target.lat, target.lon) if target.lat is not None else frame.to_geo(target.east, target.north)
    return RadarEvidence(source=target.source, target=target.target, range_m=round(rng, 1),
                         bearing_deg=round(float(bearing_of(target.east, target.north)), 2),
                         speed_mps=round(target.speed_mps, 2) if target.speed_mps is not None else None,
                         course_deg=round(target.course_deg % 360, 1) if target.course_deg is not None else None,
                         lat=round(float(lat), 7), lon=round(float(lon), 7))


def ais_evidence(target) -> AisEvidence:
    extra = target.extra or {}
    ship_type = extra.get("ship_type") or extra.get("shiptype")
    return AisEvidence(mmsi=str(target.target)[:16], name=(target.name or None) and target.name[:64],
                       callsign=str(extra["callsign"])[:16] if extra.get("callsign") else None,
                       ship_type=str(ship_type)[:64] if ship_type is not None else None,
                       speed_mps=round(target.speed_mps, 2) if target.speed_mps is not None else None,
                       course_deg=round(target.course_deg % 360, 1) if target.course_deg is not None else None)


def fused_fields(frame, obj) -> dict:
    """position, sensors and each sensor's evidence of a fused object, for an Alert."""
    lat, lon = frame.to_geo(obj.east, obj.north)
    return {
        "position": Position(lat=round(float(lat), 7), lon=round(float(lon), 7), sigma_m=round(obj.sigma_m, 2)),
        "sensors": list(obj.sensors),
        "radar": radar_evidence(frame, obj.radar) if obj.radar is not None else None,
        "ais": ais_evidence(obj.ais) if obj.ais is not None else None,
    }


class AlertBuilder:
    """Makes Alert records for one camera; `wall(t)` maps a frame timestamp to UTC. With a camera
    model, alerts carry the object's place on the earth; with fusion, its radar and AIS evidence."""

    def __init__(self, config: NodeConfig, camera_id: str, wall, model=None):
        self.config = config
        self.camera = config.camera(camera_id)
        self.wall = wall
        self.model = model

    def reconfigure(self, config: NodeConfig, model=None) -> None:
        self.config = config
        self.camera = config.camera(self.camera.id)
        self.model = model

    def _place(self, box, fused) -> dict:
        if fused is not None and self.model is not None and self.model.frame is not None:
            return fused_fields(self.model.frame, fused)
        if self.model is None or self.model.frame is None or box is None:
            return {}
        fix = self.model.anchor_to_ground(np.array([box], dtype=np.float64))
        if not bool(np.asarray(fix.valid)[0]):
            return {}
        sigma = math.sqrt(max(float(np.trace(fix.covariance[0])) / 2, 0.0))
        return {"position": Position(lat=round(float(fix.lat[0]), 7), lon=round(float(fix.lon[0]), 7),
                                     sigma_m=round(sigma, 2))}

    def _utc(self, t: float) -> dt.datetime:
        return self.wall(t).astimezone(dt.timezone.utc)

    def build(self, event: RuleEvent, frame: Frame, zone_px: np.ndarray | None, line_px: np.ndarray | None,
              fused=None) -> AlertRecord:
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
            **self._place(primary.box if primary is not None and len(tracks) == 1 else None, fused),
        )
        return AlertRecord(fit_on_the_wire(alert), jpeg)


def geo_alert(config: NodeConfig, event, evidence: np.ndarray, frame, *, camera: str | None = None,
              box=None, frame_index: int | None = None, media_time: float | None = None,
              media_offset: float = 0.0) -> AlertRecord:
    """An alert of a rule on the fused picture (edge.geo_rules). `evidence` is the picture that
    shows it: the confirming camera's frame with the object boxed, or the post's plan view.
    `media_offset` turns the camera's frame times (a recording's seconds from its start; a live
    camera's are epoch already, offset 0) into epoch seconds, the radar's and the rules' clock."""
    obj = event.obj
    when = dt.datetime.fromtimestamp(event.time, dt.timezone.utc)
    started = dt.datetime.fromtimestamp(event.started, dt.timezone.utc)
    tracks = [obj.camera_track] if obj.camera_track is not None else []
    seen = [tr.first_seen + media_offset for tr in tracks]
    if obj.radar is not None:
        seen.append(obj.radar.first_seen)
    first = min(seen + [event.started, event.time])
    source = camera or obj.camera or (obj.radar.source if obj.radar is not None else "radar")
    jpeg, w, h = encode_snapshot(evidence, config.alerts.snapshot)
    ident = "|".join(str(x) for x in (obj.radar.key if obj.radar else (obj.camera, obj.camera_track.id)))
    what = f"{config.node.site}/{config.node.id}/{source}/{event.rule.id}/{ident}/{event.time:.3f}"
    ms = int(event.time * 1000)
    score = float(obj.camera_track.score) if obj.camera_track is not None else 0.0
    best = float(obj.camera_track.best_score) if obj.camera_track is not None else 0.0
    alert = Alert(
        id=str(ULID.from_bytes(ms.to_bytes(6, "big") + hashlib.sha256(what.encode()).digest()[:10])),
        site=config.node.site, node=config.node.id, camera=source, rule=event.rule.id, rule_type=event.rule_type,
        severity=event.rule.severity, zone=event.zone, **{"class": obj.class_name}, score=round(score, 4),
        best_score=round(best, 4), track_id=obj.camera_track.id if obj.camera_track is not None else None,
        track_ids=[tr.id for tr in tracks], time=when, started=started,
        first_seen=dt.datetime.fromtimestamp(first, dt.timezone.utc), last_seen=when,
        frame=frame_index, media_time=media_time, bbox=tuple(round(float(v), 1) for v in box) if box is not None else None,
        frame_size=(int(evidence.shape[1]), int(evidence.shape[0])) if box is not None else None,
        snapshot=SnapshotInfo(width=w, height=h, bytes=len(jpeg), sha256=hashlib.sha256(jpeg).hexdigest()),
        **fused_fields(frame, obj),
    )
    return AlertRecord(fit_on_the_wire(alert), jpeg)
