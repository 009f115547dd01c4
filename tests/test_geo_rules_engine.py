"""The geo rule engine looks closely only at the objects in a zone and those with a visit under
way; it must decide exactly as the plain rule — every qualifying object, every frame — decides.
The plain rule is written out here as the reference, and both run on random fused pictures."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np

from edge.config import DarkVesselRule, RadarConfirmedRule, RadarOnlyRule, parse_config
from edge.fusion import FusedObject
from edge.geo import LocalFrame
from edge.geo_rules import GeoRuleEngine, object_key
from edge.geometry import inside_polygon
from edge.radar.store import Target
from edge.rules import STATE_TTL_S, _Visit, dwell_reached
from edge.track import Track

GEO = """
node: {site: coast, id: tower-1, lat: 45.815, lon: 15.9819}
cameras: [{id: cam, source: x}, {id: cam2, source: y}]
geo_zones:
  - {id: bay, kind: maritime, points: [[45.8152, 15.9810], [45.8170, 15.9810], [45.8170, 15.9830], [45.8152, 15.9830]]}
  - {id: beach, points: [[45.8140, 15.9810], [45.8150, 15.9810], [45.8150, 15.9820], [45.8140, 15.9820]]}
geo_rules:
  - {id: confirmed, type: radar_confirmed, zone: bay, classes: [person], dwell_s: 1}
  - {id: unseen, type: radar_only, zone: bay, dwell_s: 1, min_speed_mps: 0.5}
  - {id: dark, type: dark_vessel, zone: bay, dwell_s: 1, cooldown_s: 2}
  - {id: beach-any, type: radar_only, zone: beach, dwell_s: 0.5}
  - {id: beach-conf, type: radar_confirmed, zone: beach, dwell_s: 2}
"""


class PlainEngine:
    """Every rule, every qualifying object, every evaluation."""

    def __init__(self, engine: GeoRuleEngine):
        self.engine, self.visits = engine, {}

    def evaluate(self, objects, t):
        events = []
        for rule in self.engine.config.geo_rules:
            cands = [o for o in objects if qualifies(rule, o)]
            inside = inside_polygon(np.array([[o.east, o.north] for o in cands]).reshape(-1, 2), self.engine.zones[rule.zone][2])
            present = set()
            for obj, is_in in zip(cands, inside):
                key = (rule.id,) + object_key(obj)
                present.add(key)
                st = self.visits.get(key)
                if st is None:
                    if not is_in:
                        continue
                    st = self.visits[key] = _Visit()
                if dwell_reached(st, bool(is_in), t, rule.dwell_s, rule.cooldown_s):
                    events.append((rule.id, t, st.inside_since, id(obj)))
            for key, st in self.visits.items():
                if key[0] == rule.id and key not in present:
                    st.inside_since = None
        cooldown = {r.id: r.cooldown_s for r in self.engine.config.geo_rules}
        self.visits = {k: v for k, v in self.visits.items() if t - v.last_seen <= cooldown.get(k[0], 0) + STATE_TTL_S}
        return events


def qualifies(rule, obj) -> bool:
    if (obj.speed_mps or 0.0) < rule.min_speed_mps:
        return False
    if isinstance(rule, RadarConfirmedRule):
        return obj.camera_track is not None and obj.radar is not None and (not rule.classes or obj.class_name in rule.classes)
    if isinstance(rule, RadarOnlyRule):
        return obj.radar is not None and obj.camera_track is None
    if isinstance(rule, DarkVesselRule):
        return (obj.radar is not None or (obj.camera_track is not None and obj.class_name in rule.vessel_classes)) and obj.ais is None
    return False


def test_the_engine_decides_as_the_plain_rule_on_random_pictures():
    frame = LocalFrame(45.815, 15.9819)
    engine = GeoRuleEngine(parse_config(GEO), frame)
    plain = PlainEngine(GeoRuleEngine(parse_config(GEO), frame))
    rng = random.Random(3)
    wall = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    radar = {i: Target("radar", "radar", f"{i:02d}", 0.0) for i in range(40)}
    ais = {i: Target("ais", "ais", f"24400{i}", 0.0) for i in range(10)}
    pos = {i: (rng.uniform(-150, 150), rng.uniform(-150, 300)) for i in range(40)}
    fired = 0
    for step in range(400):
        t = step * 0.25
        objects = []
        for i in range(40):
            if rng.random() < 0.15:
                continue  # not seen this time
            pos[i] = (pos[i][0] + rng.uniform(-8, 8), pos[i][1] + rng.uniform(-8, 8))
            cam = rng.random() < 0.3
            track = Track(i, 0, rng.choice(["person", "boat"]), np.zeros(4, np.float32), 0.9, t, 64) if cam else None
            obj = FusedObject(track, radar[i] if rng.random() < 0.9 else None, ais[i % 10] if rng.random() < 0.2 else None,
                              pos[i][0], pos[i][1], 1.0, rng.uniform(0, 2), 0.0, rng.choice(["cam", "cam2"]) if cam else None)
            if obj.camera_track is not None or obj.radar is not None:
                objects.append(obj)
                if rng.random() < 0.05:
                    objects.append(obj)  # two cameras' objects for one radar target
        events = [(e.rule.id, e.time, e.started, id(e.obj)) for e in engine.evaluate(objects, t, wall)]
        assert events == plain.evaluate(objects, t), step
        assert {k: (v.visit_start, v.inside_since, v.last_inside, v.alerted, v.last_seen) for k, v in engine._visits.items()} == \
               {k: (v.visit_start, v.inside_since, v.last_inside, v.alerted, v.last_seen) for k, v in plain.visits.items()}
        fired += len(events)
    assert fired > 20, "the pictures make the rules fire"
