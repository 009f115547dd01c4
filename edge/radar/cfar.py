"""Constant false-alarm rate detection on polar radar video, and its theory.

Every cell under test (CUT) is compared with a threshold set from its reference cells: `ref`
cells on each side of it in range, beyond `guard` cells on each side that are left out (a
target's own energy spills into its neighbours). The video is taken as square-law (power):
in Rayleigh noise each cell is exponential, and

- CA-CFAR (cell averaging): threshold = alpha x (sum of the N reference cells), with
  alpha = Pfa^(-1/N) - 1, which gives exactly the configured Pfa in homogeneous noise. Near the
  ends of the sweep, where one side is cut short, N is the count that exists and alpha follows it.
- OS-CFAR (ordered statistic, for clutter edges): threshold = alpha x (the k-th smallest
  reference cell), alpha solving Pfa = prod_{i=0}^{k-1} (N - i) / (N - i + alpha).

Theory (square-law detector, N reference cells, alpha on the sum, SNR per cell):
- Swerling 1: Pd = (1 + alpha / (1 + SNR))^(-N)
- Swerling 0: Pd = E_Z[ Q1(sqrt(2 SNR), sqrt(2 alpha Z)) ], Z ~ Gamma(N, 1) the noise sum in
  units of the noise power; computed numerically (Marcum Q1 as the noncentral chi-square
  survival function, scipy.stats.ncx2, integrated over Z with Gauss-Laguerre quadrature).

The sums are running sums along range (scipy.ndimage.uniform_filter1d), chunked over azimuth (vectorised; no Python loop per
cell), so a 4096 x 4096 sweep costs a few array passes.

    >>> x = np.random.default_rng(0).exponential(1.0, (64, 512)).astype(np.float32)
    >>> x[10, 200] = 200.0
    >>> mask = CFAR(guard=2, ref=16, pfa=1e-6).detect(x)
    >>> bool(mask[10, 200]), int(mask.sum())
    (True, 1)
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
from scipy import ndimage, optimize, special, stats

CHUNK_ROWS = 256  # azimuth rows per pass: keeps the float64 sums in cache-sized pieces


def ca_alpha(pfa: float, n: int | np.ndarray) -> np.ndarray:
    """CA-CFAR multiplier on the reference sum for `n` reference cells."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(n > 0, pfa ** (-1.0 / np.maximum(n, 1)) - 1.0, np.inf)


@functools.lru_cache(maxsize=64)
def os_alpha(pfa: float, n: int, k: int) -> float:
    """OS-CFAR multiplier on the k-th smallest of n reference cells (exponential noise)."""
    i = np.arange(k)

    def log_pfa(alpha: float) -> float:
        return float(np.sum(np.log((n - i) / (n - i + alpha)))) - math.log(pfa)

    return float(optimize.brentq(log_pfa, 1e-9, 1e9))


def pd_swerling1(snr: float | np.ndarray, pfa: float, n: int) -> np.ndarray:
    """Pd of CA-CFAR for a Swerling 1 target at `snr` (linear, per cell)."""
    return (1.0 + ca_alpha(pfa, n) / (1.0 + np.asarray(snr, dtype=np.float64))) ** (-n)


def pd_swerling0(snr: float | np.ndarray, pfa: float, n: int, nodes: int = 96) -> np.ndarray:
    """Pd of CA-CFAR for a steady (Swerling 0) target at `snr` (linear, per cell)."""
    alpha = float(ca_alpha(pfa, n))
    # Gauss-Laguerre for E over Z ~ Gamma(n, 1): integral of f(z) z^(n-1) e^-z / Gamma(n)
    z, w = special.roots_genlaguerre(nodes, n - 1)
    w = w / math.gamma(n) if n < 170 else w / np.exp(special.gammaln(n))
    snr = np.atleast_1d(np.asarray(snr, dtype=np.float64))
    out = np.array([np.sum(w * stats.ncx2.sf(2 * alpha * z, 2, 2 * s)) for s in snr])
    return out if out.size > 1 else out[0]


