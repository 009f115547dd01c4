"""Incidents: which alerts describe one object, on cases worked out by hand; then the correlator
that keeps the store's incidents up to date (new, joined, merged, reopened)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from central.console_tables import incidents
from central.correlator import Correlator
from central.incidents import IncidentRules, Sighting, distance_m, family, group, same_object, summarise
from central.store import Store
from edge.contract import Position
from test_central_store import make_alert

UTC = dt.timezone.utc
T = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
RULES = IncidentRules(distance_m=100, time_slack_s=30)
M_PER_DEG = 6_371_008.8 * 3.141592653589793 / 180  # 111,195 m per degree of latitude


def s(i, fam="person", start=0, end=10, lat=45.0, lon=15.0, track=None):
    return Sighting(str(i), fam, T + dt.timedelta(seconds=start), T + dt.timedelta(seconds=end), lat, lon, track)


def test_distances_by_hand():
    assert distance_m(45.0, 15.0, 45.001, 15.0) == pytest.approx(0.001 * M_PER_DEG, rel=1e-6)  # 111.2 m north
    # At 60 degrees a degree of longitude is half a degree of latitude long.
    assert distance_m(60.0, 15.0, 60.0, 15.002) == pytest.approx(0.002 * M_PER_DEG * 0.5, rel=1e-4)


@pytest.mark.parametrize("dlat,together", [
    (0.0005, True),    # 55.6 m
    (0.0008, True),    # 89.0 m
    (0.0009, False),   # 100.08 m: just over
    (0.001, False),    # 111.2 m
])
def test_distance_threshold(dlat, together):
    assert same_object(s("a"), s("b", lat=45.0 + dlat), RULES) is together


@pytest.mark.parametrize("start,end,together", [
    (5, 20, True),     # overlapping spans
    (40, 50, True),    # 30 s gap: each side widened by 30 s
    (70, 80, True),    # 60 s gap: the widened spans touch
    (71, 80, False),   # 61 s gap
])
def test_time_overlap_with_slack(start, end, together):
    assert same_object(s("a", start=0, end=10), s("b", start=start, end=end), RULES) is together


def test_class_families():
    assert family("truck") == family("car") == "vehicle" and family("boat") == "vessel" and family("kayak") == "kayak"
    assert not same_object(s("a", "person"), s("b", "vehicle"), RULES)
    assert same_object(s("a", "person"), s("b", "unknown"), RULES)  # a radar-only track may be that person
    assert same_object(s("a", "vehicle"), s("b", "vehicle"), RULES)


def test_without_a_position_only_the_same_track_groups():
    track = ("post", "node-1", "cam-1", 7)
    assert same_object(s("a", lat=None, lon=None, track=track), s("b", lat=None, lon=None, track=track, start=500,
                                                                  end=510), RULES)
    assert not same_object(s("a", lat=None, lon=None), s("b", lat=None, lon=None), RULES)
    assert not same_object(s("a"), s("b", lat=None, lon=None), RULES)


def test_groups_are_single_linkage_and_sorted():
    # a-b 66.7 m, b-c 66.7 m, a-c 133 m: one incident through b. d is a car there, e is far away.
    step = 0.0006
    sightings = [s("a"), s("b", lat=45.0 + step), s("c", lat=45.0 + 2 * step), s("d", "vehicle"),
                 s("e", lat=46.0), s("f", "vehicle", start=20, end=30, lat=45.0 + step / 2)]
    assert group(sightings, RULES) == [["a", "b", "c"], ["d", "f"]]


def test_summary_of_an_incident():
    a = {"id": "1", "site": "p1", "node": "n1", "camera": "c1", "rule": "r1", "class": "person", "severity": "medium",
         "time": "2026-01-01T12:00:10Z", "first_seen": "2026-01-01T12:00:00Z", "last_seen": "2026-01-01T12:00:10Z",
         "position": {"lat": 45.0, "lon": 15.0}, "sensors": ["camera"]}
    b = {**a, "id": "2", "site": "p2", "node": "n7", "camera": "c3", "class": "unknown", "severity": "critical",
         "last_seen": "2026-01-01T12:00:40Z", "position": {"lat": 45.001, "lon": 15.002}, "sensors": ["radar"]}
    out = summarise([a, b])
    assert out["lat"] == pytest.approx(45.0005) and out["lon"] == pytest.approx(15.001)
    assert out["severity"] == "critical" and out["family"] == "person" and out["alert_count"] == 2
    assert out["last_time"] == dt.datetime(2026, 1, 1, 12, 0, 40, tzinfo=UTC)
    assert out["summary"]["sensors"] == ["camera", "radar"] and out["summary"]["sites"] == ["p1", "p2"]


# --- the correlator on a real store --------------------------------------------------------------

def placed(i, lat, lon=15.0, *, cls="person", camera="cam-1", node="node-1", t=None):
    a = make_alert(i, cls=cls, camera=camera, node=node, t=t or T + dt.timedelta(seconds=i))
    return a.model_copy(update={"position": Position(lat=lat, lon=lon, sigma_m=3.0), "track_id": 1000 + i})


def stored_dicts(store, alerts):
    store.add_alerts([(a, T) for a in alerts])
    return store.get_alerts([a.id for a in alerts])


@pytest.fixture
def store(tmp_path):
    st = Store(f"sqlite:///{tmp_path / 'c.db'}")
    yield st
    st.close()


def test_correlator_creates_joins_merges_and_reopens(store):
    c = Correlator(store.engine, RULES, lookback_s=3600)
    # Two posts see a person 33 m apart: a new incident.
    pair = [placed(1, 45.0, camera="cam-1"), placed(2, 45.0003, node="node-2")]
    first = c.process(stored_dicts(store, pair))
    assert len(first) == 1
    inc = first[0]
    assert [a["incident_id"] for a in store.get_alerts([a.id for a in pair])] == [inc, inc]
    # An alert 300 m away: an incident of its own later, not this one.
    far = c.process(stored_dicts(store, [placed(3, 45.0027)]))
    assert far == []
    # A fourth alert next to the far one: a second incident.
    (second,) = c.process(stored_dicts(store, [placed(4, 45.0030)]))
    assert second != inc
    with store.engine.begin() as conn:
        conn.execute(incidents.update().where(incidents.c.id == inc).values(acknowledged_at=T, acknowledged_by="ana"))
    # An alert between the two groups (each within 100 m of a member) merges them into the older.
    (merged,) = c.process(stored_dicts(store, [placed(5, 45.0011), placed(6, 45.0019)]))  # 89 m steps
    assert merged == min(inc, second)
    with store.engine.connect() as conn:
        rows = conn.execute(select(incidents)).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["alert_count"] == 6 and row["acknowledged_at"] is None  # news since the acknowledgement: open again
    assert json.loads(row["summary"])["nodes"] == ["river-post/node-1", "river-post/node-2"]
    assert row["revision"] == 2  # created, then joined by the merge


def test_correlator_keeps_different_objects_apart(store):
    c = Correlator(store.engine, RULES, lookback_s=3600)
    assert c.process(stored_dicts(store, [placed(1, 45.0), placed(2, 45.0, cls="car"),
                                          placed(3, 45.0, t=T + dt.timedelta(minutes=10))])) == []
