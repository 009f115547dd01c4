"""Radar tracks from plots: M-of-N initiation, a constant-velocity Kalman filter in the radar's
local east-north frame, chi-square gating, Hungarian assignment, confirmation and deletion.

Per sweep: every track is predicted to each plot's own time (the antenna reaches targets at
different moments of a rotation); a plot may update a track when its Mahalanobis distance under
the predicted covariance plus the plot's measurement covariance (range sigma along the line of
sight, range x azimuth sigma across it) is within the gate. Confirmed tracks are assigned first,
then tentative ones, then every plot left starts a tentative track with an unknown velocity (a
prior of `max_speed_mps`). A tentative track is confirmed after M hits within its first N sweeps
and dropped when it can no longer reach M; a confirmed track is dropped after `max_misses`
sweeps in a row without a plot.

    >>> trk = RadarTracker(TrackerSettings(confirm_m=2, confirm_n=3))
    >>> for k in range(3):
    ...     out = trk.update([Plot(2.5 * k, 1000.0, 90.0 - 0.1 * k, 15, 1.0, 9, 9, 3)], 2.5 * k + 1)
    >>> [(t.id, t.confirmed, round(t.speed_mps, 1)) for t in trk.tracks]
    [(1, True, 0.6)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import optimize, stats

from edge.radar.plots import Plot

UNASSIGNED = 1e9


class TrackerSettings(BaseModel):
    """How plots become radar tracks."""

    model_config = ConfigDict(extra="forbid")

    confirm_m: int = Field(4, ge=1, le=20, description="A new track is confirmed after M plots ...")
    confirm_n: int = Field(5, ge=1, le=30, description="... within its first N sweeps (M-of-N).")
    max_misses: int = Field(4, ge=1, le=100, description="A confirmed track is dropped after this many sweeps in a row "
                                                         "without a plot.")
    gate_probability: float = Field(0.999, gt=0.5, lt=1.0, description="Chi-square gate: the share of true plots "
                                                                       "that fall inside it.")
    accel_sigma: float = Field(1.0, gt=0.0, le=50.0, description="Process noise: white acceleration, m/s² (1 sigma).")
    max_speed_mps: float = Field(30.0, gt=0.0, le=1000.0, description="Fastest target expected: a new track's "
                                                                      "velocity prior (2 sigma).")
    range_sigma_m: float | None = Field(None, gt=0.0, description="Plot range error (1 sigma); default: the range "
                                                                  "cell / sqrt(12) and the feed's range_sigma_m, whichever is larger.")
    azimuth_sigma_deg: float | None = Field(None, gt=0.0, le=45.0, description="Plot azimuth error (1 sigma); "
                                                                               "default: the feed's bearing_sigma_deg.")
    max_tracks: int = Field(2000, ge=1, le=100_000, description="Tracks kept at once; plots beyond start none "
                                                                "(and are counted).")


@dataclass
class RadarTrack:
    id: int
    x: np.ndarray  # east, north, v_east, v_north (m, m/s) in the radar's local frame
    P: np.ndarray  # 4x4 covariance
    time: float
    born: int  # sweep number
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    updated: bool = True  # had a plot in the latest sweep
    last_plot: Plot | None = None
    history: list = field(default_factory=list)  # (time, east, north) of the filtered positions

    @property
    def speed_mps(self) -> float:
        return float(math.hypot(self.x[2], self.x[3]))

    @property
    def course_deg(self) -> float:
        return float(math.degrees(math.atan2(self.x[2], self.x[3])) % 360.0)

    @property
    def position_sigma_m(self) -> float:
        return float(math.sqrt(max(0.0, (self.P[0, 0] + self.P[1, 1]) / 2)))


def measurement_cov(plots: list[Plot], range_sigma: float, az_sigma_rad: float) -> np.ndarray:
    """(P, 2, 2) east-north covariance of each plot."""
    az = np.radians([p.azimuth_deg for p in plots])
    rng = np.array([p.range_m for p in plots])
    ux, uy = np.sin(az), np.cos(az)  # along the line of sight; across it is (uy, -ux)
    r2, c2 = range_sigma ** 2, (rng * az_sigma_rad) ** 2
    cov = np.empty((len(plots), 2, 2))
    cov[:, 0, 0] = r2 * ux * ux + c2 * uy * uy
    cov[:, 1, 1] = r2 * uy * uy + c2 * ux * ux
    cov[:, 0, 1] = cov[:, 1, 0] = (r2 - c2) * ux * uy
    return cov


class RadarTracker:
    def __init__(self, settings: TrackerSettings | None = None, *, range_sigma_m: float = 10.0,
                 azimuth_sigma_deg: float = 1.0):
        self.settings = s = settings or TrackerSettings()
        self.range_sigma_m = s.range_sigma_m or range_sigma_m
        self.azimuth_sigma_rad = math.radians(s.azimuth_sigma_deg or azimuth_sigma_deg)
        self.gate = float(stats.chi2.ppf(s.gate_probability, 2))
        self.tracks: list[RadarTrack] = []
        self.sweeps = 0
        self._next_id = 1
        self.started = self.confirmed_total = self.dropped_full = 0

    # -- Kalman pieces ---------------------------------------------------------------------------

    def _q(self, dt: np.ndarray) -> np.ndarray:
        """Process noise for steps dt (white acceleration), (..., 4, 4)."""
        q = self.settings.accel_sigma ** 2
        dt = np.abs(dt)
        out = np.zeros(dt.shape + (4, 4))
        for i in (0, 1):
            out[..., i, i] = q * dt ** 4 / 4
            out[..., i, i + 2] = out[..., i + 2, i] = q * dt ** 3 / 2
            out[..., i + 2, i + 2] = q * dt ** 2
        return out

    def _predicted_positions(self, tracks: list[RadarTrack], times: np.ndarray):
        """Each track's position and position covariance at each plot's time: (T, P, 2), (T, P, 2, 2)."""
        x = np.array([t.x for t in tracks])
        P = np.array([t.P for t in tracks])
        dt = times[None, :] - np.array([t.time for t in tracks])[:, None]  # (T, P)
        pos = x[:, None, :2] + x[:, None, 2:] * dt[..., None]
        ppp, ppv, pvv = P[:, None, :2, :2], P[:, None, :2, 2:], P[:, None, 2:, 2:]
        d = dt[..., None, None]
        cov = ppp + d * (ppv + np.swapaxes(ppv, -1, -2)) + d * d * pvv + self._q(dt)[..., :2, :2]
        return pos, cov

    def _costs(self, tracks: list[RadarTrack], plots: list[Plot], z: np.ndarray, R: np.ndarray,
               times: np.ndarray, free: np.ndarray) -> np.ndarray:
        cost = np.full((len(tracks), len(plots)), UNASSIGNED)
        cols = np.flatnonzero(free)
        if not tracks or cols.size == 0:
            return cost
        pos, cov = self._predicted_positions(tracks, times[cols])
        S = cov + R[cols][None]
        diff = z[cols][None] - pos
        det = S[..., 0, 0] * S[..., 1, 1] - S[..., 0, 1] * S[..., 1, 0]
        inv00, inv11, inv01 = S[..., 1, 1] / det, S[..., 0, 0] / det, -S[..., 0, 1] / det
        d2 = diff[..., 0] ** 2 * inv00 + 2 * diff[..., 0] * diff[..., 1] * inv01 + diff[..., 1] ** 2 * inv11
        c = d2 + np.log(det)
        c[d2 > self.gate] = UNASSIGNED
        cost[:, cols] = c
        return cost

    def _update(self, t: RadarTrack, z: np.ndarray, R: np.ndarray, time: float, plot: Plot) -> None:
        dt = time - t.time
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        x = F @ t.x
        P = F @ t.P @ F.T + self._q(np.array(dt))
        S = P[:2, :2] + R
        K = P[:, :2] @ np.linalg.inv(S)
        x = x + K @ (z - x[:2])
        P = (np.eye(4) - K[:, :2] @ np.eye(2, 4)) @ P
        t.x, t.P, t.time = x, 0.5 * (P + P.T), time
        t.hits += 1
        t.misses = 0
        t.updated = True
        t.last_plot = plot
        t.history.append((time, float(x[0]), float(x[1])))
        del t.history[:-200]

    # -- one sweep ---------------------------------------------------------------------------------

    def update(self, plots: list[Plot], sweep_time: float) -> list[RadarTrack]:
        """Take one sweep's plots; returns the confirmed tracks that a plot updated in it."""
        self.sweeps += 1
        s = self.settings
        for t in self.tracks:
            t.updated = False
        free = np.ones(len(plots), bool)
        if plots:
            z = np.array([[p.east, p.north] for p in plots])
            times = np.array([p.time for p in plots])
            range_sigma = max(self.range_sigma_m, 0.0)
            R = measurement_cov(plots, range_sigma, self.azimuth_sigma_rad)
            for group in ([t for t in self.tracks if t.confirmed], [t for t in self.tracks if not t.confirmed]):
                if not group:
                    continue
                cost = self._costs(group, plots, z, R, times, free)
                rows, cols = optimize.linear_sum_assignment(cost)
                for r, c in zip(rows, cols):
                    if cost[r, c] < UNASSIGNED:
                        self._update(group[r], z[c], R[c], times[c], plots[c])
                        free[c] = False
            for c in np.flatnonzero(free):
                if len(self.tracks) >= s.max_tracks:
                    self.dropped_full += 1
                    continue
                self._start(z[c], R[c], times[c], plots[c])
        kept = []
        for t in self.tracks:
            if not t.updated:
                t.misses += 1
            age = self.sweeps - t.born  # sweeps since it was started, this one included
            if not t.confirmed:
                if t.hits >= s.confirm_m and age < s.confirm_n:
                    t.confirmed = True
                    self.confirmed_total += 1
                elif t.hits + (s.confirm_n - age - 1) < s.confirm_m:
                    continue  # cannot reach M within N any more
            elif t.misses >= s.max_misses:
                continue
            kept.append(t)
        self.tracks = kept
        return [t for t in self.tracks if t.confirmed and t.updated]

    def _start(self, z: np.ndarray, R: np.ndarray, time: float, plot: Plot) -> None:
        v = (self.settings.max_speed_mps / 2.0) ** 2
        P = np.zeros((4, 4))
        P[:2, :2] = R
        P[2, 2] = P[3, 3] = v
        t = RadarTrack(self._next_id, np.array([z[0], z[1], 0.0, 0.0]), P, float(time), self.sweeps, last_plot=plot,
                       history=[(float(time), float(z[0]), float(z[1]))])
        self._next_id += 1
        self.started += 1
        self.tracks.append(t)
