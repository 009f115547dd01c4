"""Radar-camera fusion: which camera track and which radar (and AIS) target are one object.

Each frame:
1. every camera track's ground anchor is placed on the ground by the camera model, with a
   covariance that grows along the line of sight with distance;
2. every radar target is predicted to the frame's time, with its sensor's covariance (range
   sigma along the beam, range x bearing sigma across it);
3. a pair is possible only when both gates pass: the Mahalanobis distance between the two
   positions under their summed covariances, and the bearing from the camera, which a camera
   measures far better than range;
4. pair costs are smoothed over time (one bad frame does not break a good link), the link a
   track already has gets a bonus, and a global assignment (Hungarian) picks the pairs;
5. hysteresis: a new pairing must win `confirm_frames` frames in a row before it replaces a
   link, and a link survives `keep_s` seconds without support before it is dropped.
Radar targets are matched to AIS targets the same way (gated, assigned), so a fused object
carries the vessel's identity when its radar track has one.

Settled links: the global assignment (steps 3-4 over every track and target) runs every
`reassociate_s` seconds. In the frames between, a settled link — supported last frame, no
challenger pending — is only checked against its gates; the assignment runs over the other
tracks (new, unlinked, challenged, or whose link just failed its gates) and the targets no
settled link holds. A better pairing found by a global round makes the tracks it concerns
unsettled, so from the next frame on they are associated every frame again and the
hysteresis runs frame by frame as before. With `reassociate_s: 0` every frame is global.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from edge.geo import LocalFrame, bearing_of
from edge.radar.store import Snapshot, Target, TrackStore, pick

INFEASIBLE = 1e9


class FusionConfig(BaseModel):
    """How camera tracks and radar targets are paired."""

    model_config = ConfigDict(extra="forbid")

    gate: float = Field(9.21, gt=0, description="Largest Mahalanobis distance² of a pair (9.21: 99% for 2 dof).")
    bearing_sigma_deg: float = Field(0.5, gt=0, description="The camera's bearing accuracy (1 sigma).")
    bearing_gate: float = Field(3.0, gt=0, description="Largest bearing difference, in combined sigmas.")
    smoothing: float = Field(0.35, gt=0, le=1, description="Weight of the newest frame in a pair's smoothed cost.")
    link_bonus: float = Field(3.0, ge=0, description="Cost subtracted for the pair that is linked already.")
    confirm_frames: int = Field(3, ge=1, description="Frames a new pairing must win before it becomes the link.")
    keep_s: float = Field(1.5, ge=0, description="Seconds a link survives without support.")
    ais_gate_m: float = Field(60.0, gt=0, description="Largest radar-AIS distance for one vessel (before the gate).")
    velocity_sigma_mps: float = Field(
        0.6, gt=0, description="Expected difference of camera and radar velocities of one object (1 sigma)."
    )
    velocity_gate: float = Field(16.0, gt=0, description="Largest velocity difference², in sigmas² (16: 4 sigma).")
    velocity_window_s: float = Field(1.5, gt=0, description="Camera track positions the ground velocity is fitted over.")
    reassociate_s: float = Field(
        0.5, ge=0, le=10, description="Seconds between global associations of every camera track and radar target; "
        "in between, a settled link is only checked against its gates and the other tracks are associated every "
        "frame (0: a global association every frame)."
    )


@dataclass
class FusedObject:
    """One object as the post sees it: camera track, radar target and AIS identity, each optional."""

    camera_track: object | None
    radar: Target | None
    ais: Target | None
    east: float
    north: float
    sigma_m: float  # 1-sigma radius of the position
    speed_mps: float | None = None
    course_deg: float | None = None
    camera: str | None = None  # the camera whose track this is

    @property
    def sensors(self) -> tuple[str, ...]:
        return tuple(s for s, x in (("camera", self.camera_track), ("radar", self.radar), ("ais", self.ais)) if x is not None)

    @property
    def class_name(self) -> str:
        if self.camera_track is not None:
            return self.camera_track.class_name
        return "vessel" if self.ais is not None else "unknown"


_SUM_COLUMNS = np.arange(7)


class _GroundVelocities:
    """Every camera track's least-squares line (east, north against time) over a sliding window,
    for all tracks at once: per-track running sums in arrays (a row per track), each frame's
    positions added to them and subtracted again when the frame leaves the window. A row freed
    by a lost track is reused only after the window has passed, so no old frame touches a new
    track. Times are relative to each track's first, so the sums stay well conditioned."""

    SUMS = 7  # n, st, stt, se, sn, ste, stn

    def __init__(self, window_s: float, capacity: int = 64):
        self.window = window_s
        self.rows: dict[int, int] = {}  # track id -> row
        self.sums = np.zeros((capacity, self.SUMS))
        self.t0 = np.zeros(capacity)
        self.free = list(range(capacity - 1, -1, -1))
        self.cooling: deque = deque()  # (time the row is free again, row)
        self.frames: deque = deque()  # (t, rows, contributions (k, SUMS))
        self._ids: list[int] | None = None  # the last update's track ids, and their rows
        self._id_rows = np.zeros(0, np.int64)

    def _row(self, tid: int, t: float) -> int:
        while self.cooling and self.cooling[0][0] <= t:
            self.free.append(self.cooling.popleft()[1])
        if not self.free:
            cap = len(self.t0)
            self.sums = np.vstack([self.sums, np.zeros((cap, self.SUMS))])
            self.t0 = np.concatenate([self.t0, np.zeros(cap)])
            self.free = list(range(2 * cap - 1, cap - 1, -1))
        row = self.rows[tid] = self.free.pop()
        self.sums[row] = 0.0
        self.t0[row] = t
        return row

    def update(self, ids: list[int], pos: np.ndarray, t: float) -> np.ndarray:
        """This frame's positions (N, 2; NaN: not on the ground) -> (N, 2) velocities (NaN until a
        track has 3 positions over half a window)."""
        if ids == self._ids:  # the usual frame: the same tracks as the last one
            rows = self._id_rows
        else:
            alive = set(ids)
            for tid in [k for k in self.rows if k not in alive]:
                self.cooling.append((t + self.window, self.rows.pop(tid)))
            rows = np.array([self.rows[tid] if tid in self.rows else self._row(tid, t) for tid in ids], dtype=np.int64)
            self._ids, self._id_rows = list(ids), rows
        ok = np.isfinite(pos[:, 0] + pos[:, 1])
        r, p = (rows, pos) if ok.all() else (rows[ok], pos[ok])
        tt = t - self.t0.take(r)
        contrib = np.empty((len(r), self.SUMS))
        contrib[:, 0] = 1.0
        contrib[:, 1] = tt
        contrib[:, 2] = tt * tt
        contrib[:, 3:5] = p
        np.multiply(p, tt[:, None], out=contrib[:, 5:7])
        # By flat index: take() and put() cost a fraction of an indexed += on this numpy.
        flat, sums = (r[:, None] * self.SUMS + _SUM_COLUMNS).ravel(), self.sums.reshape(-1)
        contrib = contrib.reshape(-1)
        sums.put(flat, sums.take(flat) + contrib)
        self.frames.append((t, flat, contrib))
        while self.frames and self.frames[0][0] < t - self.window:
            _, old_flat, old = self.frames.popleft()
            sums.put(old_flat, sums.take(old_flat) - old)
        n, st, stt, se, sn, ste, stn = self.sums.take(rows, 0).T
        with np.errstate(divide="ignore", invalid="ignore"):
            var = stt - st * st / n
            out = np.empty((len(rows), 2))
            out[:, 0] = (ste - st * se / n) / var
            out[:, 1] = (stn - st * sn / n) / var
        ready = (n >= 3) & (t - self.t0.take(rows) >= self.window / 2) & (var > 1e-12)
        out[~ready] = np.nan
        return out


