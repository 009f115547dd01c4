"""The radar and AIS picture: targets from every feed, in the post's local frame and in lat/lon.

Feeds update it from their threads; the fusion reads a snapshot, with every target predicted to
the frame's time. A target's position uncertainty follows its sensor's stated accuracy: along
the line of sight the range sigma, across it the range times the bearing sigma.

A radar's usual sentence, a plain TTM from a radar at the post, has a fast path (add_ttm): the
line is scanned and its numbers written into the target's row in one compiled call, and the
target's other fields (history, status, extra, lat/lon) follow when the target is next read — a
snapshot's targets, a lookup, the next report through add(), expiry. The fusion reads only the
rows each frame, so a camera's loop does not build what nobody reads.

    >>> store = TrackStore(LocalFrame(58.21, 11.55))                  # doctest: +SKIP
    >>> store.add(report)                                             # doctest: +SKIP
    >>> snap = store.snapshot(now)                                    # doctest: +SKIP
    >>> snap.east, snap.north, snap.cov                               # doctest: +SKIP
"""

from __future__ import annotations

import math
import operator
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from edge.geo import WGS84, LocalFrame, bearing_of
from edge.radar import ttm_scan
from edge.radar.reports import TargetReport

HISTORY = 120  # positions kept per target (two minutes at 1 Hz)
MAX_TARGETS = 5000  # a feed gone mad must not eat the node's memory
MAX_PENDING = 4096  # fast-path reports waiting for their targets' fields (until read, or a row is freed)
NUMBERED = 1000  # target numbers 0-999 (a TTM's) find their row through an array on the fast path
SPEED_WINDOW_S = 10.0  # velocity estimated over this much history when the source gives none


@dataclass(frozen=True)
class SensorAccuracy:
    """What a feed claims about its own measurement errors (1 sigma) and freshness."""

    range_sigma_m: float = 10.0
    bearing_sigma_deg: float = 1.0
    position_sigma_m: float = 10.0  # for sources that give positions directly (AIS, TLL)
    stale_s: float = 30.0
    origin: tuple[float, float] | None = None  # the sensor's (east, north) in the local frame


@dataclass
class Target:
    source: str
    kind: str  # "radar" | "ais"
    target: str
    first_seen: float
    updated: float = 0.0
    east: float = math.nan
    north: float = math.nan
    lat: float | None = None
    lon: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    velocity: tuple[float, float] = (0.0, 0.0)  # east, north m/s
    name: str | None = None
    status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reports: int = 0
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))  # (t, east, north)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.target)

    @property
    def has_position(self) -> bool:
        return not math.isnan(self.east)


@dataclass
class SourceQuality:
    reports: int = 0
    positioned: int = 0
    expired: int = 0
    last_report: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=600))  # report times, for a rate


@dataclass(frozen=True)
class Snapshot:
    """Every live positioned target predicted to `time`, as arrays the fusion can use at once."""

    time: float
    targets: Sequence[Target]  # from the store: a SyncedTargets view, brought up to date when read
    east: np.ndarray
    north: np.ndarray
    velocity: np.ndarray  # (N, 2)
    cov: np.ndarray  # (N, 2, 2) m², the sensor's error grown by the prediction
    kind: np.ndarray  # (N,) "radar" / "ais"
    keys: list | None = None  # (source, target) of each, when the store gives them

    def __len__(self) -> int:
        return len(self.east)

    def of_kind(self, kind: str) -> Snapshot:
        """The targets of one kind ("radar" or "ais"), as a snapshot of their own."""
        keep = self.kind == kind
        return self if keep.all() else self.take(np.flatnonzero(keep))

    def take(self, idx: np.ndarray) -> Snapshot:
        """The targets at these indices."""
        idx = np.asarray(idx, dtype=np.intp)
        return Snapshot(self.time, pick(self.targets, idx), self.east.take(idx), self.north.take(idx),
                        self.velocity.take(idx, 0), self.cov.take(idx, 0), self.kind.take(idx),
                        pick(self.keys, idx) if self.keys is not None else None)

    def key_list(self) -> list:
        return self.keys if self.keys is not None else [t.key for t in self.targets]


