"""Detected cells into plots: connected cells (8-neighbours, across north too) are one plot,
placed at their power-weighted centroid in range and azimuth, with its extent and amplitude.

    >>> sweep = Sweep(0, np.zeros((360, 100), np.float32), np.arange(360.0), np.ones(360, bool), cell_m=10.0)
    >>> mask = np.zeros((360, 100), bool); mask[[359, 0, 1], 40] = True; sweep.power[[359, 0, 1], 40] = [1, 2, 1]
    >>> [p] = extract_plots(sweep, mask)
    >>> round(p.azimuth_deg, 2), p.range_m, p.cells, p.azimuth_extent_deg
    (0.5, 400.0, 3, 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from edge.radar.sweep import Sweep

EIGHT = np.ones((3, 3), bool)


@dataclass(frozen=True, slots=True)
class Plot:
    """One detection on a sweep, in polar coordinates from the radar (true azimuth)."""

    time: float  # when the antenna pointed at it
    range_m: float
    azimuth_deg: float
    range_extent_m: float
    azimuth_extent_deg: float
    amplitude: float  # peak cell value
    power: float  # sum of the plot's cell values
    cells: int
    score: float = 1.0  # a picture detector's confidence; 1 for CFAR plots

    @property
    def east(self) -> float:
        return self.range_m * math.sin(math.radians(self.azimuth_deg))

    @property
    def north(self) -> float:
        return self.range_m * math.cos(math.radians(self.azimuth_deg))


def extract_plots(sweep: Sweep, mask: np.ndarray, *, min_cells: int = 1, max_cells: int = 5000) -> list[Plot]:
    """Plots of the detected cells of a sweep; clusters of fewer than `min_cells` or more than
    `max_cells` cells (land masses the clutter map has not learned yet) are left out."""
    a_idx, r_idx = np.nonzero(mask)
    if a_idx.size == 0:
        return []
    labels, _ = ndimage.label(mask, structure=EIGHT)
    lab = labels[a_idx, r_idx]
    n_az = mask.shape[0]
    full_turn = n_az == sweep.azimuths and n_az > 2
    az = a_idx.astype(np.float64)
    if full_turn:  # clusters across north: join the labels of the last and the first row
        lab, az = _join_across_north(labels, lab, az, n_az)
    uniq, inv = np.unique(lab, return_inverse=True)
    w = sweep.power[a_idx, r_idx].astype(np.float64)
    wsum = np.bincount(inv, w)
    count = np.bincount(inv)
    safe = np.where(wsum > 0, wsum, 1.0)
    az_c = np.where(wsum > 0, np.bincount(inv, w * az) / safe, np.bincount(inv, az) / count)
    rg_c = np.where(wsum > 0, np.bincount(inv, w * r_idx) / safe, np.bincount(inv, r_idx) / count)
    order = np.argsort(inv, kind="stable")
    starts = np.r_[0, np.cumsum(count)[:-1]]
    peak = np.maximum.reduceat(w[order], starts)
    az_lo, az_hi = np.minimum.reduceat(az[order], starts), np.maximum.reduceat(az[order], starts)
    rg_lo, rg_hi = np.minimum.reduceat(r_idx[order], starts), np.maximum.reduceat(r_idx[order], starts)
    bin_deg = 360.0 / sweep.azimuths
    times = sweep.time_at(az_c)
    plots = []
    for i in range(len(uniq)):
        if not min_cells <= count[i] <= max_cells:
            continue
        plots.append(Plot(
            time=float(times[i]),
            range_m=float((sweep.first_cell + rg_c[i]) * sweep.cell_m),
            azimuth_deg=float(((az_c[i] + 0.5) * bin_deg + sweep.heading_deg) % 360.0),
            range_extent_m=float((rg_hi[i] - rg_lo[i] + 1) * sweep.cell_m),
            azimuth_extent_deg=float((az_hi[i] - az_lo[i] + 1) * bin_deg),
            amplitude=float(peak[i]), power=float(wsum[i]), cells=int(count[i])))
    return plots


def _join_across_north(labels: np.ndarray, lab: np.ndarray, az: np.ndarray, n_az: int):
    first, last = labels[0], labels[-1]
    pairs = set()
    for shift in (-1, 0, 1):  # 8-neighbours across the wrap
        f = first
        lst = np.roll(last, shift)
        if shift == -1:
            lst[-1] = 0
        elif shift == 1:
            lst[0] = 0
        both = (f > 0) & (lst > 0)
        pairs.update(zip(f[both].tolist(), lst[both].tolist()))
    if not pairs:
        return lab, az
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    joined = {x for p in pairs for x in p}
    mapping = {x: root(x) for x in joined}
    lab = lab.copy()
    wrapped = np.isin(lab, list(joined))
    lab[wrapped] = [mapping[v] for v in lab[wrapped].tolist()]
    # unwrap: the part of a joined cluster near north's far side counts beyond the last bin
    az = az.copy()
    az[wrapped & (az < n_az / 2)] += n_az
    return lab, az
