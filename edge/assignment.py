"""The global assignment (Hungarian) as a compiled function, for the fusion's per-frame kernel.

scipy.optimize.linear_sum_assignment is the reference and stays the library the rest of the code
uses; this is the same algorithm — the shortest augmenting path of Crouse (2016) as scipy runs
it, with its order of search and its tie rule — written for numba, so that the fusion's
association, assignment and link hysteresis run as one compiled call per frame instead of a
dozen calls with Python between them (why it is written here: numba cannot call scipy's C++).
It returns what scipy returns, pair for pair, ties included (tests/test_assignment.py checks it
against scipy on random, tied and rectangular matrices).

    Crouse D.F., On implementing 2D rectangular assignment algorithms, IEEE Transactions on
    Aerospace and Electronic Systems 52(4), 2016, pp. 1679-1696.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _augmenting_path(cost, u, v, path, row4col, shortest, i, sr, sc, remaining):
    """Dijkstra from row i over the reduced costs to the nearest free column; (sink, its cost)."""
    nc = cost.shape[1]
    min_val = 0.0
    num_remaining = nc
    for it in range(nc):
        remaining[it] = nc - it - 1
    sr[:] = False
    sc[:] = False
    shortest[:] = np.inf
    sink = -1
    while sink == -1:
        index = -1
        lowest = np.inf
        sr[i] = True
        for it in range(num_remaining):
            j = remaining[it]
            r = min_val + cost[i, j] - u[i] - v[j]
            if r < shortest[j]:
                path[j] = i
                shortest[j] = r
            # among equals, a free column (a new sink): what scipy does, and quicker on ties
            if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                lowest = shortest[j]
                index = it
        min_val = lowest
        if min_val == np.inf:
            return -1, min_val
        j = remaining[index]
        if row4col[j] == -1:
            sink = j
        else:
            i = row4col[j]
        sc[j] = True
        num_remaining -= 1
        remaining[index] = remaining[num_remaining]
    return sink, min_val


@njit(cache=True, nogil=True)
def linear_sum_assignment(cost):
    """The minimum-cost assignment of a finite (n, m) cost matrix: (rows, cols), as scipy's
    linear_sum_assignment returns them (rows ascending; min(n, m) pairs). Empty arrays for an
    empty matrix or one with no feasible assignment (an infinite cost)."""
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transpose = cost.shape[1] < cost.shape[0]
    c = np.ascontiguousarray(cost.T) if transpose else cost
    nr, nc = c.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    shortest = np.empty(nc)
    path = np.full(nc, -1, np.int64)
    col4row = np.full(nr, -1, np.int64)
    row4col = np.full(nc, -1, np.int64)
    sr = np.zeros(nr, np.bool_)
    sc = np.zeros(nc, np.bool_)
    remaining = np.empty(nc, np.int64)
    for cur in range(nr):
        sink, min_val = _augmenting_path(c, u, v, path, row4col, shortest, cur, sr, sc, remaining)
        if sink < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        u[cur] += min_val
        for i in range(nr):
            if sr[i] and i != cur:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(nc):
            if sc[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            j, col4row[i] = col4row[i], j
            if i == cur:
                break
    if transpose:
        order = np.argsort(col4row)
        return col4row[order], order.astype(np.int64)
    return np.arange(nr, dtype=np.int64), col4row
