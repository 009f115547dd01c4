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
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from edge.radar.sweep import Sweep

EIGHT = np.ones((3, 3), bool)
SPARSE_SHARE = 0.01  # up to this share of the cells detected, clusters are found from the cells' coordinates


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
    a_idx, r_idx = np.divmod(np.flatnonzero(mask), mask.shape[1])  # 6x faster than a 2-D np.nonzero
    if a_idx.size == 0:
        return []
    n_az = mask.shape[0]
    full_turn = n_az == sweep.azimuths and n_az > 2
    az = a_idx.astype(np.float64)
    if a_idx.size <= SPARSE_SHARE * mask.size:
        lab, az = _sparse_labels(a_idx, r_idx, az, mask.shape, full_turn)
    else:
        labels, _ = ndimage.label(mask, structure=EIGHT)
        lab = labels[a_idx, r_idx]
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


def _sparse_labels(a_idx: np.ndarray, r_idx: np.ndarray, az: np.ndarray, shape: tuple[int, int], wrap: bool):
    """Connected components (8-neighbours; across north when `wrap`) of a few detected cells, from
    their coordinates: a sweep's detections are sparse, and labelling them as a graph costs
    milliseconds where ndimage.label pays for every one of the 16 M cells of a large sweep."""
    n_az, n_rg = shape
    key = a_idx.astype(np.int64) * n_rg + r_idx  # np.nonzero's row-major order: sorted
    n = key.size
    src, dst, crossing = [], [], []
    for da, dr in ((0, 1), (1, -1), (1, 0), (1, 1)):  # half of the 8 neighbours: the edges are undirected
        na, nr = a_idx + da, r_idx + dr
        ok = (nr >= 0) & (nr < n_rg) & ((na < n_az) | wrap)
        across = ok & (na >= n_az)
        nkey = (na[ok] % n_az).astype(np.int64) * n_rg + nr[ok]
        pos = np.minimum(np.searchsorted(key, nkey), n - 1)
        hit = key[pos] == nkey
        src.append(np.flatnonzero(ok)[hit])
        dst.append(pos[hit])
        crossing.append(across[ok][hit])
    src, dst, crossing = np.concatenate(src), np.concatenate(dst), np.concatenate(crossing)
    graph = sparse.coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
    _, lab = csgraph.connected_components(graph, directed=False)
    if crossing.any():  # unwrap: the part of a cluster across north near bin 0 counts beyond the last bin
        across_north = np.isin(lab, np.unique(lab[src[crossing]]))
        az = az.copy()
        az[across_north & (az < n_az / 2)] += n_az
    return lab, az


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