@dataclass
class _Link:
    radar: tuple[str, str]
    since: float
    last_support: float
    candidate: tuple[str, str] | None = None
    candidate_wins: int = 0


@dataclass
class FusionResult:
    links: dict[int, tuple[str, str]]  # camera track id -> radar target key
    ais_links: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # radar key -> AIS key
    radar: Snapshot | None = None
    ais: Snapshot | None = None
    build: Callable[[], list[FusedObject]] | None = None  # makes camera_objects, once, when first asked
    _camera: list[FusedObject] | None = None
    _objects: list[FusedObject] | None = None

    @property
    def camera_objects(self) -> list[FusedObject]:
        """This camera's tracks, each with its radar target when linked. Built when first asked:
        every frame associates, but the geo rules (2 Hz), an alert or a viewer read objects."""
        if self._camera is None:
            self._camera = self.build() if self.build is not None else []
        return self._camera

    @property
    def objects(self) -> list[FusedObject]:
        """The camera's objects, then every radar target no track here holds. Built on demand: a
        node merges several cameras' results (edge.fused_picture) and needs only camera_objects."""
        if self._objects is None:
            rest = radar_only(self.radar, self.ais, set(self.links.values()), self.ais_links) if self.radar is not None else []
            self._objects = self.camera_objects + rest
        return self._objects