class SyncedTargets(Sequence):
    """A snapshot's targets, brought up to date with the reports the store took on its fast path
    (TrackStore.add_ttm) when first read: the fusion step reads only the snapshot's arrays,
    so most frames never pay for the targets' fields."""

    __slots__ = ("_items", "_store", "_synced")

    def __init__(self, items: list[Target], store: TrackStore):
        self._items, self._store, self._synced = items, store, False

    def _read(self) -> list[Target]:
        if not self._synced:
            self._store.sync()
            self._synced = True
        return self._items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        return self._read()[i]

    def __iter__(self):
        return iter(self._read())


class TrackStore:
    def __init__(self, frame: LocalFrame, accuracy: dict[str, SensorAccuracy] | None = None):
        self.frame = frame
        self._centre = (frame.lat, frame.lon)
        self.accuracy = dict(accuracy or {})
        self._targets: dict[tuple[str, str], Target] = {}
        self._quality: dict[str, SourceQuality] = {}
        self._lock = threading.Lock()
        self.dropped_full = 0
        # Every target's numbers also live in arrays, one row per target, written when a report
        # comes in: a snapshot per video frame is then a few array operations, not a loop.
        self._row: dict[tuple[str, str], int] = {}
        self._at_row: list[Target | None] = []
        self._key_at_row: list[tuple[str, str] | None] = []
        self._rows_version = 0  # counts changes of which target holds which row
        self._picked: dict[str | None, tuple] = {}  # kind -> the last snapshot's (rows, targets, keys, kinds)
        self._free: list[int] = []
        # The fast path's reports (add_ttm) wait here to reach their targets' fields: (row, time,
        # east, north, name, status, extra), in arrival order; sync() applies them.
        self._pending: list[tuple] = []
        self._numbered: dict[str, np.ndarray] = {}  # source -> row of each target number (-1: none)
        self._grow(64)

    def _grow(self, cap: int) -> None:
        old = len(self._at_row)
        def grown(a, fill):
            out = np.full((cap,) + a.shape[1:], fill, dtype=a.dtype)
            out[:old] = a[:old]
            return out
        if old == 0:
            self._num = np.zeros((cap, _NUMBERS))
            self._num[:, :2] = np.nan
            self._is_radar = np.zeros(cap, bool)
            self._used = np.zeros(cap, bool)
            self._placed = {"radar": np.zeros(cap, bool), "ais": np.zeros(cap, bool)}  # rows with a position, by kind
        else:
            num = np.zeros((cap, _NUMBERS))
            num[:, :2] = np.nan
            num[:old] = self._num[:old]
            self._num = num
            self._is_radar, self._used = grown(self._is_radar, False), grown(self._used, False)
            self._placed = {k: grown(v, False) for k, v in self._placed.items()}
        # Views of the one row of numbers per target that a report writes at once.
        num = self._num
        self._pos, self._vel, self._upd, self._stale = num[:, 0:2], num[:, 2:4], num[:, 4], num[:, 5]
        self._cov = num[:, 6:10].reshape(cap, 2, 2)
        self._free += list(range(cap - 1, old - 1, -1))
        self._at_row += [None] * (cap - old)
        self._key_at_row += [None] * (cap - old)

    def _write_row(self, key: tuple[str, str], tgt: Target, acc: SensorAccuracy) -> None:
        row = self._row.get(key)
        if row is None:
            if not self._free:
                self._grow(2 * len(self._at_row))
            row = self._row[key] = self._free.pop()
            self._at_row[row] = tgt
            self._key_at_row[row] = key
            self._used[row] = True
            self._rows_version += 1
            number = _target_number(key[1])
            if number >= 0:
                numbered = self._numbered.get(key[0])
                if numbered is None:
                    numbered = self._numbered[key[0]] = np.full(NUMBERED, -1, np.int64)
                numbered[number] = row
        self._is_radar[row] = tgt.kind == "radar"
        vx, vy = tgt.velocity
        if tgt.has_position:
            (c00, c01), (c10, c11) = _sensor_cov(acc, tgt.kind, tgt.east, tgt.north)
            self._num[row, :10] = (tgt.east, tgt.north, vx, vy, tgt.updated, acc.stale_s, c00, c01, c10, c11)
            self._placed["radar" if tgt.kind == "radar" else "ais"][row] = True
        else:
            self._num[row, :6] = (tgt.east, tgt.north, vx, vy, tgt.updated, acc.stale_s)

    def _drop_row(self, key: tuple[str, str]) -> None:
        row = self._row.pop(key, None)
        if row is not None:
            self._used[row] = False
            self._placed["radar"][row] = self._placed["ais"][row] = False
            self._pos[row] = np.nan
            self._at_row[row] = None
            self._key_at_row[row] = None
            self._free.append(row)
            self._rows_version += 1
            number = _target_number(key[1])
            if number >= 0:
                self._numbered[key[0]][number] = -1

    def sensor(self, source: str) -> SensorAccuracy:
        return self.accuracy.get(source) or SensorAccuracy()

    # -- updates -----------------------------------------------------------------------------

    def add(self, report: TargetReport) -> Target | None:
        """Take one report; returns the updated target (None when the store is full)."""
        acc = self.sensor(report.source)
        east = north = None
        if report.origin is not None and report.origin == self._centre and report.range_m is not None \
                and report.bearing_deg is not None:
            # The frame is azimuthal equidistant about the post: a sensor there gives its polar
            # coordinates exactly (what to_local of the report's lat/lon gives, without PROJ).
            b = math.radians(report.bearing_deg)
            east, north = report.range_m * math.sin(b), report.range_m * math.cos(b)
        elif report.lat is not None and report.lon is not None:
            east, north = self.frame.to_local(report.lat, report.lon)
            east, north = float(east), float(north)
        elif report.range_m is not None and report.bearing_deg is not None and acc.origin is not None:
            b = math.radians(report.bearing_deg)  # a fixed sensor without a lat/lon of its own
            east, north = acc.origin[0] + report.range_m * math.sin(b), acc.origin[1] + report.range_m * math.cos(b)
        with self._lock:
            if self._pending:
                self._sync()  # the fast path's reports first, in the order they came
            q = self._quality.get(report.source)
            if q is None:
                q = self._quality[report.source] = SourceQuality()
            q.reports += 1
            q.last_report = report.time
            q.recent.append(report.time)
            key = (report.source, report.target)
            tgt = self._targets.get(key)
            if tgt is None:
                if len(self._targets) >= MAX_TARGETS:
                    self.dropped_full += 1
                    return None
                tgt = self._targets[key] = Target(report.source, report.kind, report.target, first_seen=report.time)
            if report.time < tgt.updated:
                return tgt  # late and out of order: the newer state stands
            tgt.updated = max(tgt.updated, report.time)
            tgt.reports += 1
            tgt.name = report.name or tgt.name
            tgt.status = report.status or tgt.status
            tgt.extra.update(report.extra)
            if east is not None:
                q.positioned += 1
                tgt.east, tgt.north = east, north
                tgt.lat, tgt.lon = (report.lat, report.lon) if report.lat is not None else self.frame.to_geo(east, north)
                tgt.history.append((report.time, east, north))
            if report.speed_mps is not None and report.course_deg is not None:
                tgt.speed_mps, tgt.course_deg = report.speed_mps, report.course_deg
                c = math.radians(report.course_deg)
                tgt.velocity = (report.speed_mps * math.sin(c), report.speed_mps * math.cos(c))
            elif east is not None:
                tgt.velocity = _velocity(tgt.history)
                tgt.speed_mps = math.hypot(*tgt.velocity)
                tgt.course_deg = float(bearing_of(*tgt.velocity)) if tgt.speed_mps > 0 else None
            self._write_row(key, tgt, acc)
            return tgt

    def add_ttm(self, source: str, line: bytes, received: float, shift: float, decoder) -> bool:
        """The fast path for a radar's usual report: a plain TTM line (edge.radar.ttm_scan) about a
        target the store holds, from a radar standing at the post, `decoder` its feed's NMEA
        decoder (edge.radar.nmea.NmeaDecoder: its scan buffers, clock, unit tables and
        ttm_fields). One compiled call scans the line, dates it, converts it and writes the
        target's row; the target's other fields follow when it is next read (sync). The same
        state as add() of the decoder's report, to the last bit but for the covariance (numba's
        hypot: within 1e-12). False when the line is not for this path (not a plain TTM, a target
        new to the store or numbered 1000 or more, a missing range, bearing, speed or course, an
        angle out of range): nothing is changed, and the caller hands the line to the decoder."""
        acc = self.sensor(source)
        numbered = self._numbered.get(source)
        if acc.origin is None or numbered is None:
            return False
        day, utc = decoder.ttm_clock()
        floats, ints = decoder.scan_buffers
        per_unit, per_speed_unit = decoder.unit_tables
        with self._lock:
            code, row, t, east, north, tail_start, tail_end, acq = _ttm_row(
                np.frombuffer(line, np.uint8), floats, ints, self._num, numbered, self._placed["radar"], received, day,
                utc, shift, per_unit, per_speed_unit, acc.origin[0], acc.origin[1], acc.range_sigma_m,
                acc.bearing_sigma_deg, acc.stale_s)
            if code == _DECLINED:
                return False
            q = self._quality[source]
            q.reports += 1
            q.last_report = t
            q.recent.append(t)
            if code == _LATE:
                return True  # late and out of order: the newer state stands
            q.positioned += 1
            self._pending.append((row, t, east, north, *decoder.ttm_fields(line, tail_start, tail_end, acq)))
            if len(self._pending) >= MAX_PENDING:
                self._sync()  # a store that nobody reads or expires must not grow without bound
            return True

    def sync(self) -> None:
        """Bring the targets' fields up to date with the fast path's reports."""
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        at_row = self._at_row
        latest: dict[int, Target] = {}
        for row, t, east, north, name, status, extra in pending:
            tgt = at_row[row]
            if t > tgt.updated:
                tgt.updated = t
            tgt.reports += 1
            if name:  # a radar names a target once in a while, and says little else
                tgt.name = name
            if status:
                tgt.status = status
            if extra:
                tgt.extra.update(extra)
            tgt.east, tgt.north = east, north
            tgt.history.append((t, east, north))
            latest[row] = tgt
        rows = np.fromiter(latest, np.int64, len(latest))
        num = self._num.take(rows, 0)
        # The report's lat/lon: the geodesic from the radar (at the post) along its range and
        # bearing, as the decoder places it (edge.geo.destination), for every target at once.
        lon, lat, _ = WGS84.fwd(np.full(len(rows), self._centre[1]), np.full(len(rows), self._centre[0]),
                                num[:, 13], num[:, 12])
        for tgt, (vx, vy, speed, course), la, lo in zip(latest.values(), num[:, [2, 3, 10, 11]].tolist(),
                                                          lat.tolist(), lon.tolist()):
            tgt.lat, tgt.lon = la, lo
            tgt.speed_mps, tgt.course_deg, tgt.velocity = speed, course, (vx, vy)

    def expire(self, now: float) -> int:
        """Forget targets not reported for their sensor's stale time; returns how many."""
        with self._lock:
            rows = (self._used & (now - self._upd > self._stale)).nonzero()[0]
            if not len(rows):
                # Nothing to free: the fast path's waiting reports wait on, to be brought in when a
                # target is read (or MAX_PENDING of them have come), not every second.
                return 0
            self._sync()  # rows are freed here, and may hold another target next
            gone = [self._key_at_row[r] for r in rows.tolist()]
            for k in gone:
                self._quality.setdefault(k[0], SourceQuality()).expired += 1
                del self._targets[k]
                self._drop_row(k)
        return len(gone)

    # -- reading -----------------------------------------------------------------------------

    def targets(self, kind: str | None = None) -> list[Target]:
        with self._lock:
            self._sync()
            return [t for t in self._targets.values() if kind is None or t.kind == kind]

    def get(self, key: tuple[str, str]) -> Target | None:
        with self._lock:
            self._sync()
            return self._targets.get(key)

    def snapshot(self, now: float, kind: str | None = None, max_age_s: float | None = None) -> Snapshot:
        """Positioned, live targets predicted to `now` with their covariance."""
        return self.snapshot_with(now, kind, max_age_s, live_predicted, ())[0]

    def snapshot_with(self, now: float, kind: str | None, max_age_s: float | None, kernel, args: tuple) -> tuple:
        """`snapshot`, its compiled part done by `kernel`: (placed, updated, stale, numbers, now,
        max_age, *args) -> (rows, east, north, velocity, covariance, *more) as live_predicted,
        with more results of the caller's own (the fusion computes its side of the targets in
        view in the same call). Returns (the snapshot, `more`; None when no target is placed)."""
        with self._lock:
            if kind is None:
                placed = self._placed["radar"] | self._placed["ais"]
            else:
                placed = self._placed["radar"] if kind == "radar" else self._placed["ais"]
            if not placed.any():
                return Snapshot(now, [], _NONE, _NONE, _NONE2, _NONE22, _NONE_KIND, []), None
            idx, east, north, vel, cov, *more = kernel(placed, self._upd, self._stale, self._num, float(now),
                                                       -1.0 if max_age_s is None else float(max_age_s), *args)
            # The same rows as the last snapshot of this kind (the usual frame): the same targets.
            rows = (self._rows_version, idx.tobytes())
            cached = self._picked.get(kind)
            if cached is None or cached[0] != rows:
                kinds = _KINDS[self._is_radar[idx].view(np.uint8)] if kind is None else np.full(len(idx), kind, object)
                cached = self._picked[kind] = (rows, pick(self._at_row, idx), pick(self._key_at_row, idx), kinds)
            _, live, keys, kinds = cached
        return Snapshot(now, SyncedTargets(live, self), east, north, vel, cov, kinds.copy(), list(keys)), more

    def quality(self, now: float) -> dict[str, dict]:
        """Per source: reports, positioned share, live targets, expired, rate over the last minute."""
        with self._lock:
            live: dict[str, int] = {}
            for t in self._targets.values():
                live[t.source] = live.get(t.source, 0) + 1
            out = {}
            for src, q in self._quality.items():
                recent = [t for t in q.recent if now - t <= 60.0]
                out[src] = {
                    "reports": q.reports,
                    "positioned": q.positioned,
                    "targets": live.get(src, 0),
                    "expired": q.expired,
                    "last_report_age_s": (now - q.last_report) if q.last_report is not None else None,
                    "rate_per_s": len(recent) / 60.0,
                }
            return out