def reference_counts(cells: int, guard: int, ref: int) -> np.ndarray:
    """How many reference cells each range cell has (fewer near the ends)."""
    i = np.arange(cells)
    lag = np.clip(np.minimum(i - guard, cells) - np.maximum(i - guard - ref, 0), 0, ref)
    lead = np.clip(np.minimum(i + guard + ref + 1, cells) - np.maximum(i + guard + 1, 0), 0, ref)
    return lag + lead


class CFAR:
    """CA- or OS-CFAR along range; `detect(power)` gives the cells over their threshold."""

    def __init__(self, *, guard: int = 2, ref: int = 16, pfa: float = 1e-6, method: Literal["ca", "os"] = "ca",
                 os_rank: float = 0.75, min_amplitude: float = 0.0):
        if guard < 0 or ref < 1:
            raise ValueError("guard must be >= 0 and ref >= 1")
        if not 0 < pfa < 1:
            raise ValueError("pfa must be within 0..1")
        self.guard, self.ref, self.pfa, self.method = int(guard), int(ref), float(pfa), method
        self.os_k = max(1, min(2 * ref, int(round(os_rank * 2 * ref))))
        self.min_amplitude = float(min_amplitude)
        self._alpha_cache: dict[int, np.ndarray] = {}

    @property
    def n(self) -> int:
        return 2 * self.ref

    def _alpha(self, cells: int) -> np.ndarray:
        a = self._alpha_cache.get(cells)
        if a is None:
            a = ca_alpha(self.pfa, reference_counts(cells, self.guard, self.ref)).astype(np.float32)
            self._alpha_cache = {cells: a}
        return a

    def threshold(self, power: np.ndarray) -> np.ndarray:
        """The threshold of every cell (float32, same shape)."""
        x = np.asarray(power)
        if self.method == "os":
            return self._os_threshold(x)
        out = np.empty(x.shape, np.float32)
        for r0 in range(0, x.shape[0], CHUNK_ROWS):
            out[r0:r0 + CHUNK_ROWS] = self._ca_rows(x[r0:r0 + CHUNK_ROWS])
        return out

    def _ca_rows(self, x: np.ndarray) -> np.ndarray:
        rows, cells = x.shape
        g, r = self.guard, self.ref
        # w[:, j] = sum of x[:, j .. j+r-1] (zeros past the end): one running-sum pass in C
        w = ndimage.uniform_filter1d(x, r, axis=1, mode="constant", origin=-(r // 2), output=np.float32)
        w *= np.float32(r)
        total = np.zeros((rows, cells), np.float32)
        # leading window [i+g+1, i+g+r]: w at i+g+1 (cut short by the zero padding at the far end)
        if cells > g + 1:
            total[:, : cells - g - 1] = w[:, g + 1:]
        # lagging window [i-g-r, i-g-1]: w at i-g-r; near the start only the part that exists
        if cells > g + r:
            total[:, g + r:] += w[:, : cells - g - r]
        head = min(cells, g + r)
        if head > g + 1:
            part = np.cumsum(x[:, : head - g - 1], axis=1, dtype=np.float32)  # sums of x[0 .. i-g-1]
            total[:, g + 1:head] += part
        total *= self._alpha(cells).astype(np.float32)
        return total

    def _os_threshold(self, x: np.ndarray) -> np.ndarray:
        g, r = self.guard, self.ref
        footprint = np.ones((1, 2 * (g + r) + 1), bool)
        footprint[0, r:r + 2 * g + 1] = False  # guard cells and the CUT are not reference cells
        kth = ndimage.rank_filter(x.astype(np.float32, copy=False), rank=self.os_k - 1, footprint=footprint,
                                  mode="reflect")
        return kth * np.float32(os_alpha(self.pfa, self.n, self.os_k))

    def detect(self, power: np.ndarray) -> np.ndarray:
        """Boolean mask of the cells over their threshold (and over `min_amplitude`)."""
        x = np.asarray(power)
        if self.method == "os":
            mask = x > self._os_threshold(x)
        else:
            mask = np.empty(x.shape, bool)
            for r0 in range(0, x.shape[0], CHUNK_ROWS):
                rows = x[r0:r0 + CHUNK_ROWS]
                np.greater(rows, self._ca_rows(rows), out=mask[r0:r0 + CHUNK_ROWS])
        if self.min_amplitude > 0:
            mask &= x >= self.min_amplitude
        return mask
