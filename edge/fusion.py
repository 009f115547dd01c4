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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from edge import links as hysteresis
from edge import pairing
from edge.camera_model import _projective_fix
from edge.geo import LocalFrame
from edge.geometry import ANCHORS, _anchors
from edge.ground_velocity import GroundVelocities, _advance
from edge.radar.store import Snapshot, Target, TrackStore, pick

INFEASIBLE = pairing.INFEASIBLE
_NO_COLS, _NO_RAD = np.zeros(0, np.int64), np.zeros((0, 10))
_NO_POS, _NO_COV, _NO_FLAGS = np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0, bool)


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


@dataclass
class FusionResult:
    links: dict[int, tuple[str, str]]  # camera track id -> radar target key
    ais_links: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # radar key -> AIS key
    radar: Snapshot | None = None
    ais: Snapshot | None = None
    build: Callable[[], CameraObjects] | None = None  # makes camera_view, once, when first asked
    _view: Sequence[FusedObject] | None = None
    _camera: list[FusedObject] | None = None
    _objects: list[FusedObject] | None = None

    @property
    def camera_view(self) -> Sequence[FusedObject]:
        """This camera's tracks as fused objects, their places and keys as arrays and each object
        built when first read (edge.fusion.CameraObjects): every frame associates, but the geo
        rules (2 Hz) look at the few objects in their zones."""
        if self._view is None:
            self._view = self.build() if self.build is not None else []
        return self._view

    @property
    def camera_objects(self) -> list[FusedObject]:
        """This camera's tracks, each with its radar target when linked (an alert, a viewer)."""
        if self._camera is None:
            self._camera = list(self.camera_view)
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
        # The links, a row per camera track (the rows of _smoothed): edge.links's arrays, their
        # targets named by the integers of _uid_of. A track that leaves keeps its link for
        # `keep_s` in _gone, in case the tracker finds it again under the same id.
        self._link = hysteresis.empty(0)
        self._settled = np.zeros(0, bool)  # rows whose link may be held without a global association
        self._gone: dict[int, hysteresis.Links] = {}  # camera track id -> its row of the link arrays
        self._uid_of: dict[tuple[str, str], int] = {}  # radar target key -> its integer
        self._key_of: dict[int, tuple[str, str]] = {}
        self._next_uid = 0
        self._smoothed = np.zeros((0, 0))  # last frame's smoothed pair costs (NaN: out of the gate or never seen)
        self._ids: list[int] = []  # camera track id of each row of _smoothed
        self._keys: list[tuple[str, str]] = []  # radar target key of each column of _smoothed
        self._col_uid = np.zeros(0, np.int64)  # the integer of each column's target
        self._rows: dict[int, int] = {}  # camera track id -> row of _smoothed
        self._cols: dict[tuple[str, str], int] = {}  # radar target key -> column of _smoothed
        self._ground = GroundVelocities(self.config.velocity_window_s)  # per camera track
        self._sector = None  # (centre bearing, half width) of the camera's view; False: unknown
        self._last_t: float | None = None  # the previous step's time
        self._next_global = -math.inf  # when the next global association is due
        self._last_global = -math.inf  # when the last one was

    def step(self, tracks, t: float) -> FusionResult:
        cfg = self.config
        cx, cy = self.model.camera_en if self.model.camera_en is not None else (0.0, 0.0)
        cx, cy = float(cx), float(cy)
        per_sigma = 1.0 / cfg.velocity_sigma_mps
        # The radar's live targets and, in the same compiled call, those in the camera's view
        # with their side of the pair arithmetic: only they can pair.
        radar, view = self.store.snapshot_with(t, "radar", None, pairing.radar_view, self._view_args(cx, cy, per_sigma))
        cols, rad = view if view is not None else (_NO_COLS, _NO_RAD)
        ais = self.store.snapshot(t, kind="ais")
        ids = [tr.id for tr in tracks]
        cam_pos, cam_cov, on_ground, cam_vel = self._camera_side(tracks, ids, t)
        # Only the targets in the camera's view can pair: the smoothed costs have their columns.
        all_keys = radar.key_list()
        keys = all_keys if len(cols) == len(radar) else pick(all_keys, cols)
        arrived = ids != self._ids and not self._rows.keys() >= set(ids)  # a camera track new to the fusion
        self._carry(ids, keys, t)
        associate = bool(ids and keys)
        everything = self._global_due(t, arrived) if associate else False
        lk = self._link
        made, settled, col = hysteresis.step(cam_pos, cam_cov, cam_vel, cx, cy, per_sigma, rad,
                                             self._smoothed, on_ground, self._settled, associate, everything,
                                             self._col_uid, *lk, t, self._last_global, cfg.gate, cfg.velocity_gate,
                                             cfg.smoothing, cfg.link_bonus, cfg.confirm_frames, cfg.keep_s)
        if made and self._gone and self._release_gone(t):
            settled = hysteresis.settled(lk.link, lk.since, lk.support, lk.cand, t, self._last_global)
            col = hysteresis.columns_of(lk.link, self._col_uid)
        self._settled = settled
        self._last_t = t
        ais_links = self._pair_ais(radar, ais)
        return self._result(tracks, ids, cam_pos, cam_cov, col, radar, ais, ais_links)

    def _camera_side(self, tracks, ids: list[int], t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where the camera tracks stand: their boxes' anchors on the ground, with covariance
        (edge.camera_model), whether they are on the ground, and their velocities on the ground
        (NaN until a track has a short history: a least-squares line through its positions of
        the last `velocity_window_s`, edge.ground_velocity). With a projective ground map (no lens
        distortion) all of it is one compiled call."""
        if self._ground.window != self.config.velocity_window_s:
            self._ground = GroundVelocities(self.config.velocity_window_s)
        ground = self._ground
        if not ids:
            return _NO_POS, _NO_COV, _NO_FLAGS, ground.update(ids, _NO_POS, t)
        # float32 boxes to float64 exactly; one concatenate is cheaper than an array of arrays
        boxes = np.concatenate([tr.box for tr in tracks]).astype(np.float64).reshape(-1, 4)
        fx, fy = ANCHORS[self.anchor]
        projective = self.model.projective_ground()
        if projective is None:
            fix = self.model.anchor_to_ground(boxes, anchor=self.anchor, geo=False)  # lat/lon only for alerts
            return fix.east_north, fix.covariance, fix.valid, ground.update(ids, fix.east_north, t)
        rows, old_rows, old = ground.begin(ids, t)
        pos, cov, valid, used, contrib, vel = _camera_kernel(boxes, fx, fy, *projective, ground.sums, ground.t0, rows,
                                                             float(t), ground.window / 2, old_rows, old)
        ground.end(t, used, contrib)
        return pos, cov, valid, vel

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

    def _carry(self, ids: list[int], keys: list[tuple[str, str]], t: float) -> None:
        """Last frame's smoothed costs and links in this frame's rows (tracks) and columns
        (targets in view); NaN for a track or target new to them. No per-pair Python: looked up
        by id and key."""
        if ids != self._ids:
            self._carry_rows(ids, t)
        elif self._gone:
            self._forget_gone(t)
        if keys != self._keys:
            self._carry_cols(keys)

    def _carry_rows(self, ids: list[int], t: float) -> None:
        rows = np.array([self._rows.get(tid, -1) for tid in ids], dtype=np.int64)
        kept = rows >= 0
        r_ok = kept.nonzero()[0]
        old_rows = rows.take(r_ok)
        smoothed = np.full((len(ids), len(self._keys)), np.nan)
        smoothed[r_ok] = self._smoothed.take(old_rows, 0)
        link = hysteresis.empty(len(ids))
        for new, old in zip(link, self._link):
            new[r_ok] = old.take(old_rows)
        settled = np.zeros(len(ids), bool)
        settled[r_ok] = self._settled.take(old_rows)
        alive = set(ids)
        for tid, r in self._rows.items():  # tracks that left keep their link records a while
            if tid not in alive and self._link.has[r]:
                self._gone[tid] = self._link.row(r)
        for i in (~kept).nonzero()[0].tolist():  # a track found again has its record back
            record = self._gone.pop(ids[i], None)
            if record is not None:
                link.set_row(i, record)
        self._smoothed, self._link, self._settled = smoothed, link, settled
        self._ids = list(ids)
        self._rows = {tid: i for i, tid in enumerate(ids)}
        self._forget_gone(t)

    def _forget_gone(self, t: float) -> None:
        """Drop the records of tracks gone with no link, or whose link went unsupported too long."""
        keep_s = self.config.keep_s
        for tid in [tid for tid, r in self._gone.items() if r.link < 0 or t - r.support > keep_s]:
            del self._gone[tid]

    def _carry_cols(self, keys: list[tuple[str, str]]) -> None:
        cols = np.array([self._cols.get(k, -1) for k in keys], dtype=np.int64)
        c_ok = (cols >= 0).nonzero()[0]
        smoothed = np.full((len(self._ids), len(keys)), np.nan)
        smoothed[:, c_ok] = self._smoothed.take(cols.take(c_ok), 1)
        self._smoothed = smoothed
        uid_of = self._uid_of
        if len(uid_of) > 4 * (len(keys) + len(self._ids) + len(self._gone)) + 1024:
            self._prune_uids()
        uids = []
        for k in keys:
            u = uid_of.get(k)
            if u is None:
                u = uid_of[k] = self._next_uid
                self._key_of[u] = k
                self._next_uid += 1
            uids.append(u)
        self._col_uid = np.array(uids, np.int64)
        self._keys = list(keys)
        self._cols = {k: j for j, k in enumerate(keys)}

    def _prune_uids(self) -> None:
        """Forget the integers of targets that no column and no link names (targets come and go
        for as long as the node runs)."""
        used = set(self._col_uid.tolist()) | set(self._link.link.tolist()) | set(self._link.cand.tolist())
        for record in self._gone.values():
            used.update((record.link, record.cand))
        self._key_of = {u: k for u, k in self._key_of.items() if u in used}
        self._uid_of = {k: u for u, k in self._key_of.items()}

    def _view_args(self, cx: float, cy: float, per_sigma: float) -> tuple:
        """pairing.radar_view's arguments after the store's: the camera's horizontal view (with a
        margin wider than any bearing gate; a post's radar sees all around) and the pair terms'."""
        if self._sector is None:
            self._sector = _view_sector(self.model)
        centre, half = self._sector if self._sector is not False else (0.0, 360.0)
        cfg = self.config
        return cx, cy, centre, half, per_sigma, cfg.bearing_sigma_deg, cfg.bearing_gate

    def _release_gone(self, t: float) -> bool:
        """After a frame that made a link (edge.links.step): one radar target links to one camera
        track, and that holds for the links of tracks gone from the picture too. A link made this
        frame takes the target from the track that held it: it won the assignment
        `confirm_frames` frames in a row against the holder's link bonus, so the holder went
        unsupported that long (it left the picture, or another track fits the target better).
        Were the holder to keep it, a track the tracker lost would block the track that replaced
        it for `keep_s`. Returns whether a link of a track here was dropped."""
        link, since, support = self._link.link, self._link.since, self._link.support
        held = {u: i for i, u in enumerate(link.tolist()) if u >= 0}
        dropped = False
        for tid, record in list(self._gone.items()):
            i = held.get(record.link)
            if i is None:
                continue
            if (support[i] != t, since[i]) <= (record.support != t, record.since):
                self._gone[tid] = record._replace(link=-1)
            else:
                link[i] = -1
                dropped = True
        return dropped

    def _pair_ais(self, radar: Snapshot, ais: Snapshot) -> dict[tuple[str, str], tuple[str, str]]:
        return pair_ais(radar, ais, self.config)

    def _result(self, tracks, ids, cam_pos, cam_cov, col: np.ndarray, radar: Snapshot, ais: Snapshot,
                ais_links) -> FusionResult:
        """This frame's links (`col`: each track's link's column, -1 for none or out of view); the
        fused objects are built when first asked for."""
        lk = self._link
        keys, present = self._keys, None
        linked = (lk.link >= 0).nonzero()[0]
        linked_col = col.take(linked)
        if (linked_col >= 0).all():  # the usual frame: every linked target in view
            links: dict[int, tuple[str, str]] = dict(zip(pick(ids, linked), pick(keys, linked_col)))
        else:
            links = {}
            for i, j in zip(linked.tolist(), linked_col.tolist()):
                if j >= 0:
                    links[ids[i]] = keys[j]
                    continue
                # a link whose target is out of view: it stands while the target lives
                key = self._key_of[int(lk.link[i])]
                if present is None:
                    present = set(radar.key_list())
                if key in present:
                    links[ids[i]] = key
        tracks = list(tracks)
        return FusionResult(links, ais_links, radar, ais,
                            partial(CameraObjects, self.camera, tracks, ids, links, cam_pos, cam_cov, radar, ais, ais_links))


@njit(cache=True, nogil=True)
def _camera_kernel(boxes, fx, fy, h, sigma, step, sums, t0, rows, t, half_window, leaving_rows, leaving):
    """Fusion._camera_side's compiled call: the boxes' anchors (edge.geometry), their ground fix
    under the projective map h (edge.camera_model), whether each is on the ground, and the
    ground velocities' frame (edge.ground_velocity): (positions, covariances, on the ground,
    the velocities' rows and contributions, velocities)."""
    pos, cov = _projective_fix(_anchors(boxes, fx, fy), h, sigma, step)
    valid = np.empty(len(pos), np.bool_)
    for i in range(len(pos)):
        valid[i] = np.isfinite(pos[i, 0]) and np.isfinite(pos[i, 1])
    used, contrib, vel = _advance(sums, t0, rows, pos, t, half_window, leaving_rows, leaving)
    return pos, cov, valid, used, contrib, vel


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


class BuiltOnRead(Sequence):
    """A sequence of fused objects that builds each when first read (`_item`); the indexing, slices
    and negative indices included, is here once for every such picture."""

    def __len__(self) -> int:
        raise NotImplementedError

    def _item(self, i: int):
        raise NotImplementedError

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._item(i)


class RadarOnly(BuiltOnRead):
    """The radar targets of a snapshot that no camera track holds, as fused objects (with their
    AIS identity). Their places and keys come from the snapshot's arrays; an object is built only
    when first read (a node sees hundreds of targets, the geo rules look at the few in a zone)."""

    def __init__(self, radar: Snapshot, ais: Snapshot, linked: set, ais_links: dict):
        self.radar, self.ais_links = radar, ais_links
        self._ais = dict(zip(ais.key_list(), ais.targets)) if len(ais) and ais_links else {}
        keys = radar.key_list()
        self.rows = [j for j, k in enumerate(keys) if k not in linked] if linked else list(range(len(keys)))
        self.keys = keys if len(self.rows) == len(keys) else pick(keys, np.array(self.rows, np.int64))
        self._built: dict[int, FusedObject] = {}

    @cached_property
    def positions(self) -> np.ndarray:
        """(N, 2) east, north of the objects."""
        rows = np.array(self.rows, np.int64)
        return np.c_[self.radar.east.take(rows), self.radar.north.take(rows)]

    def __len__(self) -> int:
        return len(self.rows)

    def _item(self, i: int) -> FusedObject:
        obj = self._built.get(i)
        if obj is None:
            j = self.rows[i]
            r = self.radar
            tg, cov = r.targets[j], r.cov[j]
            ais = self._ais.get(self.ais_links.get(self.keys[i])) if self._ais else None
            sigma = math.sqrt(max((float(cov[0, 0]) + float(cov[1, 1])) / 2, 0.0))
            obj = self._built[i] = FusedObject(None, tg, ais, float(r.east[j]), float(r.north[j]), sigma,
                                               tg.speed_mps, tg.course_deg)
        return obj


class CameraObjects(BuiltOnRead):
    """One camera's tracks of a frame as fused objects: the linked ones first (the radar's
    position refined by the camera's), then the others that stand on the ground, each in track
    order. Their places and keys (edge.geo_rules.object_key's) are arrays and tuples made at
    once; an object is built only when read, because reading its radar target brings the track
    store's waiting reports in (edge.radar.store.SyncedTargets), and the geo rules read only the
    objects in their zones."""

    def __init__(self, camera: str, tracks: list, ids: list[int], links: dict, cam_pos: np.ndarray,
                 cam_cov: np.ndarray, radar: Snapshot, ais: Snapshot, ais_links: dict):
        self.camera, self.tracks, self.radar, self.ais, self.ais_links = camera, tracks, radar, ais, ais_links
        keys = radar.key_list()
        by_key = dict(zip(keys, range(len(keys)))) if links else {}
        self.pairs = [(i, by_key[links[tid]]) for i, tid in enumerate(ids) if tid in links]
        # a track not on the ground (sky, far horizon) has no place in the fused picture
        finite = np.isfinite(cam_pos).all(1).tolist() if len(ids) else []
        self.alone = alone = [i for i, (tid, ok) in enumerate(zip(ids, finite)) if ok and tid not in links]
        self.keys = [("radar",) + links[ids[i]] for i, _ in self.pairs] + [("camera", camera, ids[i]) for i in alone]
        pairs = np.array(self.pairs, np.int64).reshape(-1, 2)
        own, sig = places(np.ascontiguousarray(cam_pos, np.float64).reshape(-1, 2),
                          np.ascontiguousarray(cam_cov, np.float64).reshape(-1, 2, 2), pairs[:, 0].copy(),
                          pairs[:, 1].copy(), radar.east, radar.north, radar.cov, np.array(alone, np.int64))
        self.positions = own  # (N, 2) east, north of the objects
        self._sigma = sig
        self._built: dict[int, FusedObject] = {}
        self._ais: dict | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def _item(self, i: int) -> FusedObject:
        obj = self._built.get(i)
        if obj is None:
            east, north = self.positions[i].tolist()
            sigma = float(self._sigma[i])
            if i < len(self.pairs):
                track, j = self.pairs[i]
                tg = self.radar.targets[j]
                ais = None
                if self.ais_links and len(self.ais):
                    if self._ais is None:
                        self._ais = dict(zip(self.ais.key_list(), self.ais.targets))
                    ais = self._ais.get(self.ais_links.get(tg.key))
                obj = FusedObject(self.tracks[track], tg, ais, east, north, sigma, tg.speed_mps, tg.course_deg, self.camera)
            else:
                obj = FusedObject(self.tracks[self.alone[i - len(self.pairs)]], None, None, east, north, sigma,
                                  camera=self.camera)
            self._built[i] = obj
        return obj


def radar_only(radar: Snapshot, ais: Snapshot, linked: set, ais_links: dict) -> list[FusedObject]:
    """The radar targets no camera track holds, as fused objects (with their AIS identity)."""
    return list(RadarOnly(radar, ais, linked, ais_links))


@njit(cache=True, nogil=True)
def _inv2(a, b, c, d):
    """The inverse of [[a, b], [c, d]] (a determinant under 1e-12 taken as 1e-12)."""
    det = a * d - b * c
    if abs(det) < 1e-12:
        det = 1e-12
    return d / det, -b / det, -c / det, a / det


@njit(cache=True, nogil=True)
def places(cam_pos, cam_cov, pair_cam, pair_radar, radar_east, radar_north, radar_cov, alone):
    """The fused objects' places (N, 2) and 1-sigma radii (N): for each linked pair (camera row,
    radar row) the inverse-covariance weighted mean of the two positions, then each camera row of
    `alone` as it is. Compiled: the fused picture is built twice a second with tens of pairs,
    where numpy's per-call cost made this a fifth of its time (cProfile, the bench's scene)."""
    n = len(pair_cam)
    pos = np.empty((n + len(alone), 2))
    sig = np.empty(n + len(alone))
    for k in range(n):
        i, j = pair_cam[k], pair_radar[k]
        a1, b1, c1, d1 = _inv2(cam_cov[i, 0, 0], cam_cov[i, 0, 1], cam_cov[i, 1, 0], cam_cov[i, 1, 1])
        a2, b2, c2, d2 = _inv2(radar_cov[j, 0, 0], radar_cov[j, 0, 1], radar_cov[j, 1, 0], radar_cov[j, 1, 1])
        a, b, c, d = _inv2(a1 + a2, b1 + b2, c1 + c2, d1 + d2)
        x1, y1, x2, y2 = cam_pos[i, 0], cam_pos[i, 1], radar_east[j], radar_north[j]
        wx = (a1 * x1 + b1 * y1) + (a2 * x2 + b2 * y2)
        wy = (c1 * x1 + d1 * y1) + (c2 * x2 + d2 * y2)
        pos[k, 0] = a * wx + b * wy
        pos[k, 1] = c * wx + d * wy
        sig[k] = math.sqrt(max((a + d) / 2, 0.0))
    for k in range(len(alone)):
        i = alone[k]
        pos[n + k, 0], pos[n + k, 1] = cam_pos[i, 0], cam_pos[i, 1]
        sig[n + k] = math.sqrt(max((cam_cov[i, 0, 0] + cam_cov[i, 1, 1]) / 2, 0.0))
    return pos, sig


def geo_of(frame: LocalFrame, obj: FusedObject) -> tuple[float, float]:
    lat, lon = frame.to_geo(obj.east, obj.north)
    return float(lat), float(lon)