# Per target row: east, north, velocity east, north, updated, stale_s, covariance (2x2); and, from
# the fast path only (add_ttm), speed, course, range and true bearing of the last report.
_NUMBERS = 14
_APPLIED, _LATE, _DECLINED = 0, 1, -1
_KINDS = np.array(["ais", "radar"], dtype=object)  # by TrackStore._is_radar
# An empty snapshot's arrays: nothing can be written into them, so every empty snapshot shares them.
_NONE, _NONE2, _NONE22, _NONE_KIND = np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2, 2)), np.zeros(0, dtype=object)


@njit(cache=True, nogil=True)
def _live_rows(placed, updated, stale, now, max_age):
    """Rows placed and reported within their stale time (or max_age, when not negative)."""
    out = np.empty(len(placed), np.int64)
    k = 0
    for r in range(len(placed)):
        if placed[r] and now - updated[r] <= (stale[r] if max_age < 0 else max_age):
            out[k] = r
            k += 1
    return out[:k].copy()


@njit(cache=True, nogil=True)
def live_predicted(placed, updated, stale, num, now, max_age):
    """_live_rows and _predicted in one call: (rows, east, north, velocity, covariance)."""
    idx = _live_rows(placed, updated, stale, now, max_age)
    east, north, vel, cov = _predicted(num, idx, now)
    return idx, east, north, vel, cov


