"""Polar video to a Cartesian picture (PPI: plan position indicator), north up, the radar at the
centre: what an operator's radar screen shows, what a picture model is trained on, and the
background of the radar overlay.

Brightness is the echo in dB over the sweep's median cell (its noise floor): 0 dB black, 30 dB
and more white. Sweeps finer than the picture are max-pooled first (a one-cell blip stays
visible); the lookup from pixels to (azimuth, range) is computed once per geometry and cv2.remap
does the rest.

    >>> sweep = Sweep(0, np.ones((360, 100), np.float32), np.zeros(360), np.ones(360, bool), cell_m=10.0)
    >>> sweep.power[90, 50] = 1000.0                                        # due east, 500 m
    >>> img = PpiRenderer(200).render(sweep)
    >>> img.shape, int(np.argmax(img[100])), int(img[100].max() > 100)
    ((200, 200), 149, 1)
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from edge.radar.sweep import Sweep

DB_SPAN = 30.0


@functools.lru_cache(maxsize=16)
def _lookup(size: int, range_m: float, azimuths: int, cells: int, first_cell: int, cell_m: float):
    c = size / 2.0
    s = range_m / c  # metres per pixel
    u, v = np.meshgrid(np.arange(size, dtype=np.float64) + 0.5, np.arange(size, dtype=np.float64) + 0.5)
    east, north = (u - c) * s, (c - v) * s
    rng = np.hypot(east, north)
    az = np.degrees(np.arctan2(east, north)) % 360.0
    map_x = (rng / cell_m - first_cell).astype(np.float32)
    map_y = (az / 360.0 * azimuths - 0.5 + 1.0).astype(np.float32)  # +1: the padded row above bin 0
    map_x[rng > range_m] = -10.0  # outside the picture's circle
    return map_x, map_y


def pool(power: np.ndarray, max_az: int, max_cells: int) -> tuple[np.ndarray, int, int]:
    """Max-pool a polar image to at most (max_az, max_cells); returns it and the two factors."""
    fa = max(1, power.shape[0] // max_az)
    fr = max(1, power.shape[1] // max_cells)
    if fa == 1 and fr == 1:
        return power, 1, 1
    a, r = power.shape[0] // fa * fa, power.shape[1] // fr * fr
    return power[:a, :r].reshape(a // fa, fa, r // fr, fr).max(axis=(1, 3)), fa, fr


def brightness(power: np.ndarray) -> np.ndarray:
    """uint8 brightness of power cells: dB over the median, 0..DB_SPAN dB onto 0..255."""
    p = power.astype(np.float32)
    floor = float(np.median(p[:, :: max(1, p.shape[1] // 256)])) or 1.0
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(np.maximum(p, 1e-6) / floor)
    return np.clip(db * (255.0 / DB_SPAN), 0, 255).astype(np.uint8)


class PpiRenderer:
    def __init__(self, size_px: int = 800, range_m: float | None = None):
        self.size = int(size_px)
        self.range_m = range_m

    def metres_per_px(self, sweep: Sweep) -> float:
        return (self.range_m or sweep.max_range_m) / (self.size / 2.0)

    def render(self, sweep: Sweep) -> np.ndarray:
        """uint8 grayscale (size x size) picture of the sweep, north up."""
        range_m = self.range_m or sweep.max_range_m
        pooled, fa, fr = pool(sweep.power, 4 * self.size, self.size)
        polar = brightness(pooled)
        if sweep.heading_deg:
            polar = np.roll(polar, int(round(sweep.heading_deg / 360.0 * polar.shape[0])), axis=0)
        padded = np.vstack([polar[-1:], polar, polar[:1]])  # azimuth wraps: bilinear across north
        mx, my = _lookup(self.size, float(range_m), polar.shape[0], polar.shape[1], sweep.first_cell / fr,
                         sweep.cell_m * fr)
        return cv2.remap(padded, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_polar(self, sweep: Sweep, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of a rendered picture -> (range m, true azimuth degrees) from the radar."""
        s = self.metres_per_px(sweep)
        c = self.size / 2.0
        east, north = (np.asarray(u) - c) * s, (c - np.asarray(v)) * s
        return np.hypot(east, north), np.degrees(np.arctan2(east, north)) % 360.0

    def to_px(self, sweep: Sweep, east, north) -> np.ndarray:
        """Radar-relative metres -> picture pixels (N, 2)."""
        s = self.metres_per_px(sweep)
        c = self.size / 2.0
        return np.stack([c + np.asarray(east, dtype=np.float64) / s, c - np.asarray(north, dtype=np.float64) / s], -1)

