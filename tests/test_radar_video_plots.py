"""Plots from detected cells: the sparse path (clusters from the cells' coordinates, for the few
detections of a large sweep) gives exactly the plots of the dense one (ndimage.label), across
north too."""

from __future__ import annotations

import numpy as np
import pytest

from edge.radar import plots
from edge.radar.sweep import Sweep


def _key(p: plots.Plot) -> tuple:
    return (round(p.azimuth_deg, 6), round(p.range_m, 6), p.cells, round(p.azimuth_extent_deg, 6),
            round(p.range_extent_m, 6), round(p.amplitude, 4), round(p.power, 3))


@pytest.mark.parametrize("seed", range(6))
def test_sparse_and_dense_clustering_give_the_same_plots(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n_az, n_rg = int(rng.integers(3, 80)), int(rng.integers(3, 80))
        mask = rng.random((n_az, n_rg)) < rng.uniform(0.002, 0.3)
        mask[0, :4] = mask[-1, 1:5] = rng.random() < 0.5  # a cluster across north, half the time
        sweep = Sweep(0, rng.exponential(1.0, (n_az, n_rg)).astype(np.float32), np.arange(n_az, dtype=float),
                      np.ones(n_az, bool), 15.0)
        monkeypatch.setattr(plots, "SPARSE_SHARE", 0.0)
        dense = sorted(map(_key, plots.extract_plots(sweep, mask, max_cells=10 ** 6)))
        monkeypatch.setattr(plots, "SPARSE_SHARE", 1.0)
        sparse = sorted(map(_key, plots.extract_plots(sweep, mask, max_cells=10 ** 6)))
        assert sparse == dense


def test_a_cluster_across_north_is_one_plot_at_north():
    sweep = Sweep(0, np.ones((360, 50), np.float32), np.arange(360.0), np.ones(360, bool), 10.0)
    mask = np.zeros((360, 50), bool)
    mask[[358, 359, 0, 1], 20] = True
    [p] = plots.extract_plots(sweep, mask)  # 4 of 18,000 cells: the sparse path
    assert p.cells == 4 and p.azimuth_deg == pytest.approx(0.0) and p.azimuth_extent_deg == 4.0