@njit(cache=True, nogil=True)
def _predicted(num, idx, now):
    """The rows' positions moved on to `now` at their velocity, and their covariance grown for an
    unknown acceleration of ~0.5 m/s² (compiled: a fusion asks for this every frame)."""
    n = len(idx)
    east, north = np.empty(n), np.empty(n)
    vel, cov = np.empty((n, 2)), np.empty((n, 2, 2))
    for k in range(n):
        row = num[idx[k]]
        dt = max(0.0, now - row[4])
        q = (0.5 * dt) ** 2
        east[k] = row[0] + row[2] * dt
        north[k] = row[1] + row[3] * dt
        vel[k, 0], vel[k, 1] = row[2], row[3]
        cov[k, 0, 0], cov[k, 0, 1], cov[k, 1, 0], cov[k, 1, 1] = row[6] + q, row[7], row[8], row[9] + q
    return east, north, vel, cov


@njit(cache=True, nogil=True)
def _scanned_row(num, row, floats, t, per_unit, per_speed, ox, oy, range_sigma, bearing_sigma_deg, stale_s):
    """A scanned TTM (edge.radar.ttm_scan's floats: distance, bearing, speed, course...) into the
    target's row, as TrackStore.add and _write_row would write the decoder's report; _DECLINED
    (nothing written) when the sentence is not for the fast path, _LATE when it is older than the
    row's state. Angles are true (the scan takes only T or empty references)."""
    distance, bearing, speed, course = floats[0], floats[1], floats[2], floats[3]
    if distance != distance or bearing != bearing or speed != speed or course != course:
        return _DECLINED
    if not (0.0 <= bearing <= 360.0 and 0.0 <= course <= 360.0):
        return _DECLINED  # the decoder's refusal ("bad bearing", "bad course"), counted there
    if t < num[row, 4]:
        return _LATE
    b, c = bearing % 360.0, course % 360.0
    rng, spd = distance * per_unit, speed * per_speed
    rb, rc = math.radians(b), math.radians(c)
    east, north = rng * math.sin(rb), rng * math.cos(rb)
    dx, dy = east - ox, north - oy
    d = math.hypot(dx, dy)
    r2 = range_sigma * range_sigma
    if d < 1e-6:
        c00, c01, c11 = r2, 0.0, r2
    else:
        ux, uy = dx / d, dy / d
        c2 = (d * math.radians(bearing_sigma_deg)) ** 2
        c01 = (r2 - c2) * ux * uy
        c00, c11 = r2 * ux * ux + c2 * uy * uy, r2 * uy * uy + c2 * ux * ux
    out = num[row]
    out[0], out[1], out[2], out[3], out[4], out[5] = east, north, spd * math.sin(rc), spd * math.cos(rc), t, stale_s
    out[6], out[7], out[8], out[9] = c00, c01, c01, c11
    out[10], out[11], out[12], out[13] = spd, c, rng, b
    return _APPLIED