def mahalanobis2(d: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """d (..., 2) under cov (..., 2, 2): the squared Mahalanobis distance, vectorised (2x2 inverse)."""
    a, b, c, e = cov[..., 0, 0], cov[..., 0, 1], cov[..., 1, 0], cov[..., 1, 1]
    det = a * e - b * c
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    x, y = d[..., 0], d[..., 1]
    return (e * x * x - (b + c) * x * y + a * y * y) / det


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest signed difference of bearings in degrees."""
    return (a - b + 180.0) % 360.0 - 180.0


class _PairCosts:
    """One frame's pair costs, for a block of pairs (rows x columns) or a list of pairs: the
    per-track and per-target terms are worked out once, into one matrix per side (camera track
    rows; radar target columns of the camera's view). On arrays this small numpy's cost is per
    call, not per element: the fewer calls, the faster."""

    # Camera side: east, north, cov ee, cov en, cov nn, velocity east and north over the velocity
    # sigma, bearing from the camera. Radar side: the same, then the bearing gate (gate x sigma)
    # and 1 / the bearing sigma.
    def __init__(self, config: FusionConfig, cam_pos, cam_cov, cam_vel, camera_en, radar: Snapshot, cols,
                 bearing: np.ndarray, dist: np.ndarray):
        cx, cy = camera_en
        per_sigma = 1.0 / config.velocity_sigma_mps
        cam = self.cam = np.empty((len(cam_pos), 8))
        cam[:, 0:2] = cam_pos
        cam[:, 2] = cam_cov[:, 0, 0]
        cam[:, 3] = cam_cov[:, 0, 1]  # both covariances are symmetric: [0, 1] is [1, 0]
        cam[:, 4] = cam_cov[:, 1, 1]
        np.multiply(cam_vel, per_sigma, out=cam[:, 5:7])
        # Bearing from the camera: the camera's strong measurement, checked on its own.
        cam[:, 7] = bearing_of(cam_pos[:, 0] - cx, cam_pos[:, 1] - cy)
        cov = radar.cov.take(cols, 0)
        rad = self.rad = np.empty((len(cols), 10))
        rad[:, 0] = radar.east.take(cols)
        rad[:, 1] = radar.north.take(cols)
        rad[:, 2] = cov[:, 0, 0]
        rad[:, 3] = cov[:, 0, 1]
        rad[:, 4] = cov[:, 1, 1]
        np.multiply(radar.velocity.take(cols, 0), per_sigma, out=rad[:, 5:7])
        rad[:, 7] = bearing
        radar_cross = np.sqrt(np.maximum(rad[:, 2] + rad[:, 4], 1e-6) / 2)  # ~1-sigma radius
        sigma_b = np.sqrt(config.bearing_sigma_deg ** 2 + np.degrees(radar_cross / np.maximum(dist, 1.0)) ** 2)
        rad[:, 8] = config.bearing_gate * sigma_b
        rad[:, 9] = 1.0 / sigma_b
        self.gate, self.velocity_gate = config.gate, config.velocity_gate

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(len(rows), len(cols)) costs of every pair of these tracks and targets."""
        return self._cost(self.cam.take(rows, 0)[:, None, :], self.rad.take(cols, 0)[None, :, :])

    def pairs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Costs of the pairs (rows[k], cols[k])."""
        return self._cost(self.cam.take(rows, 0), self.rad.take(cols, 0))

    def _cost(self, c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """INFEASIBLE where a gate refuses the pair."""
        x, y = r[..., 0] - c[..., 0], r[..., 1] - c[..., 1]
        # The squared Mahalanobis distance under the summed covariances (mahalanobis2, by
        # components; the sum of two covariances, one of them a radar's, is never singular).
        a, b, e = c[..., 2] + r[..., 2], c[..., 3] + r[..., 3], c[..., 4] + r[..., 4]
        d2 = ((e * x - 2 * b * y) * x + a * y * y) / np.maximum(a * e - b * b, 1e-12)
        db = np.abs(c[..., 7] - r[..., 7])
        db = np.minimum(db, 360.0 - db)  # bearings are in [0, 360)
        # Velocity: a walker and a drifting false plot can share a place, rarely a motion.
        vx, vy = c[..., 5] - r[..., 5], c[..., 6] - r[..., 6]
        dv2 = np.fmax(vx * vx + vy * vy, 0.0)  # NaN (a track too young for a velocity): judged on position
        ok = (d2 <= self.gate) & (db <= r[..., 8]) & (dv2 <= self.velocity_gate)
        db *= r[..., 9]
        return np.where(ok, d2 + db * db + dv2, INFEASIBLE)


class Fusion:
    """Pairs one camera's tracks with the radar picture, frame after frame."""

    def __init__(self, camera: str, model, store: TrackStore, config: FusionConfig | None = None,
                 anchor: str = "bottom_center"):
        self.camera = camera
        self.model = model
        self.store = store
        self.config = config or FusionConfig()
        self.anchor = anchor
        self._links: dict[int, _Link] = {}
        self._settled: dict[int, tuple[str, str]] = {}  # camera track id -> target of its settled link
        self._smoothed = np.zeros((0, 0))  # last frame's smoothed pair costs (NaN: out of the gate or never seen)
        self._ids: list[int] = []  # camera track id of each row of _smoothed
        self._keys: list[tuple[str, str]] = []  # radar target key of each column of _smoothed
        self._rows: dict[int, int] = {}  # camera track id -> row of _smoothed
        self._cols: dict[tuple[str, str], int] = {}  # radar target key -> column of _smoothed
        self._ground = _GroundVelocities(self.config.velocity_window_s)  # per camera track
        self._sector = None  # (centre bearing, half width) of the camera's view; False: unknown
        self._last_t: float | None = None  # the previous step's time
        self._next_global = -math.inf  # when the next global association is due
        self._last_global = -math.inf  # when the last one was

    def step(self, tracks, t: float) -> FusionResult:
        radar, ais = self.store.snapshot(t, kind="radar"), self.store.snapshot(t, kind="ais")
        ids = [tr.id for tr in tracks]
        if ids:
            boxes = np.array([tr.box for tr in tracks], dtype=np.float64).reshape(-1, 4)
            fix = self.model.anchor_to_ground(boxes, anchor=self.anchor, geo=False)  # lat/lon only for alerts
            cam_pos, cam_cov, on_ground = fix.east_north, fix.covariance, fix.valid
        else:
            cam_pos, cam_cov, on_ground = np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0, bool)
        cam_vel = self._ground_velocities(ids, cam_pos, t)
        # Only the targets in the camera's view can pair: the smoothed costs have their columns.
        cols, bearing, dist = self._in_view(radar)
        all_keys = radar.key_list()
        keys = all_keys if len(cols) == len(radar) else pick(all_keys, cols)
        arrived = ids != self._ids and not self._rows.keys() >= set(ids)  # a camera track new to the fusion
        self._carry(ids, keys)
        proposal: dict[int, tuple[str, str]] = {}
        if ids and keys:
            camera_en = self.model.camera_en if self.model.camera_en is not None else (0.0, 0.0)
            costs = _PairCosts(self.config, cam_pos, cam_cov, cam_vel, camera_en, radar, cols, bearing, dist)
            self._associate(ids, keys, on_ground, costs, self._global_due(t, arrived), proposal)
        self._update_links(ids, proposal, t)
        self._last_t = t
        ais_links = self._pair_ais(radar, ais)
        return self._result(tracks, ids, cam_pos, cam_cov, radar, ais, ais_links, t)

    def _ground_velocities(self, ids: list[int], cam_pos: np.ndarray, t: float) -> np.ndarray:
        """Each camera track's velocity on the ground (NaN until it has a short history): a least-
        squares line through its positions of the last `velocity_window_s`."""
        if self._ground.window != self.config.velocity_window_s:
            self._ground = _GroundVelocities(self.config.velocity_window_s)
        return self._ground.update(ids, cam_pos, t)

    def _global_due(self, t: float, arrived: bool) -> bool:
        """Whether this frame associates every track: each `reassociate_s`, when a camera track
        arrives (it may be the better partner of a target that a settled link holds), and after a
        jump back in time."""
        every = self.config.reassociate_s
        if every <= 0 or arrived or t >= self._next_global or self._last_t is None or t < self._last_t:
            self._next_global = t + every
            self._last_global = t
            return True
        return False

    def _carry(self, ids: list[int], keys: list[tuple[str, str]]) -> None:
        """Last frame's smoothed costs in this frame's rows (tracks) and columns (targets in view);
        NaN for a track or target new to them. No per-pair Python: looked up by id and key."""
        if ids == self._ids and keys == self._keys:
            return
        rows = np.array([self._rows.get(tid, -1) for tid in ids], dtype=np.int64)
        cols = np.array([self._cols.get(k, -1) for k in keys], dtype=np.int64)
        prev = np.full((len(ids), len(keys)), np.nan)
        r_ok, c_ok = (rows >= 0).nonzero()[0], (cols >= 0).nonzero()[0]
        if len(r_ok) and len(c_ok):
            prev[np.ix_(r_ok, c_ok)] = self._smoothed.take(rows.take(r_ok), 0).take(cols.take(c_ok), 1)
        self._smoothed = prev
        self._ids, self._keys = list(ids), list(keys)
        self._rows = {tid: i for i, tid in enumerate(ids)}
        self._cols = {k: j for j, k in enumerate(keys)}

    def _associate(self, ids, keys, on_ground: np.ndarray, costs: _PairCosts, everything: bool, proposal: dict) -> None:
        """Propose this frame's pairs. A global frame (`everything`) smooths the costs of every
        track on the ground with every target in view and lets one assignment (Hungarian) pick
        the pairs. Otherwise a settled link (made before the last global association, supported
        last frame, no challenger) that still passes its gates keeps its target, and the
        assignment runs over the other tracks and the targets no settled link holds."""
        m = len(keys)
        smoothed = self._smoothed
        free_rows = on_ground.copy()
        free_cols = np.ones(m, bool)
        if not everything and self._settled:
            col_of, settled = self._cols, self._settled
            held = [(i, j) for i, tid in enumerate(ids) if (j := col_of.get(settled.get(tid))) is not None]
            if held:
                ri, cj = np.array(held, np.int64).T
                flat = ri * m + cj
                s, _ = self._smooth(smoothed.take(flat), costs.pairs(ri, cj))
                smoothed.put(flat, s)
                ok = (s == s) & on_ground.take(ri)  # NaN: out of the gates
                free_rows[ri[ok]] = False
                free_cols[cj[ok]] = False
                for i, j in zip(ri[ok].tolist(), cj[ok].tolist()):
                    proposal[ids[i]] = keys[j]
        rows, cols = free_rows.nonzero()[0], free_cols.nonzero()[0]
        if len(rows) and len(cols):
            flat = (rows[:, None] * m + cols).ravel()
            s, out = self._smooth(smoothed.take(flat).reshape(len(rows), len(cols)), costs.block(rows, cols))
            smoothed.put(flat, s)
            self._assign(ids, keys, rows, cols, out, proposal)
        smoothed[~on_ground] = np.nan  # a track off the ground starts afresh when it lands again

    def _smooth(self, prev: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pair costs smoothed over time (exponentially): (the new smoothed costs, NaN out of the
        gate; the same with INFEASIBLE there). A pair that leaves the gate starts afresh if it
        comes back."""
        a = self.config.smoothing
        ok = cost < INFEASIBLE
        s = np.where(prev == prev, (1 - a) * prev + a * cost, cost)  # prev NaN: a pair new to the gate
        return np.where(ok, s, np.nan), np.where(ok, s, INFEASIBLE)

    def _assign(self, ids, keys, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, proposal: dict) -> None:
        """Give each track's current link its bonus, and let a global assignment (Hungarian)
        over the tracks and targets with a pair in a gate propose pairs."""
        bonus = self.config.link_bonus
        at = np.full(len(keys), -1, np.int64)
        at[cols] = np.arange(len(cols))
        at = at.tolist()
        links, col_of = self._links, self._cols
        for a, i in enumerate(rows.tolist()):
            link = links.get(ids[i])
            j = col_of.get(link.radar) if link is not None and link.radar is not None else None
            if j is not None and (b := at[j]) >= 0 and out[a, b] < INFEASIBLE:
                out[a, b] -= bonus
        gated = out < INFEASIBLE / 2
        rows_in, cols_in = np.logical_or.reduce(gated, 1).nonzero()[0], np.logical_or.reduce(gated, 0).nonzero()[0]
        if len(rows_in) and len(cols_in):
            sub = out.take(rows_in, 0).take(cols_in, 1)
            sub_rows, sub_cols = rows.take(rows_in).tolist(), cols.take(cols_in).tolist()
            for a, b in zip(*linear_sum_assignment(sub)):
                if sub[a, b] < INFEASIBLE / 2:
                    proposal[ids[sub_rows[a]]] = keys[sub_cols[b]]

    def _in_view(self, radar: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of the radar targets within the camera's horizontal view (with a margin wider
        than any bearing gate): the rest cannot pair, and a post's radar sees all around. With
        them, the targets' bearings and distances from the camera."""
        if not len(radar):
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        if self._sector is None:
            self._sector = _view_sector(self.model)
        cx, cy = self.model.camera_en if self.model.camera_en is not None else (0.0, 0.0)
        de, dn = radar.east - cx, radar.north - cy
        bearing, dist = bearing_of(de, dn), np.hypot(de, dn)
        if self._sector is False:
            return np.arange(len(radar)), bearing, dist
        centre, half = self._sector
        cols = ((np.abs(angle_diff(bearing, centre)) <= half) | (dist < 10.0)).nonzero()[0]
        if len(cols) == len(radar):
            return cols, bearing, dist
        return cols, bearing.take(cols), dist.take(cols)

    def _update_links(self, ids: list[int], proposal: dict[int, tuple[str, str]], t: float) -> None:
        cfg = self.config
        for tid in ids:
            want = proposal.get(tid)
            link = self._links.get(tid)
            if link is None:
                if want is None:
                    continue
                link = self._links[tid] = _Link(radar=want, since=t, last_support=t, candidate=want, candidate_wins=1)
                if cfg.confirm_frames > 1:
                    link.radar = None  # not linked yet: a candidate
                continue
            if want is not None and want == link.radar:
                link.last_support, link.candidate, link.candidate_wins = t, None, 0
                continue
            if want is not None:
                if want == link.candidate:
                    link.candidate_wins += 1
                else:
                    link.candidate, link.candidate_wins = want, 1
                if link.candidate_wins >= cfg.confirm_frames:
                    link.radar, link.since, link.last_support = want, t, t
                    link.candidate, link.candidate_wins = None, 0
                    continue
            if link.radar is not None and t - link.last_support > cfg.keep_s:
                link.radar = None
        alive = set(ids)
        for tid in [k for k in self._links if k not in alive]:
            link = self._links[tid]
            if link.radar is None or t - link.last_support > cfg.keep_s:
                del self._links[tid]  # the camera track is gone (or lost for long)
        # One radar target links to one camera track: the older link keeps it (the first made,
        # of links made at the same time).
        holders: dict[tuple[str, str], list[int]] = {}
        contested = False
        for tid, link in self._links.items():
            if link.radar is not None:
                if link.radar in holders:
                    holders[link.radar].append(tid)
                    contested = True
                else:
                    holders[link.radar] = [tid]
        if contested:
            for tids in holders.values():
                if len(tids) > 1:
                    keeper = min(tids, key=lambda tid: self._links[tid].since)
                    for tid in tids:
                        if tid != keeper:
                            self._links[tid].radar = None

    def _pair_ais(self, radar: Snapshot, ais: Snapshot) -> dict[tuple[str, str], tuple[str, str]]:
        return pair_ais(radar, ais, self.config)

    def _result(self, tracks, ids, cam_pos, cam_cov, radar: Snapshot, ais: Snapshot, ais_links, t: float) -> FusionResult:
        """This frame's links, and the settled ones for the next frame; the fused objects are built
        when first asked for."""
        links: dict[int, tuple[str, str]] = {}
        settled: dict[int, tuple[str, str]] = {}
        in_view, present = self._cols, None
        last_global = self._last_global
        for tid in ids:
            link = self._links.get(tid)
            if link is None or link.radar is None:
                continue
            key = link.radar
            if key not in in_view:
                if present is None:
                    present = set(radar.key_list())
                if key not in present:
                    continue
            links[tid] = key
            if link.candidate is None and link.last_support == t and link.since <= last_global:
                settled[tid] = key
        self._settled = settled
        tracks = list(tracks)

        def build() -> list[FusedObject]:
            objects: list[FusedObject] = []
            keys = radar.key_list()
            by_key = dict(zip(keys, range(len(keys))))
            pairs = [(i, by_key[links[tid]]) for i, tid in enumerate(ids) if tid in links]
            alone = [i for i, tid in enumerate(ids) if tid not in links]
            ais_by_key = dict(zip(ais.key_list(), ais.targets)) if len(ais) else {}
            if pairs:
                ci, rj = np.array(pairs).T
                # The radar's position, refined by the camera's (inverse-covariance weighting).
                p, cov = combine(cam_pos[ci], cam_cov[ci], np.stack([radar.east[rj], radar.north[rj]], 1), radar.cov[rj])
                sig = np.sqrt(np.maximum((cov[:, 0, 0] + cov[:, 1, 1]) / 2, 0.0)).tolist()
                for k, (i, j) in enumerate(pairs):
                    tg = radar.targets[j]
                    objects.append(FusedObject(tracks[i], tg, ais_by_key.get(ais_links.get(tg.key)), float(p[k, 0]),
                                               float(p[k, 1]), sig[k], tg.speed_mps, tg.course_deg, self.camera))
            if alone:
                cam_sig = np.sqrt(np.maximum((cam_cov[:, 0, 0] + cam_cov[:, 1, 1]) / 2, 0.0))
                for i in alone:
                    if not np.isfinite(cam_pos[i]).all():
                        continue  # not on the ground (sky, far horizon): no place in the fused picture
                    objects.append(FusedObject(tracks[i], None, None, float(cam_pos[i, 0]), float(cam_pos[i, 1]),
                                               float(cam_sig[i]), camera=self.camera))
            return objects

        return FusionResult(links, ais_links, radar, ais, build)


def _view_sector(model) -> tuple[float, float] | bool:
    """The camera's horizontal view as (centre bearing, half width + 10 degrees), or False when the
    camera's position or image size is unknown (every target is then a candidate)."""
    size = getattr(model, "image_size", None)
    if model.camera_en is None or size is None:
        return False
    w, h = size
    u = np.linspace(0, w - 1, 9)
    rows = [model.bearing_of_pixel(u, np.full_like(u, v)) for v in (0.0, (h - 1) / 2, h - 1)]
    if any(r is None for r in rows):
        return False
    b = np.concatenate(rows)
    b = b[np.isfinite(b)]
    if not len(b):
        return False
    centre = float(np.degrees(np.arctan2(np.sin(np.radians(b)).mean(), np.cos(np.radians(b)).mean()))) % 360
    half = float(np.abs(angle_diff(b, centre)).max())
    return (centre, min(180.0, half + 10.0))


def pair_ais(radar: Snapshot, ais: Snapshot, config: FusionConfig) -> dict[tuple[str, str], tuple[str, str]]:
    """Radar target key -> AIS target key for the vessels both see (gated, one to one)."""
    if not len(radar) or not len(ais):
        return {}
    rpos = np.stack([radar.east, radar.north], 1)
    apos = np.stack([ais.east, ais.north], 1)
    d = apos[None, :, :] - rpos[:, None, :]
    d2 = mahalanobis2(d, radar.cov[:, None] + ais.cov[None, :])
    near = np.hypot(d[..., 0], d[..., 1]) <= config.ais_gate_m
    cost = np.where((d2 <= config.gate) & near, d2, INFEASIBLE)
    rows, cols = linear_sum_assignment(cost)
    rk, ak = radar.key_list(), ais.key_list()
    return {rk[i]: ak[j] for i, j in zip(rows, cols) if cost[i, j] < INFEASIBLE / 2}


def radar_only(radar: Snapshot, ais: Snapshot, linked: set, ais_links: dict) -> list[FusedObject]:
    """The radar targets no camera track holds, as fused objects (with their AIS identity)."""
    ais_by_key = dict(zip(ais.key_list(), ais.targets)) if len(ais) and ais_links else {}
    sigma = np.sqrt(np.maximum((radar.cov[:, 0, 0] + radar.cov[:, 1, 1]) / 2, 0.0)).tolist() if len(radar) else []
    east, north = radar.east.tolist(), radar.north.tolist()
    keys = radar.key_list()
    return [FusedObject(None, tg, ais_by_key.get(ais_links.get(keys[j])) if ais_links else None, east[j], north[j],
                        sigma[j], tg.speed_mps, tg.course_deg)
            for j, tg in enumerate(radar.targets) if keys[j] not in linked]


def inv2(c: np.ndarray) -> np.ndarray:
    """Inverses of (..., 2, 2) matrices in closed form (np.linalg.inv is slow on many small ones)."""
    a, b, cc, d = c[..., 0, 0], c[..., 0, 1], c[..., 1, 0], c[..., 1, 1]
    det = a * d - b * cc
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    return np.stack([np.stack([d, -b], -1), np.stack([-cc, a], -1)], -2) / det[..., None, None]


def combine(p1: np.ndarray, c1: np.ndarray, p2: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-covariance weighted mean of two position estimates (N, 2) with covariances (N, 2, 2)."""
    i1, i2 = inv2(c1), inv2(c2)
    cov = inv2(i1 + i2)
    return np.einsum("nij,nj->ni", cov, np.einsum("nij,nj->ni", i1, p1) + np.einsum("nij,nj->ni", i2, p2)), cov


def geo_of(frame: LocalFrame, obj: FusedObject) -> tuple[float, float]:
    lat, lon = frame.to_geo(obj.east, obj.north)
    return float(lat), float(lon)
