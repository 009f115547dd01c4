"""Camera tracks' velocities on the ground, for the fusion's velocity gate: each track's
least-squares line (east, north against time) over a sliding window, for all tracks at once.

Per-track running sums live in arrays (a row per track); each frame's positions are added to
them and subtracted again when the frame leaves the window. A row freed by a lost track is
reused only after the window has passed, so no old frame touches a new track. Times are
relative to each track's first, so the sums stay well conditioned. The sums and the fit are
compiled (numba): every frame, dozens of tracks, where numpy's per-call cost would dominate.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numba import njit

SUMS = 7  # per row: n, st, stt, se, sn, ste, stn


@njit(cache=True, nogil=True)
def _advance(sums, t0, rows, pos, t, half_window, leaving_rows, leaving):
    """One frame: the frames leaving the window are subtracted from their rows' sums, this
    frame's positions (NaN: not on the ground, skipped) added; returns (the rows and
    contributions this frame added, to subtract when it leaves; (N, 2) velocities of `rows`,
    NaN until a track has 3 positions over half a window)."""
    for k in range(len(leaving_rows)):
        for q in range(SUMS):
            sums[leaving_rows[k], q] -= leaving[k, q]
    used = np.empty(len(rows), np.int64)
    contrib = np.empty((len(rows), SUMS))
    k = 0
    for i in range(len(rows)):
        e, n = pos[i, 0], pos[i, 1]
        if not (np.isfinite(e) and np.isfinite(n)):
            continue
        r = rows[i]
        tt = t - t0[r]
        c = contrib[k]
        c[0], c[1], c[2], c[3], c[4], c[5], c[6] = 1.0, tt, tt * tt, e, n, e * tt, n * tt
        for q in range(SUMS):
            sums[r, q] += c[q]
        used[k] = r
        k += 1
    out = np.full((len(rows), 2), np.nan)
    for i in range(len(rows)):
        r = rows[i]
        n, st, stt, se, sn, ste, stn = sums[r, 0], sums[r, 1], sums[r, 2], sums[r, 3], sums[r, 4], sums[r, 5], sums[r, 6]
        if n < 3 or t - t0[r] < half_window:
            continue
        var = stt - st * st / n
        if not var > 1e-12:
            continue
        out[i, 0] = (ste - st * se / n) / var
        out[i, 1] = (stn - st * sn / n) / var
    return used[:k].copy(), contrib[:k].copy(), out


_NO_ROWS, _NO_SUMS = np.zeros(0, np.int64), np.zeros((0, SUMS))


class GroundVelocities:
    def __init__(self, window_s: float, capacity: int = 64):
        self.window = window_s
        self.rows: dict[int, int] = {}  # track id -> row
        self.sums = np.zeros((capacity, SUMS))
        self.t0 = np.zeros(capacity)
        self.free = list(range(capacity - 1, -1, -1))
        self.cooling: deque = deque()  # (time the row is free again, row)
        self.frames: deque = deque()  # (t, rows, contributions (k, SUMS))
        self._ids: list[int] | None = None  # the last update's track ids, and their rows
        self._id_rows = np.zeros(0, np.int64)

    def _row(self, tid: int, t: float) -> int:
        while self.cooling and self.cooling[0][0] <= t:
            self.free.append(self.cooling.popleft()[1])
        if not self.free:
            cap = len(self.t0)
            self.sums = np.vstack([self.sums, np.zeros((cap, SUMS))])
            self.t0 = np.concatenate([self.t0, np.zeros(cap)])
            self.free = list(range(2 * cap - 1, cap - 1, -1))
        row = self.rows[tid] = self.free.pop()
        self.sums[row] = 0.0
        self.t0[row] = t
        return row

    def update(self, ids: list[int], pos: np.ndarray, t: float) -> np.ndarray:
        """This frame's positions (N, 2; NaN: not on the ground) -> (N, 2) velocities (NaN until a
        track has 3 positions over half a window)."""
        rows, old_rows, old = self.begin(ids, t)
        pos = np.ascontiguousarray(pos, dtype=np.float64).reshape(-1, 2)
        used, contrib, velocity = _advance(self.sums, self.t0, rows, pos, float(t), self.window / 2, old_rows, old)
        self.end(t, used, contrib)
        return velocity

    def begin(self, ids: list[int], t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A frame's first half, for a caller that runs _advance itself (compiled with its own
        work): the tracks' rows, and the rows and contributions of the frames leaving the window.
        `end` takes what _advance returns."""
        if ids == self._ids:  # the usual frame: the same tracks as the last one
            rows = self._id_rows
        else:
            alive = set(ids)
            for tid in [k for k in self.rows if k not in alive]:
                self.cooling.append((t + self.window, self.rows.pop(tid)))
            rows = np.array([self.rows[tid] if tid in self.rows else self._row(tid, t) for tid in ids], dtype=np.int64)
            self._ids, self._id_rows = list(ids), rows
        leaving = []
        while self.frames and self.frames[0][0] < t - self.window:
            leaving.append(self.frames.popleft())
        if not leaving:
            return rows, _NO_ROWS, _NO_SUMS
        if len(leaving) == 1:
            return rows, leaving[0][1], leaving[0][2]
        return rows, np.concatenate([f[1] for f in leaving]), np.concatenate([f[2] for f in leaving])

    def end(self, t: float, used: np.ndarray, contrib: np.ndarray) -> None:
        self.frames.append((t, used, contrib))
