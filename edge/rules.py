"""Alert rules over tracks: intrusion, loitering, line crossing, crowding.

The engine keeps per-(rule, track) state and is driven only by what it is given — tracks, the
frame's timestamp and the wall time for schedules — so a replay gives the same events every
time and tests need no video.

One alert per event:
- intrusion: a track whose anchor stays in the zone `dwell_s` without leaving; the visit ends
  when the track has been out of the zone (or unseen) for longer than `cooldown_s`, and only a
  new visit can alert again;
- loitering: a track in the zone `min_duration_s` since it entered, absences shorter than
  `max_gap_s` forgiven; later visits alert again once `cooldown_s` has passed;
- line crossing: every crossing of the segment in a direction of interest, except within
  `cooldown_s` of the same track's last alert on that rule;
- crowding: more than `max_count` eligible tracks in the zone for `min_duration_s`; re-armed
  after the count has stayed at or below `max_count` for `cooldown_s`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.config import (
    DAYS,
    CameraConfig,
    CrowdingRule,
    IntrusionRule,
    LineCrossingRule,
    LoiteringRule,
    RuleBase,
    Schedule,
)
from edge.geometry import anchor_points, crossing_direction, inside_polygon, prepared_polygon, side_of_line, to_pixels

NEVER = -math.inf
# Per-track state is dropped this long after the track was last seen (beyond the rule's cooldown).
STATE_TTL_S = 120.0


@dataclass(frozen=True, slots=True)
class RuleEvent:
    rule: RuleBase
    time: float  # frame timestamp of the event
    started: float  # when the condition began: entry, crossing, count exceeded
    tracks: tuple  # the tracks the event is about (one, or those in a crowded zone)
    zone: str | None = None
    line: str | None = None
    direction: str | None = None  # line crossings: "in" or "out"
    count: int | None = None

    @property
    def rule_type(self) -> str:
        return self.rule.type  # type: ignore[attr-defined]

    @property
    def primary(self):
        """The object the alert is about: the track, or the best-scoring one in a crowd."""
        return max(self.tracks, key=lambda tr: tr.best_score) if self.tracks else None


def schedule_active(schedule: Schedule | None, when: dt.datetime) -> bool:
    """Whether `when` (in the node's time zone) falls in the schedule's window."""
    if schedule is None:
        return True
    day, t = DAYS[when.weekday()], when.time()
    start, end = schedule.start, schedule.end
    if start == end:
        return day in schedule.days
    if start < end:
        return day in schedule.days and start <= t < end
    # The window runs past midnight: it belongs to the day it started.
    if t >= start:
        return day in schedule.days
    return t < end and DAYS[(when.weekday() - 1) % 7] in schedule.days


@dataclass(slots=True)
class _Visit:
    visit_start: float | None = None
    inside_since: float | None = None
    last_inside: float = NEVER
    alerted: bool = False
    last_alert: float = NEVER
    last_seen: float = NEVER


def dwell_reached(st: _Visit, inside: bool, t: float, dwell_s: float, cooldown_s: float) -> bool:
    """Advance an object's visit of a zone; True once per visit, when it has stayed `dwell_s`
    without a break. A visit ends when the object has been out (or unseen) for `cooldown_s`."""
    st.last_seen = t
    if not inside:
        st.inside_since = None
        return False
    if st.visit_start is None or t - st.last_inside > cooldown_s:
        st.visit_start, st.inside_since, st.alerted = t, t, False
    elif st.inside_since is None:
        st.inside_since = t
    st.last_inside = t
    if not st.alerted and t - st.inside_since >= dwell_s:
        st.alerted, st.last_alert = True, t
        return True
    return False


@dataclass(slots=True)
class _Crossing:
    point: tuple[float, float] | None = None
    side: int = 0
    last_alert: float = NEVER
    last_seen: float = NEVER


@dataclass(slots=True)
class _Crowd:
    above_since: float | None = None
    last_above: float = NEVER
    alerted: bool = False


@dataclass
class _Geometry:
    size: tuple[int, int]
    zones: dict[str, np.ndarray] = field(default_factory=dict)
    polygons: dict[str, object] = field(default_factory=dict)  # prepared for containment tests
    lines: dict[str, tuple[tuple[float, float], tuple[float, float]]] = field(default_factory=dict)


class RuleEngine:
    """Evaluates a camera's rules on each frame's tracks.

    >>> engine = RuleEngine(camera)                              # doctest: +SKIP
    >>> events = engine.evaluate(tracks, t=12.4, wall=now, frame_size=(1280, 720))  # doctest: +SKIP
    """

    def __init__(self, camera: CameraConfig):
        self.camera = camera
        self._geometry: _Geometry | None = None
        self._visits: dict[tuple[str, int], _Visit] = {}
        self._crossings: dict[tuple[str, int], _Crossing] = {}
        self._crowds: dict[str, _Crowd] = {}
        self._last_expiry = NEVER

    def reconfigure(self, camera: CameraConfig) -> None:
        """Swap in new zones and rules; state of rules that keep their id and meaning survives."""
        old = {r.id: r for r in self.camera.rules}
        changed = {r.id for r in camera.rules if r.id not in old or old[r.id] != r}
        gone = set(old) - {r.id for r in camera.rules}
        stale = changed | gone
        self._visits = {k: v for k, v in self._visits.items() if k[0] not in stale}
        self._crossings = {k: v for k, v in self._crossings.items() if k[0] not in stale}
        self._crowds = {k: v for k, v in self._crowds.items() if k not in stale}
        self.camera = camera
        self._geometry = None

    def geometry(self, size: tuple[int, int]) -> _Geometry:
        """Zones and lines in pixels of a picture of this size (cached)."""
        if self._geometry is None or self._geometry.size != size:
            w, h = size
            g = _Geometry(size)
            for z in self.camera.zones:
                g.zones[z.id] = to_pixels(z.points, z.coordinates, w, h)
                g.polygons[z.id] = prepared_polygon(g.zones[z.id])
            for ln in self.camera.lines:
                a, b = to_pixels(ln.points, ln.coordinates, w, h)
                g.lines[ln.id] = (tuple(a), tuple(b))
            self._geometry = g
        return self._geometry

    @staticmethod
    def _eligible(rule: RuleBase, names: np.ndarray, best: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Indices of the tracks the rule applies to: class, best score, box size."""
        ok = best >= rule.min_score
        if rule.classes:
            ok &= np.isin(names, rule.classes)
        if rule.min_size > 0:
            ok &= sizes >= rule.min_size
        if rule.max_size is not None:
            ok &= sizes <= rule.max_size
        return np.nonzero(ok)[0]

    def evaluate(self, tracks: Sequence, t: float, wall: dt.datetime, frame_size: tuple[int, int]) -> list[RuleEvent]:
        geo = self.geometry(frame_size)
        boxes = np.array([tr.box for tr in tracks], dtype=np.float64).reshape(-1, 4)
        names = np.array([tr.class_name for tr in tracks], dtype=object)
        best = np.array([tr.best_score for tr in tracks], dtype=np.float64)
        sizes = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        anchors: dict[str, np.ndarray] = {}
        inside: dict[tuple[str, str], np.ndarray] = {}  # (zone, anchor) -> per track; rules share them
        events: list[RuleEvent] = []
        for rule in self.camera.rules:
            if not rule.enabled or not schedule_active(rule.schedule, wall):
                self._forget(rule.id)
                continue
            idx = self._eligible(rule, names, best, sizes)
            if rule.anchor not in anchors:
                anchors[rule.anchor] = anchor_points(boxes, rule.anchor)
            points = anchors[rule.anchor]
            if isinstance(rule, LineCrossingRule):
                events += self._lines(rule, tracks, idx, points, t, geo)
                continue
            key = (rule.zone, rule.anchor)
            if key not in inside:
                inside[key] = inside_polygon(points, geo.polygons[rule.zone])
            if isinstance(rule, IntrusionRule):
                events += self._intrusion(rule, tracks, idx, inside[key], t)
            elif isinstance(rule, LoiteringRule):
                events += self._loitering(rule, tracks, idx, inside[key], t)
            elif isinstance(rule, CrowdingRule):
                events += self._crowding(rule, tracks, idx, inside[key], t)
        if t - self._last_expiry >= 1.0:
            self._expire(t)
            self._last_expiry = t
        return events

    def _intrusion(self, rule: IntrusionRule, tracks: Sequence, idx: np.ndarray, inside: np.ndarray, t: float) -> list[RuleEvent]:
        events = []
        for k in idx:
            tr = tracks[k]
            st = self._visits.get((rule.id, tr.id))
            if st is None:
                if not inside[k]:
                    continue  # never inside: nothing to remember
                st = self._visits[(rule.id, tr.id)] = _Visit()
            if dwell_reached(st, bool(inside[k]), t, rule.dwell_s, rule.cooldown_s):
                events.append(RuleEvent(rule, t, st.inside_since, (tr,), zone=rule.zone))
        return events

    def _loitering(self, rule: LoiteringRule, tracks: Sequence, idx: np.ndarray, inside: np.ndarray, t: float) -> list[RuleEvent]:
        events = []
        for k in idx:
            if not inside[k]:
                continue
            tr = tracks[k]
            st = self._visits.get((rule.id, tr.id))
            if st is None:
                st = self._visits[(rule.id, tr.id)] = _Visit()
            st.last_seen = t
            if st.visit_start is None or t - st.last_inside > rule.max_gap_s:
                st.visit_start, st.alerted = t, False
            st.last_inside = t
            if not st.alerted and t - st.visit_start >= rule.min_duration_s and t - st.last_alert >= rule.cooldown_s:
                st.alerted, st.last_alert = True, t
                events.append(RuleEvent(rule, t, st.visit_start, (tr,), zone=rule.zone))
        return events

    def _lines(self, rule: LineCrossingRule, tracks: Sequence, idx: np.ndarray, points: np.ndarray, t: float,
               geo: _Geometry) -> list[RuleEvent]:
        line = self.camera.line(rule.line)
        a, b = geo.lines[rule.line]
        in_sign = 1 if line.in_side == "left" else -1
        wanted = rule.direction or line.direction
        events = []
        sides = side_of_line(points[idx], a, b).astype(int)
        for k, side in zip(idx, sides):
            tr = tracks[k]
            point = (float(points[k, 0]), float(points[k, 1]))
            st = self._crossings.get((rule.id, tr.id))
            if st is None:
                st = self._crossings[(rule.id, tr.id)] = _Crossing()
            st.last_seen = t
            if st.point is not None and side and st.side and side != st.side:
                crossed = crossing_direction(st.point, point, a, b, st.side, int(side))
                if crossed:
                    direction = "in" if crossed == in_sign else "out"
                    if wanted in (direction, "both") and t - st.last_alert >= rule.cooldown_s:
                        st.last_alert = t
                        events.append(RuleEvent(rule, t, t, (tr,), line=rule.line, direction=direction))
            st.point = point
            if side:
                st.side = int(side)
        return events

    def _crowding(self, rule: CrowdingRule, tracks: Sequence, idx: np.ndarray, inside: np.ndarray, t: float) -> list[RuleEvent]:
        st = self._crowds.setdefault(rule.id, _Crowd())
        present = tuple(tracks[k] for k in idx if inside[k])
        if len(present) > rule.max_count:
            if st.above_since is None:
                st.above_since = t
            st.last_above = t
            if not st.alerted and t - st.above_since >= rule.min_duration_s:
                st.alerted = True
                return [RuleEvent(rule, t, st.above_since, present, zone=rule.zone, count=len(present))]
        else:
            st.above_since = None
            if st.alerted and t - st.last_above > rule.cooldown_s:
                st.alerted = False
        return []

    def _forget(self, rule_id: str) -> None:
        """An inactive rule starts afresh when its schedule opens again."""
        for store in (self._visits, self._crossings):
            for key in [k for k in store if k[0] == rule_id]:
                del store[key]
        self._crowds.pop(rule_id, None)

    def _expire(self, t: float) -> None:
        cooldowns = {r.id: r.cooldown_s for r in self.camera.rules}
        for store in (self._visits, self._crossings):
            dead = [k for k, st in store.items() if t - st.last_seen > cooldowns.get(k[0], 0.0) + STATE_TTL_S]
            for k in dead:
                del store[k]
