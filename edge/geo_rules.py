"""Rules on the fused picture: geo zones on the earth, radar and AIS evidence.

- radar_confirmed: a radar track that a camera has linked (and classified) stays in the zone;
- radar_only: a radar track in a guard zone that no camera links (it cannot be seen);
- dark_vessel: a vessel (a radar track, or a camera track of a vessel class) in a maritime zone
  with no AIS identity.
Each fires once per visit after `dwell_s` without a break, as the camera rules do
(edge.rules.dwell_reached), and only for objects at least `min_speed_mps` fast.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from edge.config import DarkVesselRule, GeoRuleBase, NodeConfig, RadarConfirmedRule, RadarOnlyRule
from edge.fusion import FusedObject
from edge.geo import LocalFrame
from edge.geometry import inside_polygon, prepared_polygon
from edge.rules import STATE_TTL_S, _Visit, dwell_reached, schedule_active


@dataclass(frozen=True)
class GeoEvent:
    rule: GeoRuleBase
    time: float  # UTC epoch seconds
    started: float
    obj: FusedObject
    zone: str

    @property
    def rule_type(self) -> str:
        return self.rule.type  # type: ignore[attr-defined]


def object_key(obj: FusedObject) -> tuple:
    """Who an object is over time: its radar track when it has one, else its camera track."""
    if obj.radar is not None:
        return ("radar",) + obj.radar.key
    return ("camera", obj.camera, obj.camera_track.id)


class GeoRuleEngine:
    def __init__(self, config: NodeConfig, frame: LocalFrame):
        self.frame = frame
        self._visits: dict[tuple, _Visit] = {}
        self.reconfigure(config)

    def reconfigure(self, config: NodeConfig) -> None:
        self.config = config
        self.zones = {}
        for z in config.geo_zones:
            lat, lon = np.array(z.points, dtype=np.float64).T
            east, north = self.frame.to_local(lat, lon)
            self.zones[z.id] = (z, np.column_stack([east, north]), prepared_polygon(np.column_stack([east, north])))
        keep = {r.id for r in config.geo_rules}
        self._visits = {k: v for k, v in self._visits.items() if k[0] in keep}

    @staticmethod
    def _qualifies(rule: GeoRuleBase, obj: FusedObject) -> bool:
        """Whether the rule looks at this object at all (sensors, class, speed), wherever it is."""
        speed = obj.speed_mps if obj.speed_mps is not None else 0.0
        if speed < rule.min_speed_mps:
            return False
        if isinstance(rule, RadarConfirmedRule):
            return obj.camera_track is not None and obj.radar is not None and (
                not rule.classes or obj.class_name in rule.classes)
        if isinstance(rule, RadarOnlyRule):
            return obj.radar is not None and obj.camera_track is None
        if isinstance(rule, DarkVesselRule):
            vessel = obj.radar is not None or (obj.camera_track is not None and obj.class_name in rule.vessel_classes)
            return vessel and obj.ais is None
        return False

    def evaluate(self, objects: list[FusedObject], t: float, wall: dt.datetime) -> list[GeoEvent]:
        """`objects`: the node's fused picture (every camera's objects, radar-only ones once).

        The zone test runs on every object at once; the rest only for the objects in the zone
        and those with a visit under way (a node sees hundreds of radar targets, few in zones)."""
        events = []
        # A picture that knows its objects' places and keys (edge.fused_picture's) builds an
        # object only when a rule looks at it; a plain list is read as it is.
        pts = getattr(objects, "positions", None)
        if pts is None:
            pts = np.array([(o.east, o.north) for o in objects], dtype=np.float64).reshape(-1, 2)
        keys: list[tuple] | None = None  # object_key of each object, worked out when a visit needs them
        for rule in self.config.geo_rules:
            if not rule.enabled or not schedule_active(rule.schedule, wall):
                self._visits = {k: v for k, v in self._visits.items() if k[0] != rule.id}
                continue
            zone, _, poly = self.zones[rule.zone]
            inside = inside_polygon(pts, poly) if len(objects) else np.zeros(0, bool)
            visiting = {k for k in self._visits if k[0] == rule.id}
            if not visiting and not inside.any():
                continue  # nobody in the zone, no visit under way: nothing for this rule to do
            if keys is None:
                keys = objects.keys if hasattr(objects, "keys") else [object_key(o) for o in objects]
            present = set()
            for i in range(len(keys)):
                key = (rule.id,) + keys[i]
                is_in = bool(inside[i])
                # Outside and without a visit (one made earlier in this loop counts), an object changes nothing.
                if not is_in and key not in self._visits:
                    continue
                obj = objects[i]
                if not self._qualifies(rule, obj):
                    continue
                present.add(key)
                st = self._visits.get(key)
                if st is None:
                    if not is_in:
                        continue
                    st = self._visits[key] = _Visit()
                if dwell_reached(st, is_in, t, rule.dwell_s, rule.cooldown_s):
                    events.append(GeoEvent(rule, t, st.inside_since, obj, rule.zone))
            # An object that stopped qualifying (now seen by a camera, identified by AIS) breaks its dwell.
            for key in visiting - present:
                self._visits[key].inside_since = None
        cooldown = {r.id: r.cooldown_s for r in self.config.geo_rules}
        self._visits = {k: v for k, v in self._visits.items() if t - v.last_seen <= cooldown.get(k[0], 0) + STATE_TTL_S}
        return events
