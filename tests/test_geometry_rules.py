"""Zone geometry and alert rules on hand-computed cases: no video, real Track objects."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from edge.config import parse_config
from edge.geometry import (
    anchor_points,
    crossing_direction,
    inside_polygon,
    polygon_self_intersection,
    side_of_line,
    to_pixels,
)
from edge.rules import RuleEngine, schedule_active
from edge.track import Track

SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10)]
# A U shape open at the top: the notch x 4..6, y 0..6 is outside.
U_SHAPE = [(0, 0), (4, 0), (4, 6), (6, 6), (6, 0), (10, 0), (10, 10), (0, 10)]


# -- geometry ------------------------------------------------------------------------------


def test_anchor_points():
    box = np.array([[10, 20, 30, 60]])
    assert anchor_points(box, "bottom_center").tolist() == [[20, 60]]
    assert anchor_points(box, "center").tolist() == [[20, 40]]
    assert anchor_points(box, "top_center").tolist() == [[20, 20]]
    assert anchor_points(box, "bottom_left").tolist() == [[10, 60]]


def test_point_exactly_on_an_edge_or_corner_is_inside():
    pts = np.array([[10, 5], [0, 0], [5, 10], [10.0001, 5], [5, -0.0001]])
    assert inside_polygon(pts, SQUARE).tolist() == [True, True, True, False, False]


def test_concave_polygon():
    pts = np.array([[5, 3], [5, 8], [2, 3], [8, 3], [4, 3], [5, 6]])
    # the notch, below the notch, both arms, the notch's wall, the notch's floor
    assert inside_polygon(pts, U_SHAPE).tolist() == [False, True, True, True, True, True]


def test_normalized_coordinates_scale_to_the_picture():
    assert to_pixels([(0.5, 0.25), (1, 1)], "normalized", 1280, 720).tolist() == [[640, 180], [1280, 720]]
    assert to_pixels([(3, 4)], "pixels", 1280, 720).tolist() == [[3, 4]]


def test_side_of_line_as_seen_on_the_picture():
    a, b = (0, 0), (10, 0)  # walking right along the top: "up" on the picture is on the left
    assert side_of_line(np.array([[5, -3], [5, 3], [5, 0]]), a, b).tolist() == [1, -1, 0]


def test_crossing_through_and_around_the_segment():
    a, b = (0, 0), (10, 0)
    assert crossing_direction((5, 3), (5, -3), a, b, prev_side=-1) == 1  # onto the left
    assert crossing_direction((5, -3), (5, 3), a, b, prev_side=1) == -1
    assert crossing_direction((15, 3), (15, -3), a, b, prev_side=-1) == 0  # beyond the end
    assert crossing_direction((5, 3), (5, 0), a, b, prev_side=-1) == 0  # resting on the line
    assert crossing_direction((5, 0), (5, -2), a, b, prev_side=-1) == 1  # ...then stepping off it


def test_self_intersecting_polygons_are_found():
    assert polygon_self_intersection(SQUARE) is None
    assert polygon_self_intersection(U_SHAPE) is None
    assert polygon_self_intersection([(0, 0), (10, 0), (0, 10), (10, 10)]) == (1, 3)


# -- schedules -----------------------------------------------------------------------------


def _schedule(**kw):
    cfg = parse_config(
        "node: {site: s, id: n}\ncameras: [{id: c, source: x, zones: [{id: z, points: [[0,0],[1,0],[1,1]]}], "
        "rules: [{id: r, type: intrusion, zone: z, schedule: %s}]}]" % kw
    )
    return cfg.cameras[0].rules[0].schedule


@pytest.mark.parametrize(
    "when,active",
    [
        ("2026-11-20 21:59", False),  # Friday, before the window
        ("2026-11-20 22:00", True),  # Friday night
        ("2026-11-21 05:59", True),  # Saturday morning: still Friday's window
        ("2026-11-21 06:00", False),
        ("2026-11-21 23:00", False),  # Saturday night: no window starts on Saturday
        ("2026-11-22 02:00", False),  # ...so none on Sunday morning either
        ("2026-11-19 03:00", True),  # Thursday morning: Wednesday's window
    ],
)
def test_schedule_across_midnight(when, active):
    s = _schedule(days=["wed", "thu", "fri"], start="22:00", end="06:00")
    assert schedule_active(s, dt.datetime.fromisoformat(when)) is active


def test_schedule_all_day_and_daytime():
    assert schedule_active(_schedule(days=["sun"]), dt.datetime(2026, 11, 22, 3, 0))
    assert not schedule_active(_schedule(days=["sun"]), dt.datetime(2026, 11, 23, 3, 0))
    day = _schedule(start="08:00", end="18:00")
    assert schedule_active(day, dt.datetime(2026, 11, 23, 8, 0)) and not schedule_active(day, dt.datetime(2026, 11, 23, 18, 0))


# -- rules ---------------------------------------------------------------------------------

WALL = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


def camera(rules: str, zones: str = "[{id: z, points: [[0,0],[100,0],[100,100],[0,100]]}]", lines: str = "[]"):
    return parse_config(
        f"node: {{site: s, id: n}}\ncameras: [{{id: c, source: x, zones: {zones}, lines: {lines}, rules: {rules}}}]"
    ).cameras[0]


class Walker:
    """A real Track moved by hand: its box's bottom-centre is placed at (x, y)."""

    def __init__(self, track_id: int, cls: str = "person", score: float = 0.9, w: float = 10, h: float = 20):
        self.w, self.h = w, h
        self.track = Track(track_id, 0, cls, np.array([0, 0, w, h], np.float32), score, 0.0, 64)

    def at(self, x: float, y: float, t: float) -> Track:
        tr = self.track
        tr.box = np.array([x - self.w / 2, y - self.h, x + self.w / 2, y], np.float32)
        tr.last_seen = t
        tr.history.append((t, tuple(tr.box.tolist()), tr.score))
        return tr


