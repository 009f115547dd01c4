"""The fusion's links between camera tracks and radar targets over time, as arrays (numba).

A link belongs to a camera track; its target is a radar target, named here by an integer the
fusion gives each target key (edge.fusion.Fusion interns them). Each track has one row in
these arrays (the rows of the fusion's smoothed costs):

    link     the target linked (-1: none)
    since    when the link was made
    support  when it was last supported (proposed by the association)
    cand     the pairing that challenges it (-1: none), and
    wins     how many frames in a row that challenger has won
    has      whether the track has a link record at all (a track never proposed has none)

The rules (hysteresis), applied each frame to the association's proposal for each track:
- a proposal equal to the link supports it (and ends any challenge);
- another proposal becomes or stays the challenger; one that wins `confirm_frames` frames in a
  row becomes the link;
- a link not supported for `keep_s` seconds is dropped;
- a target has one holder: a link made this frame takes it from any other track.

Written per track in Python (an object per link, tuple keys looked up in dicts) these rules and
their bookkeeping made the fusion step about 25 µs a frame slower with 50 tracks and 200
targets (the step 169-184 µs against 142-158, frames back to back, on this project's 2-core
machine); here they are compiled passes over small arrays, and `step` runs a frame's
association (edge.pairing), assignment (edge.assignment) and hysteresis as one call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from edge import pairing
from edge.assignment import linear_sum_assignment
from edge.pairing import INFEASIBLE

_NO_ROWS = np.zeros(0, np.int64)


class Links(NamedTuple):
    """The link arrays, a row per track (or, for one track, its row's values); passed to the
    kernels below unpacked, in this order."""

    link: np.ndarray
    since: np.ndarray
    support: np.ndarray
    cand: np.ndarray
    wins: np.ndarray
    has: np.ndarray

    def row(self, i: int) -> Links:
        return Links(*(a[i] for a in self))

    def set_row(self, i: int, values: Links) -> None:
        for a, v in zip(self, values):
            a[i] = v


def empty(n: int) -> Links:
    """Link arrays for n tracks without a record."""
    return Links(np.full(n, -1, np.int64), np.zeros(n), np.zeros(n), np.full(n, -1, np.int64), np.zeros(n, np.int64),
                 np.zeros(n, np.bool_))


@njit(cache=True, nogil=True)
def columns_of(link, col_uid):
    """The column (target in view) of each track's link, -1 when it has none or its target is
    not in view."""
    out = np.full(len(link), -1, np.int64)
    for i in range(len(link)):
        u = link[i]
        if u >= 0:
            for j in range(len(col_uid)):
                if col_uid[j] == u:
                    out[i] = j
                    break
    return out


@njit(cache=True, nogil=True)
def proposal(n, held_rows, held_cols, held_ok, rows, cols, pick_a, pick_b, sub):
    """This frame's proposed column per track (-1: none): the held pairs still in their gates,
    then the assignment's pairs (pick_a, pick_b index rows, cols and sub) that are feasible."""
    out = np.full(n, -1, np.int64)
    for k in range(len(held_rows)):
        if held_ok[k]:
            out[held_rows[k]] = held_cols[k]
    for k in range(len(pick_a)):
        a, b = pick_a[k], pick_b[k]
        if sub[a, b] < INFEASIBLE / 2:
            out[rows[a]] = cols[b]
    return out


@njit(cache=True, nogil=True)
def update(prop_col, col_uid, link, since, support, cand, wins, has, t, confirm_frames, keep_s):
    """Apply one frame's proposal (a column per track, -1: none) to the link arrays, in place.
    Returns whether a link was made this frame; when one was, a target linked by two tracks
    here stays with the one whose link was supported this frame (the one just made), or else
    the older link; the other loses its link."""
    n = len(link)
    made = False
    for i in range(n):
        want = col_uid[prop_col[i]] if prop_col[i] >= 0 else -1
        if not has[i]:
            if want < 0:
                continue
            has[i] = True
            link[i], since[i], support[i], cand[i], wins[i] = want, t, t, want, 1
            if confirm_frames > 1:
                link[i] = -1  # not linked yet: a candidate
            else:
                made = True
            continue
        if want >= 0 and want == link[i]:
            support[i], cand[i], wins[i] = t, -1, 0
            continue
        if want >= 0:
            if want == cand[i]:
                wins[i] += 1
            else:
                cand[i], wins[i] = want, 1
            if wins[i] >= confirm_frames:
                link[i], since[i], support[i], cand[i], wins[i] = want, t, t, -1, 0
                made = True
                continue
        if link[i] >= 0 and t - support[i] > keep_s:
            link[i] = -1
    if made:
        for i in range(n):
            if link[i] < 0:
                continue
            for j in range(i + 1, n):
                if link[j] == link[i]:
                    # keep the one supported now, else the older (the first on a tie)
                    ki, kj = support[i] != t, support[j] != t
                    if kj < ki or (kj == ki and since[j] < since[i]):
                        link[i] = -1
                        break
                    link[j] = -1
    return made


@njit(cache=True, nogil=True)
def settled(link, since, support, cand, t, last_global):
    """The links that may be held next frame without a global association: supported this
    frame, no challenger, made no later than the last global association."""
    out = np.zeros(len(link), np.bool_)
    for i in range(len(link)):
        out[i] = link[i] >= 0 and cand[i] < 0 and support[i] == t and since[i] <= last_global
    return out


@njit(cache=True, nogil=True)
def step(cam_pos, cam_cov, cam_vel, cx, cy, per_sigma, rad, smoothed, on_ground, settled_rows, associate, everything,
         col_uid, link, since, support, cand, wins, has, t, last_global, gate, velocity_gate, smoothing, bonus,
         confirm_frames, keep_s):
    """A frame of the fusion's association and links in one call: the pair work
    (edge.pairing.associate; only when `associate`: the frame has tracks and targets in view),
    the global assignment over what it leaves open (edge.assignment, scipy's algorithm), the
    proposal, and the hysteresis (update) on the link arrays, in place. A settled link (a row of
    `settled_rows`) is held without the assignment unless the frame is global (`everything`).
    Returns (whether a link was made, the links settled for the next frame, each link's column)."""
    n = len(link)
    prop = np.full(n, -1, np.int64)
    if associate:
        link_col = columns_of(link, col_uid)
        held_rows = _NO_ROWS
        if not everything and settled_rows.any():
            held_rows = np.nonzero(settled_rows & (link_col >= 0))[0]
        held_cols = link_col[held_rows]
        held_ok, rows, cols, sub = pairing.associate(cam_pos, cam_cov, cam_vel, cx, cy, per_sigma, rad, smoothed,
                                                     on_ground, held_rows, held_cols, link_col, gate, velocity_gate,
                                                     smoothing, bonus)
        pick_a, pick_b = _NO_ROWS, _NO_ROWS
        if len(rows) and len(cols):
            pick_a, pick_b = linear_sum_assignment(sub)
        prop = proposal(n, held_rows, held_cols, held_ok, rows, cols, pick_a, pick_b, sub)
    made = update(prop, col_uid, link, since, support, cand, wins, has, t, confirm_frames, keep_s)
    return made, settled(link, since, support, cand, t, last_global), columns_of(link, col_uid)
