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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from edge.geo import LocalFrame, bearing_of
from edge.radar.store import Snapshot, Target, TrackStore

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
        alive = set(ids)
        for tid in [k for k in self.rows if k not in alive]:
            self.cooling.append((t + self.window, self.rows.pop(tid)))
        rows = np.array([self.rows[tid] if tid in self.rows else self._row(tid, t) for tid in ids], dtype=np.int64)
        ok = np.isfinite(pos).all(axis=1)
        r, p = rows[ok], pos[ok]
        tt = t - self.t0[r]
        contrib = np.column_stack([np.ones(len(r)), tt, tt * tt, p[:, 0], p[:, 1], tt * p[:, 0], tt * p[:, 1]])
        self.sums[r] += contrib
        self.frames.append((t, r, contrib))
        while self.frames and self.frames[0][0] < t - self.window:
            _, old_rows, old = self.frames.popleft()
            self.sums[old_rows] -= old
        n, st, stt, se, sn, ste, stn = self.sums[rows].T
        with np.errstate(divide="ignore", invalid="ignore"):
            var = stt - st * st / n
            out = np.column_stack([(ste - st * se / n) / var, (stn - st * sn / n) / var])
        ready = (n >= 3) & (t - self.t0[rows] >= self.window / 2) & (var > 1e-12)
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
        self._smoothed = np.zeros((0, 0))  # last frame's smoothed pair costs (NaN: out of the gate)
        self._rows: dict[int, int] = {}  # camera track id -> row of _smoothed
        self._cols: dict[tuple[str, str], int] = {}  # radar target key -> column of _smoothed
        self._ground = _GroundVelocities(self.config.velocity_window_s)  # per camera track
        self._sector = None  # (centre bearing, half width) of the camera's view; False: unknown

    def step(self, tracks, t: float) -> FusionResult:
        everything = self.store.snapshot(t)
        radar, ais = everything.of_kind("radar"), everything.of_kind("ais")
        boxes = np.array([tr.box for tr in tracks], dtype=np.float64).reshape(-1, 4)
        if len(tracks):
            fix = self.model.anchor_to_ground(boxes, anchor=self.anchor, geo=False)  # lat/lon only for alerts
            cam_pos, cam_cov = np.asarray(fix.east_north, float).reshape(-1, 2), np.asarray(fix.covariance, float).reshape(-1, 2, 2)
            on_ground = np.asarray(fix.valid, bool).reshape(-1)
        else:
            cam_pos, cam_cov, on_ground = np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0, bool)
        cam_vel = self._ground_velocities(tracks, cam_pos, t)
        # Only the targets in the camera's view can pair: every matrix below has their columns.
        cols = self._in_view(radar)
        view = radar if len(cols) == len(radar) else radar.take(cols)
        keys = view.key_list()
        if len(tracks) and len(view):
            cost = self._costs(cam_pos, cam_cov, cam_vel, view)
        else:
            cost = np.full((len(tracks), len(view)), INFEASIBLE)
        cost[~on_ground] = INFEASIBLE  # an anchor above the horizon has no place on the ground
        ids = [tr.id for tr in tracks]
        smoothed = self._smooth(ids, keys, cost)
        proposal: dict[int, tuple[str, str]] = {}
        gated = smoothed < INFEASIBLE / 2
        rows_in, cols_in = np.flatnonzero(gated.any(axis=1)), np.flatnonzero(gated.any(axis=0))
        if len(rows_in) and len(cols_in):  # the assignment over the tracks and targets with a pair in a gate
            sub = smoothed[np.ix_(rows_in, cols_in)]
            for i, j in zip(*linear_sum_assignment(sub)):
                if sub[i, j] < INFEASIBLE / 2:
                    proposal[ids[rows_in[i]]] = keys[cols_in[j]]
        self._update_links(ids, proposal, t)
        ais_links = self._pair_ais(radar, ais)
        return self._objects(tracks, cam_pos, cam_cov, radar, ais, ais_links)

    def _ground_velocities(self, tracks, cam_pos: np.ndarray, t: float) -> np.ndarray:
        """Each camera track's velocity on the ground (NaN until it has a short history): a least-
        squares line through its positions of the last `velocity_window_s`."""
        if self._ground.window != self.config.velocity_window_s:
            self._ground = _GroundVelocities(self.config.velocity_window_s)
        return self._ground.update([tr.id for tr in tracks], cam_pos, t)

    def _smooth(self, ids: list[int], keys: list[tuple[str, str]], cost: np.ndarray) -> np.ndarray:
        """Pair costs smoothed over time (exponentially, per camera track and radar target), the
        current link's bonus applied; a pair that leaves the gate starts afresh if it comes back.
        Kept as last frame's matrix, looked up by track id and target key: no per-pair Python."""
        cfg = self.config
        rows = np.array([self._rows.get(tid, -1) for tid in ids], dtype=np.int64)
        cols = np.array([self._cols.get(k, -1) for k in keys], dtype=np.int64)
        prev = np.full(cost.shape, np.nan)
        r_ok, c_ok = np.flatnonzero(rows >= 0), np.flatnonzero(cols >= 0)
        if len(r_ok) and len(c_ok):
            prev[np.ix_(r_ok, c_ok)] = self._smoothed[np.ix_(rows[r_ok], cols[c_ok])]
        feasible = cost < INFEASIBLE
        s = np.where(np.isnan(prev), cost, (1 - cfg.smoothing) * prev + cfg.smoothing * cost)
        self._smoothed = np.where(feasible, s, np.nan)
        self._rows = {tid: i for i, tid in enumerate(ids)}
        self._cols = {k: j for j, k in enumerate(keys)}
        out = np.where(feasible, s, INFEASIBLE)
        for i, tid in enumerate(ids):
            link = self._links.get(tid)
            j = self._cols.get(link.radar) if link is not None and link.radar is not None else None
            if j is not None and feasible[i, j]:
                out[i, j] -= cfg.link_bonus
        return out

    def _in_view(self, radar: Snapshot) -> np.ndarray:
        """Indices of the radar targets within the camera's horizontal view (with a margin wider
        than any bearing gate): the rest cannot pair, and a post's radar sees all around."""
        if not len(radar):
            return np.zeros(0, np.int64)
        if self._sector is None:
            self._sector = _view_sector(self.model)
        if self._sector is False:
            return np.arange(len(radar))
        centre, half = self._sector
        cx, cy = self.model.camera_en
        de, dn = radar.east - cx, radar.north - cy
        off = np.abs(angle_diff(bearing_of(de, dn), centre))
        return np.flatnonzero((off <= half) | (np.hypot(de, dn) < 10.0))

    def _costs(self, cam_pos: np.ndarray, cam_cov: np.ndarray, cam_vel: np.ndarray, radar: Snapshot) -> np.ndarray:
        cfg = self.config
        n, m = len(cam_pos), len(radar)
        if not n or not m:
            return np.full((n, m), INFEASIBLE)
        rpos = np.stack([radar.east, radar.north], 1)
        d = rpos[None, :, :] - cam_pos[:, None, :]
        d2 = mahalanobis2(d, cam_cov[:, None] + radar.cov[None, :])
        # Bearing from the camera: the camera's strong measurement, checked on its own.
        cx, cy = self.model.camera_en if self.model.camera_en is not None else (0.0, 0.0)
        b_cam = bearing_of(cam_pos[:, 0] - cx, cam_pos[:, 1] - cy)
        b_rad = bearing_of(rpos[:, 0] - cx, rpos[:, 1] - cy)
        dist = np.hypot(rpos[:, 0] - cx, rpos[:, 1] - cy)
        radar_cross = np.sqrt(np.maximum(radar.cov[:, 0, 0] + radar.cov[:, 1, 1], 1e-6) / 2)  # ~1-sigma radius
        sigma_b = np.sqrt(cfg.bearing_sigma_deg ** 2 + np.degrees(radar_cross / np.maximum(dist, 1.0)) ** 2)
        db = np.abs(angle_diff(b_cam[:, None], b_rad[None, :]))
        # Velocity: a walker and a drifting false plot can share a place, rarely a motion.
        dv2 = ((cam_vel[:, None, :] - radar.velocity[None, :, :]) ** 2).sum(-1) / cfg.velocity_sigma_mps ** 2
        dv2 = np.where(np.isnan(dv2), 0.0, dv2)  # a track too young for a velocity is judged on position
        ok = (d2 <= cfg.gate) & (db <= cfg.bearing_gate * sigma_b[None, :]) & (dv2 <= cfg.velocity_gate)
        return np.where(ok, d2 + (db / sigma_b[None, :]) ** 2 + dv2, INFEASIBLE)

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
        for tid in [k for k in self._links if k not in ids]:
            link = self._links[tid]
            if link.radar is None or t - link.last_support > cfg.keep_s:
                del self._links[tid]  # the camera track is gone (or lost for long)
        # One radar target links to one camera track: the older link keeps it.
        owner: dict[tuple[str, str], int] = {}
        for tid, link in sorted(self._links.items(), key=lambda kv: kv[1].since):
            if link.radar is None:
                continue
            if link.radar in owner:
                link.radar = None
            else:
                owner[link.radar] = tid

    def _pair_ais(self, radar: Snapshot, ais: Snapshot) -> dict[tuple[str, str], tuple[str, str]]:
        return pair_ais(radar, ais, self.config)

    def _objects(self, tracks, cam_pos, cam_cov, radar: Snapshot, ais: Snapshot, ais_links) -> FusionResult:
        by_key = {k: i for i, k in enumerate(radar.key_list())}
        ais_by_key = dict(zip(ais.key_list(), ais.targets)) if len(ais) else {}
        links: dict[int, tuple[str, str]] = {}
        pairs: list[tuple[int, int]] = []  # (camera track index, radar index) of the linked
        alone: list[int] = []
        for i, tr in enumerate(tracks):
            link = self._links.get(tr.id)
            j = by_key.get(link.radar) if link is not None and link.radar is not None else None
            if j is None:
                alone.append(i)
                continue
            links[tr.id] = link.radar
            pairs.append((i, j))
        tracks = list(tracks)

        def build() -> list[FusedObject]:
            objects: list[FusedObject] = []
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