@njit(cache=True, nogil=True)
def _ttm_row(b, floats, ints, num, numbered, placed, received, day, utc, shift, per_unit, per_speed, ox, oy,
             range_sigma, bearing_sigma_deg, stale_s):
    """A plain TTM line (uint8 array b) into its target's row: the scan (edge.radar.ttm_scan,
    into floats and ints), the target's row by its number, the line's time dated as the decoder
    dates it (ttm_scan.dated; the receive time without a date or an hhmmss) and moved by `shift`,
    then _scanned_row. Returns (code, row, time, east, north, and the line's tail span and
    acquisition code for NmeaDecoder.ttm_fields)."""
    if ttm_scan.scan(b, floats, ints) != ttm_scan.TTM:
        return _DECLINED, -1, 0.0, 0.0, 0.0, 0, 0, 0
    number = ints[ttm_scan.I_NUMBER]
    row = numbered[number] if number < len(numbered) else -1
    unit = ints[ttm_scan.I_UNIT]
    if row < 0 or unit < 0 or unit > 255:
        return _DECLINED, -1, 0.0, 0.0, 0.0, 0, 0, 0
    tod = floats[ttm_scan.F_TOD]
    t = ttm_scan.dated(tod, day, utc) if tod == tod and day == day and utc == utc else received
    t += shift
    code = _scanned_row(num, row, floats, t, per_unit[unit], per_speed[unit], ox, oy, range_sigma,
                        bearing_sigma_deg, stale_s)
    if code == _APPLIED:
        placed[row] = True
    return (code, row, t, num[row, 0], num[row, 1], ints[ttm_scan.I_TAIL_START], ints[ttm_scan.I_TAIL_END],
            ints[ttm_scan.I_ACQ])


