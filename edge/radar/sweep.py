"""Radials into sweeps: one antenna rotation of video in polar form, azimuth bins x range cells.

A sweep ends when the antenna passes north (a radial's azimuth falls back by more than half a
turn), or when the cell size changes (the radar switched range scale). Radials are put in the
azimuth bin of their mid azimuth (a radial wider than a bin fills every bin it covers); a bin
nobody filled stays empty and is marked so. Lost messages are counted from gaps in I240/020.

    >>> asm = SweepAssembler(azimuths=4, max_cells=8)
    >>> for k in range(5):                          # the fifth radial starts the next turn
    ...     sweep = asm.add(VideoRadial(0, 0, k, (k % 4) * 90.0, (k % 4) * 90.0 + 90.0, 0, 1e-7,
    ...                                 np.full(8, k, np.uint8)), time=float(k))
    >>> sweep.power.shape, sweep.times.tolist(), bool(sweep.filled.all())
    ((4, 8), [0.0, 1.0, 2.0, 3.0], True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.radar.cat240 import VideoRadial


@dataclass
class Sweep:
    """One rotation: power[a, k] is azimuth bin a (centre (a + 0.5) x 360 / azimuths degrees) and
    range cell first_cell + k (range (first_cell + k) x cell_m metres)."""

    index: int
    power: np.ndarray  # (azimuths, cells) of the radar's cell values (uint8/16/32 or float32)
    times: np.ndarray  # (azimuths,) epoch seconds when each bin was swept (NaN: never)
    filled: np.ndarray  # (azimuths,) bool
    cell_m: float
    first_cell: int = 0
    source: tuple[int, int] = (0, 0)  # SAC, SIC
    lost: int = 0  # messages lost within this sweep (I240/020 gaps)
    heading_deg: float = 0.0  # added to every azimuth (heading-up displays); 0 for true-north video

    @property
    def azimuths(self) -> int:
        return int(self.power.shape[0])

    @property
    def time(self) -> float:
        """When the sweep ended (its latest radial)."""
        t = self.times[np.isfinite(self.times)]
        return float(t.max()) if t.size else math.nan

    @property
    def max_range_m(self) -> float:
        return (self.first_cell + self.power.shape[1]) * self.cell_m

    def time_at(self, az_bin: np.ndarray | float) -> np.ndarray:
        """Time the antenna pointed at (fractional) azimuth bins; bins never swept get the sweep's time."""
        idx = np.asarray(np.floor(az_bin), dtype=np.int64) % self.azimuths
        t = self.times[idx]
        return np.where(np.isfinite(t), t, self.time)


class SweepAssembler:
    """Radials in (one at a time, in the order received), completed sweeps out."""

    def __init__(self, azimuths: int = 4096, max_cells: int = 4096, dtype=np.uint16):
        self.azimuths, self.max_cells = int(azimuths), int(max_cells)
        self._dtype = np.dtype(dtype)
        self._buf: np.ndarray | None = None
        self._times = np.full(self.azimuths, np.nan)
        self._filled = np.zeros(self.azimuths, bool)
        self._cell_dur: float | None = None
        self._first, self._last = None, 0
        self._prev_az: float | None = None
        self._prev_index: int | None = None
        self._source = (0, 0)
        self._lost = 0
        self.sweeps = 0
        self.lost_messages = 0
        self.clipped_cells = 0

    def add(self, radial: VideoRadial, time: float) -> Sweep | None:
        """Take one radial received (or stamped) at `time`; returns the sweep it completed, if any."""
        done = None
        az = radial.mid_az_deg
        if self._cell_dur is not None and (
                not math.isclose(radial.cell_duration_s, self._cell_dur, rel_tol=1e-6)
                or (self._prev_az is not None and self._prev_az - az > 180.0)):
            done = self._finish()
        if self._prev_index is not None:
            gap = (radial.index - self._prev_index - 1) % (1 << 32)
            if 0 < gap < 1 << 16:  # a wrap of the 32-bit counter, or a restart, is not a loss
                self._lost += gap
                self.lost_messages += gap
        self._prev_index, self._prev_az = radial.index, az
        self._cell_dur = radial.cell_duration_s
        self._source = (radial.sac, radial.sic)
        if self._buf is None:
            dtype = np.promote_types(self._dtype, radial.cells.dtype)
            self._buf = np.zeros((self.azimuths, self.max_cells), dtype)
        elif not np.can_cast(radial.cells.dtype, self._buf.dtype):
            self._buf = self._buf.astype(np.promote_types(self._buf.dtype, radial.cells.dtype))
        start = min(int(radial.start_cell), self.max_cells)
        cells = radial.cells[: self.max_cells - start]
        self.clipped_cells += len(radial.cells) - len(cells)
        stop = start + len(cells)
        for b in self._bins(radial):
            self._buf[b, start:stop] = cells
            self._times[b] = time
            self._filled[b] = True
        if len(cells):
            self._first = start if self._first is None else min(self._first, start)
            self._last = max(self._last, stop)
        return done

    def _bins(self, radial: VideoRadial) -> range | list[int]:
        width = 360.0 / self.azimuths
        span = (radial.end_az_deg - radial.start_az_deg) % 360.0
        if span <= width:
            return [int(radial.mid_az_deg / width) % self.azimuths]
        first = int(math.ceil(radial.start_az_deg / width - 0.5))  # bins whose centre the radial covers
        count = max(1, int(round(span / width)))
        return [(first + i) % self.azimuths for i in range(count)]

    def _finish(self) -> Sweep | None:
        if self._buf is None or self._first is None or self._last <= self._first:
            self._reset()
            return None
        sweep = Sweep(self.sweeps, self._buf[:, self._first:self._last].copy(), self._times.copy(),
                      self._filled.copy(), self._cell_dur * 299_792_458.0 / 2.0, self._first, self._source, self._lost)
        self.sweeps += 1
        self._reset()
        return sweep

    def flush(self) -> Sweep | None:
        """The sweep in progress (at the end of a recording)."""
        return self._finish()

    def _reset(self) -> None:
        if self._buf is not None:
            self._buf[:, self._first or 0:self._last] = 0
        self._times[:] = np.nan
        self._filled[:] = False
        self._first, self._last, self._lost = None, 0, 0
