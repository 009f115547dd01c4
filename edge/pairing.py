"""The fusion's per-frame arithmetic on camera-track x radar-target pairs, compiled (numba).

Each frame the fusion gates, costs and smooths every pair of a camera's tracks (tens) and the
radar targets in its view (tens to hundreds). In numpy that is some sixty calls on arrays of a
few thousand elements, and on arrays this small numpy's cost is per call, not per element: the
step took a fifth of a camera frame's time on a 2-core node. One compiled loop over the pairs
does the same arithmetic in a few microseconds, and releases the GIL while it runs, so the
camera's detection threads are not held up by it (numba: a maintained compiler for exactly
this, numpy arrays in, numpy arrays out; written by hand in C it would need a build step).

The formulas, pair by pair (c: the camera track's ground fix, r: the radar target):
- position: the squared Mahalanobis distance of the two positions under their summed
  covariances, gated by `gate`;
- bearing from the camera: |difference| on the circle, gated by `bearing_gate` combined sigmas
  (the camera's bearing sigma and the radar's cross-range sigma seen from the camera);
- velocity: the squared difference of the two ground velocities in sigmas, gated by
  `velocity_gate`; a track too young for a velocity (NaN) is judged on position and bearing;
- cost = d2 + (bearing difference / sigma)^2 + velocity difference^2, or INFEASIBLE;
- smoothed = (1 - a) * last frame's smoothed + a * cost (the cost alone for a pair new to the
  gate); a pair outside a gate loses its history (NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from edge.radar.store import live_predicted

INFEASIBLE = 1e9


@njit(cache=True, nogil=True)
def in_view(east, north, cx, cy, centre, half):
    """The targets within `half` degrees of the bearing `centre` from the camera at (cx, cy), or
    within 10 m of it: (their indices, bearings from the camera, distances)."""
    m = len(east)
    cols = np.empty(m, np.int64)
    bearing = np.empty(m)
    dist = np.empty(m)
    k = 0
    for j in range(m):
        de, dn = east[j] - cx, north[j] - cy
        b = math.degrees(math.atan2(de, dn)) % 360.0
        d = math.hypot(de, dn)
        off = abs((b - centre + 180.0) % 360.0 - 180.0)
        if off <= half or d < 10.0:
            cols[k], bearing[k], dist[k] = j, b, d
            k += 1
    return cols[:k].copy(), bearing[:k].copy(), dist[:k].copy()


@njit(cache=True, nogil=True)
def radar_terms(radar_east, radar_north, radar_cov, radar_vel, cols, bearing, dist, per_sigma, bearing_sigma_deg,
                 bearing_gate):
    """The radar side of every pair, a row per target in view: east, north, covariance (ee, en,
    nn), velocity in sigmas (e, n), bearing from the camera, the bearing gate, 1 / bearing sigma."""
    m = len(cols)
    rad = np.empty((m, 10))
    for k in range(m):
        j = cols[k]
        rad[k, 0] = radar_east[j]
        rad[k, 1] = radar_north[j]
        rad[k, 2] = radar_cov[j, 0, 0]
        rad[k, 3] = radar_cov[j, 0, 1]
        rad[k, 4] = radar_cov[j, 1, 1]
        rad[k, 5] = radar_vel[j, 0] * per_sigma
        rad[k, 6] = radar_vel[j, 1] * per_sigma
        rad[k, 7] = bearing[k]
        cross = math.sqrt(max(rad[k, 2] + rad[k, 4], 1e-6) / 2)  # ~1-sigma radius
        across = math.degrees(cross / max(dist[k], 1.0))
        sigma_b = math.sqrt(bearing_sigma_deg * bearing_sigma_deg + across * across)
        rad[k, 8] = bearing_gate * sigma_b
        rad[k, 9] = 1.0 / sigma_b
    return rad


@njit(cache=True, nogil=True)
def radar_side(east, north, cov, vel, cx, cy, centre, half, per_sigma, bearing_sigma_deg, bearing_gate):
    """in_view and radar_terms in one call: (the indices of the targets in view, their terms)."""
    cols, bearing, dist = in_view(east, north, cx, cy, centre, half)
    return cols, radar_terms(east, north, cov, vel, cols, bearing, dist, per_sigma, bearing_sigma_deg, bearing_gate)


@njit(cache=True, nogil=True)
def radar_view(placed, updated, stale, num, now, max_age, cx, cy, centre, half, per_sigma, bearing_sigma_deg,
               bearing_gate):
    """A TrackStore.snapshot_with kernel: the store's live targets predicted to `now`
    (edge.radar.store.live_predicted) and radar_side of them, in one call (the fusion asks for
    both every frame): (rows, east, north, velocity, covariance, indices in view, their terms)."""
    idx, east, north, vel, cov = live_predicted(placed, updated, stale, num, now, max_age)
    cols, rad = radar_side(east, north, cov, vel, cx, cy, centre, half, per_sigma, bearing_sigma_deg, bearing_gate)
    return idx, east, north, vel, cov, cols, rad


@njit(cache=True, nogil=True)
def camera_terms(cam_pos, cam_cov, cam_vel, camera_e, camera_n, per_sigma):
    """The camera side: east, north, covariance (ee, en, nn), velocity in sigmas, bearing."""
    n = len(cam_pos)
    cam = np.empty((n, 8))
    for i in range(n):
        cam[i, 0] = cam_pos[i, 0]
        cam[i, 1] = cam_pos[i, 1]
        cam[i, 2] = cam_cov[i, 0, 0]
        cam[i, 3] = cam_cov[i, 0, 1]  # symmetric: [0, 1] is [1, 0]
        cam[i, 4] = cam_cov[i, 1, 1]
        cam[i, 5] = cam_vel[i, 0] * per_sigma
        cam[i, 6] = cam_vel[i, 1] * per_sigma
        cam[i, 7] = math.degrees(math.atan2(cam_pos[i, 0] - camera_e, cam_pos[i, 1] - camera_n)) % 360.0
    return cam


@njit(cache=True, nogil=True, inline="always")
def _cost(c, r, gate, velocity_gate):
    x, y = r[0] - c[0], r[1] - c[1]
    a, b, e = c[2] + r[2], c[3] + r[3], c[4] + r[4]
    d2 = ((e * x - 2 * b * y) * x + a * y * y) / max(a * e - b * b, 1e-12)
    db = abs(c[7] - r[7])
    db = min(db, 360.0 - db)  # bearings are in [0, 360)
    vx, vy = c[5] - r[5], c[6] - r[6]
    dv2 = vx * vx + vy * vy
    if dv2 != dv2:
        dv2 = 0.0  # a track too young for a velocity: judged on position and bearing
    if d2 <= gate and db <= r[8] and dv2 <= velocity_gate:
        db *= r[9]
        return d2 + db * db + dv2
    return INFEASIBLE


@njit(cache=True, nogil=True, inline="always")
def _smoothed(prev, cost, a):
    """(new smoothed cost, NaN out of the gate; the same with INFEASIBLE there)."""
    if cost >= INFEASIBLE:
        return np.nan, INFEASIBLE
    s = (1 - a) * prev + a * cost if prev == prev else cost
    return s, s


@njit(cache=True, nogil=True)
def associate_pairs(cam, rad, smoothed, on_ground, held_rows, held_cols, link_col, gate, velocity_gate, smoothing,
                    bonus):
    """One frame's pair work, `smoothed` (tracks x targets in view) updated in place.

    Held pairs (a settled link each: held_rows[k], held_cols[k]) are costed and smoothed first;
    those still in their gates keep their track and target out of the rest. Every other track on
    the ground is then costed against every target not held, the pair a track is linked to
    already gets `bonus` off, and what comes back is the assignment's problem: its rows and
    columns (indices into tracks and targets) and their cost matrix, keeping only the rows and
    columns with at least one pair in a gate. Tracks off the ground lose their smoothed costs.

    Returns (held_ok, rows, cols, costs)."""
    n, m = smoothed.shape
    free_row = on_ground.copy()
    free_col = np.ones(m, np.bool_)
    held_ok = np.zeros(len(held_rows), np.bool_)
    for k in range(len(held_rows)):
        i, j = held_rows[k], held_cols[k]
        s, _ = _smoothed(smoothed[i, j], _cost(cam[i], rad[j], gate, velocity_gate), smoothing)
        smoothed[i, j] = s
        if s == s and on_ground[i]:
            held_ok[k] = True
            free_row[i] = False
            free_col[j] = False
    rows = np.nonzero(free_row)[0]
    cols = np.nonzero(free_col)[0]
    out = np.empty((len(rows), len(cols)))
    row_in = np.zeros(len(rows), np.bool_)
    col_in = np.zeros(len(cols), np.bool_)
    for a in range(len(rows)):
        i = rows[a]
        for b in range(len(cols)):
            j = cols[b]
            s, o = _smoothed(smoothed[i, j], _cost(cam[i], rad[j], gate, velocity_gate), smoothing)
            smoothed[i, j] = s
            if o < INFEASIBLE:
                if link_col[i] == j:
                    o -= bonus
                row_in[a] = True
                col_in[b] = True
            out[a, b] = o
    for i in range(n):
        if not on_ground[i]:
            smoothed[i, :] = np.nan  # a track off the ground starts afresh when it lands again
    ra, cb = np.nonzero(row_in)[0], np.nonzero(col_in)[0]
    sub = np.empty((len(ra), len(cb)))
    for a in range(len(ra)):
        for b in range(len(cb)):
            sub[a, b] = out[ra[a], cb[b]]
    return held_ok, rows[ra], cols[cb], sub


@njit(cache=True, nogil=True)
def associate(cam_pos, cam_cov, cam_vel, cx, cy, per_sigma, rad, smoothed, on_ground, held_rows, held_cols, link_col,
              gate, velocity_gate, smoothing, bonus):
    """camera_terms and associate_pairs in one call (a frame's whole pair work)."""
    cam = camera_terms(cam_pos, cam_cov, cam_vel, cx, cy, per_sigma)
    return associate_pairs(cam, rad, smoothed, on_ground, held_rows, held_cols, link_col, gate, velocity_gate,
                           smoothing, bonus)
