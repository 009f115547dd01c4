"""The node's one picture of its surroundings: every camera's fused objects, the radar targets
no camera sees, AIS identities; the geo rules run on it, and the plan view draws it.

Camera pipelines hand in their latest fusion result after each frame (`update`); `evaluate`
runs the geo rules over the merged picture and turns their events into alerts, with the
confirming camera's frame as evidence, or the plan view when no camera sees the object.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from edge.alerts import AlertRecord, geo_alert
from edge.annotate import draw_label
from edge.config import NodeConfig
from edge.fusion import BuiltOnRead, FusedObject, FusionConfig, FusionResult, RadarOnly, pair_ais
from edge.geo_rules import GeoRuleEngine, object_key
from edge.plan_view import HIGHLIGHT, PlanView
from edge.radar.picture import RadarPicture


def wants_picture(config: NodeConfig) -> bool:
    """A node keeps a fused picture when it has radar/AIS feeds or rules on the earth."""
    return bool(config.radars or config.geo_rules)


@dataclass
class _CameraView:
    fusion: FusionResult  # its objects are built when the rules or the plan view first read them
    links: dict
    image: np.ndarray | None
    frame_index: int | None
    media_time: float | None
    model: object
    time: float


class MergedPicture(BuiltOnRead):
    """The node's picture for the geo rules: every camera's objects, then the radar targets no
    camera links. Both sides build an object only when a rule or a reader asks for it
    (edge.fusion.CameraObjects, edge.fusion.RadarOnly); the rules read `positions` for the zone
    tests and `keys` (edge.geo_rules.object_key of each)."""

    def __init__(self, cameras: list[Sequence[FusedObject]], rest: RadarOnly):
        self.parts = [c for c in cameras if len(c)] + [rest]
        self.rest = rest
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.positions = np.concatenate([np.asarray(p.positions, np.float64).reshape(-1, 2) for p in self.parts])

    @cached_property
    def keys(self) -> list[tuple]:
        return [k for p in self.parts[:-1] for k in p.keys] + [("radar",) + k for k in self.rest.keys]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _item(self, i: int) -> FusedObject:
        part = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.parts[part][i - int(self._starts[part])]


class FusedPicture:
    def __init__(self, config: NodeConfig, picture: RadarPicture, *, plan_size: int = 800):
        self.config = config
        self.picture = picture
        self.engine = GeoRuleEngine(config, picture.frame)
        self.plan = PlanView(plan_size, self._plan_range())
        self.tz = ZoneInfo(config.node.timezone)
        self._views: dict[str, _CameraView] = {}
        self._lock = threading.Lock()

    def reconfigure(self, config: NodeConfig) -> None:
        with self._lock:
            self.config = config
            self.engine.reconfigure(config)
            self.plan.range_m = self._plan_range()

    def _plan_range(self) -> float:
        """Far enough to show every geo zone (at least 30 m); 500 m when there is no zone to go by."""
        reach = []
        for z in self.config.geo_zones:
            lat, lon = np.array(z.points, dtype=np.float64).T
            e, n = self.picture.frame.to_local(lat, lon)
            reach.append(float(np.max(np.hypot(e, n))) * 1.15)
        return max(30.0, max(reach)) if reach else 500.0

    def update(self, camera: str, result, model) -> None:
        """A camera's latest frame result (edge.pipeline.FrameResult) with its fusion."""
        if result.fusion is None:
            return
        with self._lock:
            self._views[camera] = _CameraView(result.fusion, result.fusion.links, result.frame.image,
                                              result.frame.index, result.frame.timestamp, model, result.wall)

    def objects(self, t: float) -> list[FusedObject]:
        """The merged picture at time t: camera-linked objects of every camera, then each radar
        target that no camera links, once."""
        return list(self.merged(t))

    def merged(self, t: float) -> MergedPicture:
        """The merged picture at time t, its radar-only objects built when first read."""
        with self._lock:
            views = dict(self._views)
        cameras = [view.fusion.camera_view for view in views.values()]
        linked = {k for view in views.values() for k in view.fusion.links.values()}
        radar = self.picture.store.snapshot(t, kind="radar")
        ais = self.picture.store.snapshot(t, kind="ais")
        return MergedPicture(cameras, RadarOnly(radar, ais, linked, pair_ais(radar, ais, FusionConfig())))

    def evaluate(self, t: float) -> list[AlertRecord]:
        merged = self.merged(t)
        wall = dt.datetime.fromtimestamp(t, self.tz)
        events = self.engine.evaluate(merged, t, wall)
        if not events:
            return []
        objects = list(merged)
        return [self._alert(event, objects, t) for event in events]

    def _alert(self, event, objects, t) -> AlertRecord:
        obj = event.obj
        view = self._views.get(obj.camera) if obj.camera is not None else None
        if obj.camera_track is not None and view is not None and view.image is not None:
            img = view.image.copy()
            x1, y1, x2, y2 = (int(round(v)) for v in obj.camera_track.box)
            cv2.rectangle(img, (x1, y1), (x2, y2), HIGHLIGHT, 3, cv2.LINE_AA)
            radar = f" radar {obj.radar.target}" if obj.radar is not None else ""
            speed = f" {obj.speed_mps:.1f} m/s" if obj.speed_mps is not None else ""
            draw_label(img, f"{obj.class_name}{radar}{speed}", x1, y1, HIGHLIGHT, 0.6)
            draw_label(img, f"{event.rule.id} ({event.rule_type})", 4, img.shape[0] - 4, HIGHLIGHT, 0.6)
            offset = view.time - view.media_time if view.media_time is not None else 0.0
            return geo_alert(self.config, event, img, self.picture.frame, camera=obj.camera, box=obj.camera_track.box,
                             frame_index=view.frame_index, media_time=view.media_time, media_offset=offset)
        plan = self.render_plan(t, objects, highlight=object_key(obj), title=f"{event.rule.id} ({event.rule_type})")
        return geo_alert(self.config, event, plan, self.picture.frame)

    def render_plan(self, t: float, objects: list[FusedObject] | None = None, highlight=None, title: str = "") -> np.ndarray:
        objects = objects if objects is not None else self.objects(t)
        frame = self.picture.frame
        zones = []
        for z in self.config.geo_zones:
            lat, lon = np.array(z.points, dtype=np.float64).T
            e, n = frame.to_local(lat, lon)
            colour = None
            if z.color:
                r, g, b = int(z.color[1:3], 16), int(z.color[3:5], 16), int(z.color[5:7], 16)
                colour = (b, g, r)
            zones.append((z.name or z.id, z.kind, np.column_stack([e, n]), colour))
        with self._lock:
            views = dict(self._views)
        cameras = []
        for cam_id, view in views.items():
            model = view.model
            if model is not None and model.camera_en is not None:
                cameras.append((cam_id, tuple(model.camera_en), model.footprint(self.plan.range_m * 1.5)))
        paired = {o.ais.key for o in objects if o.ais is not None}
        ais = [tg for tg in self.picture.store.targets("ais") if tg.has_position and tg.key not in paired]
        stamp = dt.datetime.fromtimestamp(t, self.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        return self.plan.render(zones=zones, cameras=cameras, objects=objects, ais=ais, highlight=highlight,
                                title=f"{self.config.node.site}/{self.config.node.id} {stamp} {title}".strip())
