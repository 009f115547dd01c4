"""Pure picture geometry for zones and lines: anchors, containment, sides and crossings.

Coordinates are pixels with y pointing down, as OpenCV draws them. "Left of a line" means left
as seen on the picture when walking from its first point to its second.

    >>> inside_polygon(np.array([[5.0, 5.0], [20.0, 5.0]]), [(0, 0), (10, 0), (10, 10), (0, 10)]).tolist()
    [True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from numba import njit

Point = tuple[float, float]

# Anchor name -> (fraction across the box, fraction down the box).
ANCHORS = {
    "bottom_center": (0.5, 1.0),
    "center": (0.5, 0.5),
    "top_center": (0.5, 0.0),
    "bottom_left": (0.0, 1.0),
    "bottom_right": (1.0, 1.0),
}


def anchor_points(xyxy: np.ndarray, anchor: str = "bottom_center") -> np.ndarray:
    """The anchor point of each box (N, 4) -> (N, 2)."""
    fx, fy = ANCHORS[anchor]
    return _anchors(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4), fx, fy)


@njit(cache=True, nogil=True)
def _anchors(boxes, fx, fy):
    """Compiled: the fusion asks every frame for every track, and in numpy these are nine calls on
    arrays of a few dozen boxes (the same arithmetic, so the same numbers to the bit)."""
    out = np.empty((len(boxes), 2))
    for i in range(len(boxes)):
        out[i, 0] = boxes[i, 0] + fx * (boxes[i, 2] - boxes[i, 0])
        out[i, 1] = boxes[i, 1] + fy * (boxes[i, 3] - boxes[i, 1])
    return out


def to_pixels(points: Sequence[Point], coordinates: str, width: int, height: int) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if coordinates == "normalized":
        pts = pts * [width, height]
    return pts


def prepared_polygon(polygon: Sequence[Point] | np.ndarray) -> shapely.Polygon:
    """A polygon ready for many containment tests (GEOS builds its index once)."""
    poly = shapely.Polygon(np.asarray(polygon, dtype=np.float64).reshape(-1, 2))
    shapely.prepare(poly)
    return poly


def inside_polygon(points: np.ndarray, polygon: Sequence[Point] | np.ndarray | shapely.Polygon) -> np.ndarray:
    """Which points lie inside the polygon or on its boundary (concave polygons work): an object
    standing on a zone's edge is in it. Vectorised in GEOS (shapely), which matters at 50
    objects per frame: per-point calls cost more in Python than the tests themselves."""
    poly = polygon if isinstance(polygon, shapely.Polygon) else prepared_polygon(polygon)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return shapely.intersects_xy(poly, pts[:, 0], pts[:, 1])


def side_of_line(points: np.ndarray, a: Point, b: Point) -> np.ndarray:
    """+1 left of a->b (as seen on the picture), -1 right, 0 on the line, for each point (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    cross = (b[0] - a[0]) * (pts[:, 1] - a[1]) - (b[1] - a[1]) * (pts[:, 0] - a[0])
    # With y down, a point on the picture's left of the walk has a negative cross product.
    return -np.sign(cross)


def _orient(p: Point, q: Point, r: Point) -> float:
    return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])


def _on_segment(p: Point, q: Point, r: Point) -> bool:
    """r, known collinear with p-q, lies within the segment's bounding box."""
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


def segments_intersect(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """Whether closed segments p1-p2 and q1-q2 share a point (touching counts)."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(q1, q2, p1))
        or (d2 == 0 and _on_segment(q1, q2, p2))
        or (d3 == 0 and _on_segment(p1, p2, q1))
        or (d4 == 0 and _on_segment(p1, p2, q2))
    )


def polygon_self_intersection(points: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that touch (edge i runs from point i to i+1), or None.

    O(n^2) over at most a few hundred corners, once when a config loads.
    """
    pts = [tuple(map(float, p)) for p in points]
    n = len(pts)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner by construction
            if segments_intersect(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]):
                return i, j
    return None


def segment_length(a: Point, b: Point) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def crossing_direction(prev: Point, now: Point, a: Point, b: Point, prev_side: int, side: int | None = None) -> int:
    """+1 when the move prev->now crosses segment a-b onto its left side, -1 onto its right,
    0 when it does not cross. `prev_side` is the last side the object was seen on (not 0):
    a point resting on the line has not crossed yet, it crosses when it reaches the other side.
    `side` is now's side when the caller has it already.
    """
    if side is None:
        side = int(side_of_line(np.array([now]), a, b)[0])
    if side == 0 or side == prev_side or prev_side == 0:
        return 0
    if not segments_intersect(prev, now, a, b):
        return 0  # went round the end of the segment, not through it
    return side