def _target_number(target: str) -> int:
    """The number a TTM gives this target (the decoder names it f"{number:02d}"), or -1 when it
    is not such a name or not below NUMBERED."""
    if not target.isdigit() or len(target) > 3:
        return -1
    n = int(target)
    return n if f"{n:02d}" == target else -1


def pick(items: list, idx: np.ndarray) -> list:
    """items at the indices idx, as a list (itemgetter: one C call instead of a comprehension)."""
    if len(idx) > 1:
        return list(operator.itemgetter(*idx.tolist())(items))
    return [items[i] for i in idx.tolist()]


def _sensor_cov(acc: SensorAccuracy, kind: str, east: float, north: float) -> tuple:
    """Position covariance (2x2, m²): a radar's range sigma along its line of sight and range x
    bearing sigma across it; AIS (a GNSS position) round."""
    if kind != "radar":
        v = acc.position_sigma_m ** 2
        return ((v, 0.0), (0.0, v))
    ox, oy = acc.origin if acc.origin is not None else (0.0, 0.0)
    dx, dy = east - ox, north - oy
    rng = math.hypot(dx, dy)
    r2 = acc.range_sigma_m ** 2
    if rng < 1e-6:
        return ((r2, 0.0), (0.0, r2))
    ux, uy = dx / rng, dy / rng  # along the line of sight; across it is (-uy, ux)
    c2 = (rng * math.radians(acc.bearing_sigma_deg)) ** 2
    xy = (r2 - c2) * ux * uy
    return ((r2 * ux * ux + c2 * uy * uy, xy), (xy, r2 * uy * uy + c2 * ux * ux))


def _velocity(history: deque) -> tuple[float, float]:
    """East/north velocity from the positions of the last SPEED_WINDOW_S (least squares)."""
    if len(history) < 2:
        return (0.0, 0.0)
    t_end = history[-1][0]
    pts = np.array([p for p in history if t_end - p[0] <= SPEED_WINDOW_S])
    if len(pts) < 2 or pts[-1, 0] - pts[0, 0] <= 0:
        return (0.0, 0.0)
    t = pts[:, 0] - pts[:, 0].mean()
    denom = float((t * t).sum())
    return (float((t * (pts[:, 1] - pts[:, 1].mean())).sum() / denom), float((t * (pts[:, 2] - pts[:, 2].mean())).sum() / denom))
