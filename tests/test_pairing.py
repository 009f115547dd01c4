"""The fusion's compiled pair arithmetic against the formulas written out in numpy, and the
ground velocities against a least-squares fit of each track's window."""

from __future__ import annotations

import math

import numpy as np

from edge import pairing
from edge.ground_velocity import GroundVelocities

GATE, VELOCITY_GATE, SMOOTHING, BONUS = 9.21, 16.0, 0.35, 3.0
BEARING_SIGMA, BEARING_GATE, PER_SIGMA = 0.5, 3.0, 1 / 0.6


def _scene(rng, n=30, m=60):
    """Camera tracks and radar targets around a camera at (5, -3), half of the targets near a track."""
    cam_pos = np.c_[rng.uniform(-40, 40, n), rng.uniform(20, 120, n)]
    cam_pos[rng.random(n) < 0.1] = np.nan  # off the ground
    a = rng.uniform(0.2, 4, n)
    cam_cov = np.stack([np.c_[a, a * 0.3], np.c_[a * 0.3, a * 2]], 1)
    cam_vel = rng.normal(0, 1.5, (n, 2))
    cam_vel[rng.random(n) < 0.2] = np.nan  # too young for a velocity
    near = cam_pos[rng.integers(0, n, m // 2)] + rng.normal(0, 1.5, (m // 2, 2))
    far = np.c_[rng.uniform(-150, 150, m - m // 2), rng.uniform(-20, 200, m - m // 2)]
    pos = np.r_[near, far]
    pos[~np.isfinite(pos)] = 50.0
    r = rng.uniform(1, 9, m)
    cov = np.stack([np.c_[r, -r * 0.2], np.c_[-r * 0.2, r * 1.5]], 1)
    vel = rng.normal(0, 1.5, (m, 2))
    return cam_pos, cam_cov, cam_vel, pos[:, 0].copy(), pos[:, 1].copy(), cov, vel


def _reference_costs(cam_pos, cam_cov, cam_vel, camera, east, north, cov, vel):
    """Every pair's cost by the fusion's formulas, in plain numpy (pairing's docstring)."""
    x = east[None, :] - cam_pos[:, 0:1]
    y = north[None, :] - cam_pos[:, 1:2]
    a = cam_cov[:, None, 0, 0] + cov[None, :, 0, 0]
    b = cam_cov[:, None, 0, 1] + cov[None, :, 0, 1]
    e = cam_cov[:, None, 1, 1] + cov[None, :, 1, 1]
    d2 = (e * x * x - 2 * b * x * y + a * y * y) / (a * e - b * b)
    bc = np.degrees(np.arctan2(cam_pos[:, 0] - camera[0], cam_pos[:, 1] - camera[1])) % 360
    br = np.degrees(np.arctan2(east - camera[0], north - camera[1])) % 360
    dist = np.hypot(east - camera[0], north - camera[1])
    db = np.abs(bc[:, None] - br[None, :])
    db = np.minimum(db, 360 - db)
    cross = np.sqrt((cov[:, 0, 0] + cov[:, 1, 1]) / 2)
    sigma_b = np.sqrt(BEARING_SIGMA ** 2 + np.degrees(cross / np.maximum(dist, 1.0)) ** 2)
    dv = (cam_vel[:, None, :] - vel[None, :, :]) * PER_SIGMA
    dv2 = np.nan_to_num((dv ** 2).sum(-1), nan=0.0)
    ok = (d2 <= GATE) & (db <= BEARING_GATE * sigma_b[None, :]) & (dv2 <= VELOCITY_GATE)
    return np.where(ok, d2 + (db / sigma_b[None, :]) ** 2 + dv2, pairing.INFEASIBLE)


def _kernel(rng, smoothed, held=(), link_col=None):
    cam_pos, cam_cov, cam_vel, east, north, cov, vel = _scene(rng)
    camera = (5.0, -3.0)
    cols, bearing, dist = pairing.in_view(east, north, camera[0], camera[1], 0.0, 360.0)
    cam = pairing.camera_terms(cam_pos, cam_cov, cam_vel, camera[0], camera[1], PER_SIGMA)
    rad = pairing.radar_terms(east, north, cov, vel, cols, bearing, dist, PER_SIGMA, BEARING_SIGMA, BEARING_GATE)
    on_ground = np.isfinite(cam_pos).all(1)
    n = len(cam_pos)
    link_col = np.full(n, -1, np.int64) if link_col is None else link_col
    hr, hc = np.array(held, np.int64).reshape(-1, 2).T.copy()
    out = pairing.associate_pairs(cam, rad, smoothed, on_ground, hr, hc, link_col, GATE, VELOCITY_GATE, SMOOTHING, BONUS)
    ref = _reference_costs(cam_pos, cam_cov, cam_vel, camera, east, north, cov, vel)
    return out, ref, on_ground


def test_pair_costs_are_the_fusions_formulas():
    rng = np.random.default_rng(3)
    smoothed = np.full((30, 60), np.nan)
    (held_ok, rows, cols, sub), ref, on_ground = _kernel(rng, smoothed)
    gated = ref < pairing.INFEASIBLE
    assert 20 < gated.sum() < ref.size / 2  # a scene with pairs in and out of the gates
    # A pair new to the gate: its smoothed cost is its cost; out of the gates: NaN.
    np.testing.assert_allclose(smoothed[on_ground], np.where(gated, ref, np.nan)[on_ground], rtol=1e-9)
    assert np.isnan(smoothed[~on_ground]).all()
    # The assignment's problem: exactly the rows and columns with a pair in a gate.
    g = gated & on_ground[:, None]
    assert rows.tolist() == np.flatnonzero(g.any(1)).tolist()
    assert cols.tolist() == np.flatnonzero(g.any(0)).tolist()
    np.testing.assert_allclose(sub, ref[np.ix_(rows, cols)], rtol=1e-9)


def test_smoothing_bonus_and_held_pairs():
    rng = np.random.default_rng(5)
    prev = np.full((30, 60), 2.0)
    smoothed = prev.copy()
    (_, _, _, _), ref, on_ground = _kernel(rng, smoothed)
    gated = ref < pairing.INFEASIBLE
    expected = np.where(gated, (1 - SMOOTHING) * 2.0 + SMOOTHING * ref, np.nan)
    np.testing.assert_allclose(smoothed[on_ground], expected[on_ground], rtol=1e-9)

    # The same scene again: a held (settled) pair in its gates keeps its row and column out of
    # the assignment; a track's current link gets the bonus.
    i, j = map(int, np.argwhere(gated & on_ground[:, None])[0])
    others = np.argwhere(gated & on_ground[:, None])
    k, l2 = next((int(a), int(b)) for a, b in others if a != i and b != j)
    link_col = np.full(30, -1, np.int64)
    link_col[k] = l2
    smoothed = np.full((30, 60), np.nan)
    (held_ok, rows, cols, sub), ref, _ = _kernel(np.random.default_rng(5), smoothed, held=[(i, j)], link_col=link_col)
    assert held_ok.tolist() == [True]
    assert i not in rows.tolist() and j not in cols.tolist()
    a, b = rows.tolist().index(k), cols.tolist().index(l2)
    assert math.isclose(sub[a, b], ref[k, l2] - BONUS, rel_tol=1e-9)


def test_targets_in_view_are_those_within_the_sector():
    east = np.array([0.0, 100.0, -100.0, 0.0, 3.0])
    north = np.array([100.0, 0.0, 0.0, -100.0, -4.0])
    cols, bearing, dist = pairing.in_view(east, north, 0.0, 0.0, 45.0, 50.0)  # 355..95 degrees
    assert cols.tolist() == [0, 1, 4]  # north, east, and the one within 10 m of the camera
    np.testing.assert_allclose(bearing, [0.0, 90.0, math.degrees(math.atan2(3, -4)) % 360])
    np.testing.assert_allclose(dist, [100.0, 100.0, 5.0])


def test_ground_velocities_are_each_tracks_least_squares_line_over_the_window():
    rng = np.random.default_rng(1)
    gv = GroundVelocities(1.5)
    fps = 10.0
    history: dict[int, list] = {}
    truth = {tid: rng.normal(0, 2, 2) for tid in range(1, 40)}
    checked = 0
    for k in range(60):
        t = k / fps
        ids = [tid for tid in truth if (tid + k // 20) % 3 != 0]  # tracks come and go
        pos = np.array([truth[tid] * t + rng.normal(0, 0.3, 2) for tid in ids])
        pos[rng.random(len(ids)) < 0.05] = np.nan  # off the ground this frame
        for tid in [tid for tid in history if tid not in ids]:
            del history[tid]  # a lost track starts afresh when it comes back
        for tid, p in zip(ids, pos):
            history.setdefault(tid, []).append((t, *p))
        vel = gv.update(ids, pos, t)
        for tid, v in zip(ids, vel):
            window = np.array([h for h in history[tid] if h[0] >= t - 1.5 and np.isfinite(h[1])])
            span = t - history[tid][0][0]
            if len(window) >= 3 and span >= 0.75:
                fit = [np.polyfit(window[:, 0], window[:, c], 1)[0] for c in (1, 2)]
                np.testing.assert_allclose(v, fit, atol=1e-6)
                checked += 1
            else:
                assert np.isnan(v).all()
    assert checked > 500


def test_the_stores_snapshot_with_radar_view_is_the_snapshot_and_radar_side_of_it():
    """pairing.radar_view run by TrackStore.snapshot_with (the fusion's one call per frame) gives
    the store's snapshot and radar_side of it, to the bit, for live, stale and unplaced targets."""
    from edge.geo import LocalFrame
    from edge.radar.reports import TargetReport
    from edge.radar.store import SensorAccuracy, TrackStore

    store = TrackStore(LocalFrame(45.815, 15.9819), {"r": SensorAccuracy(origin=(0.0, 0.0), stale_s=10.0)})
    assert store.snapshot_with(100.0, "radar", None, pairing.radar_view, (0.0, 0.0, 10.0, 40.0, PER_SIGMA,
                                                                          BEARING_SIGMA, BEARING_GATE))[1] is None
    rng = np.random.default_rng(3)
    for i in range(80):
        t = 100.0 - (15.0 if i % 9 == 0 else rng.uniform(0, 5))  # every ninth is stale at 100 s
        store.add(TargetReport("r", "radar", f"{i:02d}", t, range_m=float(rng.uniform(5, 900)),
                               bearing_deg=float(rng.uniform(0, 360)), speed_mps=float(rng.uniform(0, 8)),
                               course_deg=float(rng.uniform(0, 360))))
    store.add(TargetReport("r", "radar", "nowhere", 99.0))  # no position: not placed
    args = (3.0, -2.0, 10.0, 40.0, PER_SIGMA, BEARING_SIGMA, BEARING_GATE)
    snap, (cols, rad) = store.snapshot_with(100.0, "radar", None, pairing.radar_view, args)
    plain = store.snapshot(100.0, kind="radar")
    assert 0 < len(snap) < 80 and snap.key_list() == plain.key_list()
    for a, b in ((snap.east, plain.east), (snap.north, plain.north), (snap.velocity, plain.velocity), (snap.cov, plain.cov)):
        np.testing.assert_array_equal(a, b)
    want_cols, want_rad = pairing.radar_side(plain.east, plain.north, plain.cov, plain.velocity, *args)
    assert 0 < len(cols) < len(snap)
    np.testing.assert_array_equal(cols, want_cols)
    np.testing.assert_array_equal(rad, want_rad)


def test_fused_places_are_the_inverse_covariance_weighted_means():
    """fusion.places: a linked pair's place is the inverse-covariance weighted mean of the camera's
    and the radar's positions, its sigma that of the combined covariance; an unlinked track keeps
    its own place and sigma."""
    from edge.fusion import places

    rng = np.random.default_rng(5)
    cam_pos, cam_cov, _, east, north, cov, _ = _scene(rng, n=12, m=20)
    cam_pos = np.nan_to_num(cam_pos, nan=7.0)
    pair_cam, pair_radar, alone = np.array([0, 3, 4, 9]), np.array([5, 0, 19, 2]), np.array([1, 2, 11])
    pos, sig = places(cam_pos, cam_cov, pair_cam, pair_radar, east, north, cov, alone)
    assert pos.shape == (7, 2) and sig.shape == (7,)
    for k, (i, j) in enumerate(zip(pair_cam, pair_radar)):
        i1, i2 = np.linalg.inv(cam_cov[i]), np.linalg.inv(cov[j])
        c = np.linalg.inv(i1 + i2)
        want = c @ (i1 @ cam_pos[i] + i2 @ np.array([east[j], north[j]]))
        np.testing.assert_allclose(pos[k], want, rtol=1e-9, atol=1e-9)
        assert math.isclose(sig[k], math.sqrt((c[0, 0] + c[1, 1]) / 2), rel_tol=1e-9)
        assert sig[k] < math.sqrt((cam_cov[i, 0, 0] + cam_cov[i, 1, 1]) / 2), "two sensors know better than one"
    np.testing.assert_array_equal(pos[4:], cam_pos[alone])
    np.testing.assert_array_equal(sig[4:], np.sqrt((cam_cov[alone, 0, 0] + cam_cov[alone, 1, 1]) / 2))