def run(engine: RuleEngine, steps) -> list[tuple[float, str, tuple]]:
    """steps: [(t, [(walker, x, y), ...]), ...], each walker moved just before its frame is
    evaluated -> [(t, rule id, track ids), ...] of the events."""
    out = []
    for t, moves in steps:
        tracks = [w.at(x, y, t) for w, x, y in moves]
        for e in engine.evaluate(tracks, t, WALL, (200, 200)):
            out.append((t, e.rule.id, tuple(tr.id for tr in e.tracks)))
    return out


def test_intrusion_needs_an_unbroken_dwell():
    eng = RuleEngine(camera("[{id: r, type: intrusion, zone: z, dwell_s: 1.0, cooldown_s: 5}]"))
    p = Walker(1)
    steps = [(0.0, [(p, 150, 50)]), (0.5, [(p, 50, 50)]), (1.0, [(p, 50, 50)]),
             (1.2, [(p, 150, 50)]), (1.4, [(p, 50, 50)]), (2.3, [(p, 50, 50)]),
             (2.4, [(p, 50, 50)]), (3.0, [(p, 50, 50)])]
    # In at 0.5, out at 1.2 before 1 s; back in at 1.4: the dwell completes at 2.4, once.
    assert run(eng, steps) == [(2.4, "r", (1,))]


def test_intrusion_re_entry_after_the_cooldown_is_a_new_event():
    eng = RuleEngine(camera("[{id: r, type: intrusion, zone: z, dwell_s: 0, cooldown_s: 5}]"))
    p = Walker(1)
    steps = [(0.0, [(p, 50, 50)]), (1.0, [(p, 150, 50)]),  # leaves briefly
             (2.0, [(p, 50, 50)]),  # back within the cooldown: same visit, no alert
             (3.0, [(p, 150, 50)]), (9.0, [(p, 150, 50)]),  # away 6 s > 5 s
             (9.5, [(p, 50, 50)])]  # a new visit...
    steps += [(float(t), [(p, 50, 50)]) for t in range(10, 31)]  # ...and staying is not re-alerted
    assert run(eng, steps) == [(0.0, "r", (1,)), (9.5, "r", (1,))]


def test_rule_filters_class_score_and_size():
    eng = RuleEngine(camera("[{id: r, type: intrusion, zone: z, classes: [person], min_score: 0.5, min_size: 15, max_size: 30}]"))
    car, weak, tiny, huge, ok = Walker(1, "car"), Walker(2, score=0.3), Walker(3, w=5, h=10), Walker(4, w=10, h=40), Walker(5)
    steps = [(0.0, [(w, 50, 50) for w in (car, weak, tiny, huge, ok)])]
    assert run(eng, steps) == [(0.0, "r", (5,))]


def test_line_crossed_back_and_forth():
    lines = "[{id: l, points: [[0, 100], [200, 100]], in_side: right, direction: both}]"
    eng = RuleEngine(camera("[{id: r, type: line_crossing, line: l, cooldown_s: 0}]", lines=lines))
    p = Walker(1)
    ys = [80, 90, 110, 120, 95, 85, 100, 100, 105, 120]
    events = []
    for i, y in enumerate(ys):
        t = float(i)
        events += [(t, e.direction) for e in eng.evaluate([p.at(50, y, t)], t, WALL, (200, 200))]
    # Down across y=100 (onto the right of a->b, "in"), back up, onto the line and off it downwards.
    assert events == [(2.0, "in"), (4.0, "out"), (8.0, "in")]


