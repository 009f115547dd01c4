"""Constant-velocity Kalman filters for many boxes at once, stepped by real elapsed time.

State per box: centre x, centre y, width, height and their rates, in pixels and pixels per
second: (cx, cy, w, h, vcx, vcy, vw, vh). All filters of a tracker live in batched arrays
(rows = tracks), so a frame's predict and update are a handful of numpy calls whatever the
number of tracks.

The four coordinates move independently (F pairs each with its own rate, the measurement sees
each coordinate alone, and all noise is diagonal), so an 8x8 covariance that starts diagonal
stays four independent 2x2 blocks for ever. The bank stores exactly those blocks, as one
(N, 3, 4) array: var(position), cov(position, rate), var(rate). The result equals the 8x8
filter (tests/test_tracker.py checks it against one), with element-wise arithmetic instead of
batched matrix products and solves.

Noise is a fraction of the box's size (horizontal terms scale with its width, vertical ones
with its height), so a far-away person and a near truck are filtered alike. Process noise is a
continuous-time model integrated over the real dt between frames: one 0.2 s step and five
0.04 s steps add the same uncertainty, which is what lets one configuration serve 5 fps and
25 fps cameras.

    >>> bank = KalmanBank(KalmanNoise())
    >>> bank.add(np.array([[10.0, 10.0, 10.0, 20.0]]))
    >>> bank.predict(0.2)
    >>> bank.update(np.array([0]), np.array([[12.0, 10.0, 10.0, 20.0]]))
    >>> bool(bank.mean[0, 4] > 0)    # moving right, in px/s
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KalmanNoise:
    """Noise levels, as fractions of the box's width (x terms) or height (y terms).

    measurement: std of a detector's box coordinates around the truth.
    position: std of unmodelled position drift per sqrt(second).
    velocity: std of unmodelled rate change per sqrt(second) (acceleration noise).
    initial_velocity: std of a new track's unknown rates, per second.
    """

    measurement: float = 0.05
    position: float = 0.27
    velocity: float = 1.0
    initial_velocity: float = 1.9


def _scale2(wh: np.ndarray) -> np.ndarray:
    """(N, 4) squared size scale per coordinate: w for cx and w, h for cy and h."""
    wh2 = np.maximum(wh, 1.0) ** 2
    return np.concatenate([wh2, wh2], axis=1)


class KalmanBank:
    """N constant-velocity box filters as batched arrays (rows = tracks).

    `cov[:, 0]` is var(position), `cov[:, 1]` cov(position, rate), `cov[:, 2]` var(rate), each
    over (cx, cy, w, h); one array so that a frame's gather and scatter are one call each.
    """

    def __init__(self, noise: KalmanNoise):
        self.noise = noise
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))

    def __len__(self) -> int:
        return len(self.mean)

    def add(self, xywh: np.ndarray) -> None:
        """Start filters at measured boxes (N, 4: cx, cy, w, h) with unknown rates."""
        if not len(xywh):
            return
        mean = np.zeros((len(xywh), 8))
        mean[:, :4] = xywh
        s2 = _scale2(xywh[:, 2:4])
        cov = np.zeros((len(xywh), 3, 4))
        # One detection pins the position to about twice the measurement noise.
        cov[:, 0] = (2.0 * self.noise.measurement) ** 2 * s2
        cov[:, 2] = self.noise.initial_velocity**2 * s2
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])

    def keep(self, rows: np.ndarray) -> None:
        """Drop every filter not in `rows` (a boolean mask or indices), keeping order."""
        self.mean = self.mean[rows]
        self.cov = self.cov[rows]

    def predict(self, dt: float, frozen_size: np.ndarray | None = None) -> None:
        """Advance every filter by dt seconds.

        `frozen_size` (boolean per row) stops the size rates of those rows first: an occluded
        object's box seldom keeps growing or shrinking, and a drifting size ruins IoU matches.
        """
        if not len(self.mean) or dt <= 0.0:
            return
        if frozen_size is not None and frozen_size.any():
            self.mean[frozen_size, 6:8] = 0.0
        self.mean[:, :4] += dt * self.mean[:, 4:]
        var_p, cov_pv, var_v = self.cov[:, 0], self.cov[:, 1], self.cov[:, 2]
        # F P F^T per 2x2 block, then continuous white-noise acceleration plus position
        # diffusion integrated over dt.
        s2 = _scale2(self.mean[:, 2:4])
        qp, qv = self.noise.position**2, self.noise.velocity**2
        var_p += dt * (2.0 * cov_pv + dt * var_v) + (qp * dt + qv * dt**3 / 3.0) * s2
        cov_pv += dt * var_v + (qv * dt**2 / 2.0) * s2
        var_v += (qv * dt) * s2

    def update(self, rows: np.ndarray, xywh: np.ndarray) -> None:
        """Correct the filters at `rows` (indices) with measured boxes (M, 4: cx, cy, w, h)."""
        if not len(rows):
            return
        mean, cov = self.mean[rows], self.cov[rows]
        var_p, cov_pv, var_v = cov[:, 0], cov[:, 1], cov[:, 2]
        innovation_var = var_p + self.noise.measurement**2 * _scale2(mean[:, 2:4])
        gain_p = var_p / innovation_var
        gain_v = cov_pv / innovation_var
        innovation = xywh - mean[:, :4]
        mean[:, :4] += gain_p * innovation
        mean[:, 4:] += gain_v * innovation
        var_v -= gain_v * cov_pv  # before cov_pv changes below
        keep = 1.0 - gain_p
        var_p *= keep
        cov_pv *= keep
        self.mean[rows] = mean
        self.cov[rows] = cov

    def covariance(self) -> np.ndarray:
        """The full (N, 8, 8) covariance, for inspection and tests."""
        n = len(self.mean)
        full = np.zeros((n, 8, 8))
        i = np.arange(4)
        full[:, i, i] = self.cov[:, 0]
        full[:, i, i + 4] = self.cov[:, 1]
        full[:, i + 4, i] = self.cov[:, 1]
        full[:, i + 4, i + 4] = self.cov[:, 2]
        return full

    def boxes(self) -> np.ndarray:
        """Current estimates as (N, 4) x1, y1, x2, y2."""
        c = self.mean[:, :2]
        half = np.maximum(self.mean[:, 2:4], 1e-3) / 2.0
        return np.concatenate([c - half, c + half], axis=1)


def xyxy_to_xywh(xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) cx, cy, w, h (float64)."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    wh = xyxy[:, 2:4] - xyxy[:, 0:2]
    return np.concatenate([xyxy[:, 0:2] + wh / 2.0, wh], axis=1)
