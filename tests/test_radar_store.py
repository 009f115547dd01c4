"""The track store's snapshot: what the fusion reads every frame, built from the store's arrays
(and, while no target comes or goes, from the last snapshot's lists of targets)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.geo import LocalFrame
from edge.radar.reports import TargetReport
from edge.radar.store import SensorAccuracy, TrackStore

FRAME = LocalFrame(45.815, 15.9819)


def add(store: TrackStore, target: str, t: float, east: float, north: float, *, source="radar", kind="radar",
        speed=None, course=None) -> None:
    lat, lon = FRAME.to_geo(east, north)
    store.add(TargetReport(source, kind, target, t, lat=float(lat), lon=float(lon), speed_mps=speed, course_deg=course))


def by_hand(store: TrackStore, now: float, kind: str) -> dict:
    """What a snapshot must hold, from the store's targets one by one."""
    out = {}
    for tg in store.targets(kind):
        if not tg.has_position or now - tg.updated > store.sensor(tg.source).stale_s:
            continue
        dt = max(0.0, now - tg.updated)
        out[tg.key] = (tg, tg.east + tg.velocity[0] * dt, tg.north + tg.velocity[1] * dt)
    return out


def test_snapshots_follow_targets_that_come_go_and_reuse_rows():
    store = TrackStore(FRAME, {"radar": SensorAccuracy(stale_s=5.0, origin=(0.0, 0.0)), "ais": SensorAccuracy(stale_s=60.0)})
    rng = np.random.default_rng(2)
    for step in range(60):
        t = float(step)
        for i in rng.choice(40, size=12, replace=False):  # a dozen reports a second, targets drop out and return
            add(store, f"{i:02d}", t, *rng.uniform(-500, 500, 2), speed=float(rng.uniform(0, 5)), course=float(rng.uniform(0, 360)))
        if step % 7 == 0:
            add(store, f"2440{step:05d}", t, *rng.uniform(-500, 500, 2), source="ais", kind="ais")
        if step % 3 == 0:
            store.expire(t)
        for kind in ("radar", "ais"):
            for now in (t, t + 0.5):
                snap, expected = store.snapshot(now, kind=kind), by_hand(store, now, kind)
                assert set(snap.key_list()) == set(expected) and len(snap) == len(expected)
                for j, key in enumerate(snap.key_list()):
                    tg, east, north = expected[key]
                    assert snap.targets[j] is tg and (snap.kind[j] == kind)
                    assert snap.east[j] == pytest.approx(east) and snap.north[j] == pytest.approx(north)
                    grown = 0.25 * max(0.0, now - tg.updated) ** 2
                    assert snap.cov[j, 0, 1] == snap.cov[j, 1, 0]
                    assert snap.cov[j, 0, 0] + snap.cov[j, 1, 1] >= 2 * grown
        both = store.snapshot(t)
        assert sorted(both.key_list()) == sorted(store.snapshot(t, kind="radar").key_list() + store.snapshot(t, kind="ais").key_list())
    assert store.quality(60.0)["radar"]["expired"] > 0, "targets came and went"


def test_a_snapshot_is_the_reader_s_own():
    store = TrackStore(FRAME, {"radar": SensorAccuracy(origin=(0.0, 0.0))})
    add(store, "01", 0.0, 100.0, 0.0)
    first = store.snapshot(1.0)
    with pytest.raises(AttributeError):  # its targets are a read-only view (brought up to date when read)
        first.targets.clear()
    first.key_list().clear()
    first.cov[:] = math.nan
    again = store.snapshot(1.0)
    assert [t.target for t in again.targets] == ["01"] and again.key_list() == [("radar", "01")]
    assert np.isfinite(again.cov).all()
    assert len(store.snapshot(1.0, kind="ais")) == 0


def test_a_row_freed_by_an_expired_target_and_taken_by_a_new_one_is_the_new_one():
    store = TrackStore(FRAME, {"radar": SensorAccuracy(stale_s=2.0, origin=(0.0, 0.0))})
    add(store, "01", 0.0, 100.0, 0.0)
    assert [t.target for t in store.snapshot(0.5, kind="radar").targets] == ["01"]
    assert store.expire(3.0) == 1
    add(store, "02", 3.0, 0.0, 200.0)  # takes the row "01" had: the same rows, another target
    snap = store.snapshot(3.5, kind="radar")
    assert [t.target for t in snap.targets] == ["02"] and snap.key_list() == [("radar", "02")]
    assert snap.north[0] == pytest.approx(200.0, abs=1e-6)