def test_line_direction_of_interest_and_cooldown():
    lines = "[{id: l, points: [[0, 100], [200, 100]], in_side: right, direction: in}]"
    eng = RuleEngine(camera("[{id: r, type: line_crossing, line: l, cooldown_s: 5}]", lines=lines))
    p = Walker(1)
    ys = [90, 110, 90, 110, 90, 90, 90, 110]  # in at 1, out at 2, in at 3 (cooldown), ..., in at 7
    events = []
    for i, y in enumerate(ys):
        events += [(float(i), e.direction) for e in eng.evaluate([p.at(50, y, float(i))], float(i), WALL, (200, 200))]
    assert events == [(1.0, "in"), (7.0, "in")]


def test_crossing_beyond_the_segment_end_does_not_count():
    lines = "[{id: l, points: [[0, 100], [100, 100]]}]"
    eng = RuleEngine(camera("[{id: r, type: line_crossing, line: l}]", lines=lines))
    p = Walker(1)
    assert run(eng, [(0.0, [(p, 150, 90)]), (1.0, [(p, 150, 110)])]) == []


def test_loitering_forgives_short_gaps():
    eng = RuleEngine(camera("[{id: r, type: loitering, zone: z, min_duration_s: 10, max_gap_s: 3}]"))
    p = Walker(1)
    steps = [(float(t), [(p, 50 if t not in (4, 5) else 150, 50)]) for t in range(0, 12)]
    assert run(eng, steps) == [(10.0, "r", (1,))]  # out at 4-5 s (< 3 s gap): the clock kept running
    eng2 = RuleEngine(camera("[{id: r, type: loitering, zone: z, min_duration_s: 10, max_gap_s: 3}]"))
    q = Walker(2)
    steps2 = [(float(t), [(q, 50 if not 2 <= t <= 6 else 150, 50)]) for t in range(0, 18)]
    assert run(eng2, steps2) == [(17.0, "r", (2,))]  # away 5 s: restarted at 7 s


def test_crowding_fires_once_and_re_arms_after_the_cooldown():
    eng = RuleEngine(camera("[{id: r, type: crowding, zone: z, max_count: 2, min_duration_s: 1, cooldown_s: 2}]"))
    people = [Walker(i) for i in range(1, 5)]

    def crowd(n: int, t: float):
        return [(w, 20 * i + 10, 50) for i, w in enumerate(people[:n])]

    steps = [(0.0, crowd(3, 0.0)), (0.5, crowd(3, 0.5)), (1.0, crowd(3, 1.0)), (1.5, crowd(4, 1.5)),
             (2.0, crowd(2, 2.0)), (3.0, crowd(3, 3.0)), (4.0, crowd(3, 4.0)),  # dip of 1 s < cooldown: no re-arm
             (5.0, crowd(1, 5.0)), (8.0, crowd(1, 8.0)), (9.0, crowd(3, 9.0)), (10.0, crowd(3, 10.0))]
    assert run(eng, steps) == [(1.0, "r", (1, 2, 3)), (10.0, "r", (1, 2, 3))]


def test_schedule_gates_a_rule_and_it_starts_afresh():
    eng = RuleEngine(camera("[{id: r, type: intrusion, zone: z, dwell_s: 2, schedule: {start: '12:00', end: '13:00'}}]"))
    p = Walker(1)
    before = dt.datetime(2026, 11, 23, 11, 59, 59, tzinfo=dt.timezone.utc)
    assert eng.evaluate([p.at(50, 50, 0.0)], 0.0, before, (200, 200)) == []
    assert eng.evaluate([p.at(50, 50, 1.0)], 1.0, WALL, (200, 200)) == []  # window opens: dwell starts now
    assert eng.evaluate([p.at(50, 50, 2.5)], 2.5, WALL, (200, 200)) == []
    assert [e.time for e in eng.evaluate([p.at(50, 50, 3.0)], 3.0, WALL, (200, 200))] == [3.0]


def test_reconfigure_keeps_state_of_unchanged_rules():
    cam = camera("[{id: a, type: intrusion, zone: z, dwell_s: 0}, {id: b, type: intrusion, zone: z, dwell_s: 0}]")
    eng = RuleEngine(cam)
    p = Walker(1)
    assert len(eng.evaluate([p.at(50, 50, 0.0)], 0.0, WALL, (200, 200))) == 2
    eng.reconfigure(camera("[{id: a, type: intrusion, zone: z, dwell_s: 0}, {id: b, type: intrusion, zone: z, dwell_s: 0.5}]"))
    # a is unchanged: the track is still in the same visit. b changed: a fresh start.
    assert [e.rule.id for e in eng.evaluate([p.at(50, 50, 1.0)], 1.0, WALL, (200, 200))] == []
    assert [e.rule.id for e in eng.evaluate([p.at(50, 50, 1.5)], 1.5, WALL, (200, 200))] == ["b"]
