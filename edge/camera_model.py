"""Camera geometry: where a pixel stands on the ground, and where a place appears in the picture.

A camera is known either by its full pose (position, height, heading, pitch, roll) plus pinhole
intrinsics with OpenCV's distortion model, or by a ground-plane homography solved from at least
4 surveyed pixel/place pairs. Both give one interface, `CameraModel`.

World coordinates are the post's `LocalFrame` (edge/geo.py): east and north metres around the
post, up in metres above the flat ground plane the post stands on. The plane is tangent to the
Earth at the post: the Earth's curvature is ignored (it drops the ground by d^2 / 2R, 0.8 m at
3.2 km, 7.8 m at 10 km), which matters for ranges near the horizon of a low camera.

    >>> from edge.geo import LocalFrame
    >>> frame = LocalFrame(58.2123, 11.5475)
    >>> geometry = CameraGeometry(height_m=10, heading_deg=90, pitch_deg=-10, hfov_deg=60, image_size=(1920, 1080))
    >>> camera = CameraModel.from_config(geometry, frame)
    >>> [round(float(x)) for x in camera.pixel_to_ground([[959.5, 539.5]])[0]]   # the image centre
    [57, 0]
    >>> round(float(camera.bearing_of_pixel(1919.5)[0]))   # the right edge: 30 degrees right of east
    120
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.geo import LocalFrame, bearing_of
from edge.geometry import anchor_points

# -- config ----------------------------------------------------------------------------------

PixelSize = Annotated[int, Field(gt=0, le=100_000)]
MIN_POINTS = 4
# A set of points counts as "on one line" when its spread across the line is under 1% of its
# spread along it: a homography from such points extrapolates wildly off the line.
COLLINEAR_RATIO = 0.01


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SurveyPoint(_Strict):
    """A pixel of the picture and the place on the ground it shows, surveyed (GPS, a map)."""

    pixel: tuple[float, float] = Field(description="(u, v) in image pixels, x right and y down.")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude of the place, degrees WGS84.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude of the place, degrees WGS84.")
    east: float | None = Field(None, description="Metres east of the post (instead of lat/lon).")
    north: float | None = Field(None, description="Metres north of the post (instead of lat/lon).")

    @model_validator(mode="after")
    def _one_kind_of_place(self):
        geo = (self.lat is not None, self.lon is not None)
        local = (self.east is not None, self.north is not None)
        if any(geo) and any(local):
            raise ValueError("give lat and lon, or east and north, not both")
        if not (all(geo) or all(local)):
            raise ValueError("a survey point needs lat and lon, or east and north")
        return self

    @property
    def is_geo(self) -> bool:
        return self.lat is not None


POSE_FIELDS = ("height_m", "heading_deg", "pitch_deg", "roll_deg", "hfov_deg", "fx", "fy", "cx", "cy",
               "k1", "k2", "p1", "p2", "k3")


class CameraGeometry(_Strict):
    """Where a camera stands and how it sees: a full pose with intrinsics, or a ground homography.

    Pose: `height_m`, `heading_deg`, `pitch_deg`, `roll_deg`, `image_size` and either `hfov_deg`
    or `fx`, `fy`, `cx`, `cy` (optionally OpenCV distortion k1, k2, p1, p2, k3).
    Homography: `homography` (3x3, pixels -> east/north metres) or `points` (>= 4 surveyed pairs).
    """

    position: tuple[float, float] | None = Field(
        None, description="(lat, lon) of the camera, degrees WGS84; default: the post's position (node lat/lon)."
    )
    height_m: float | None = Field(
        None, gt=0, le=10_000, description="Height of the camera's lens above the ground plane the post stands on, metres."
    )
    heading_deg: float | None = Field(
        None, ge=-360, le=360, description="True bearing of the optical axis, degrees clockwise from north."
    )
    pitch_deg: float = Field(0.0, ge=-90, le=90, description="Tilt of the optical axis, degrees; down is negative.")
    roll_deg: float = Field(
        0.0, ge=-180, le=180, description="Rotation about the optical axis, degrees; positive lowers the picture's right side."
    )
    hfov_deg: float | None = Field(
        None, gt=0, lt=180, description="Horizontal field of view, degrees (square pixels, principal point at the centre)."
    )
    fx: float | None = Field(None, gt=0, description="Focal length in pixels along x (with fy, cx, cy instead of hfov_deg).")
    fy: float | None = Field(None, gt=0, description="Focal length in pixels along y.")
    cx: float | None = Field(None, description="Principal point x, pixels.")
    cy: float | None = Field(None, description="Principal point y, pixels.")
    k1: float = Field(0.0, description="Radial distortion, OpenCV's model.")
    k2: float = Field(0.0, description="Radial distortion, OpenCV's model.")
    p1: float = Field(0.0, description="Tangential distortion, OpenCV's model.")
    p2: float = Field(0.0, description="Tangential distortion, OpenCV's model.")
    k3: float = Field(0.0, description="Radial distortion, OpenCV's model.")
    image_size: tuple[PixelSize, PixelSize] | None = Field(
        None, description="(width, height) of the picture the pixels refer to; needed with a pose."
    )
    homography: list[list[float]] | None = Field(
        None, description="3x3 matrix mapping image pixels (u, v, 1) to the post's east/north metres (instead of a pose)."
    )
    points: list[SurveyPoint] | None = Field(
        None, max_length=1000, description="At least 4 surveyed pixel/place pairs; the homography is solved from them at load."
    )
    pixel_sigma: float = Field(
        2.0, gt=0, le=100, description="Uncertainty of an object's anchor pixel (1 sigma, pixels), for ground position ellipses."
    )

    @field_validator("position")
    @classmethod
    def _lat_lon(cls, v):
        if v is not None and not (-90 <= v[0] <= 90 and -180 <= v[1] <= 180):
            raise ValueError(f"({v[0]}, {v[1]}) is not a (lat, lon) in degrees")
        return v

    @field_validator("homography")
    @classmethod
    def _three_by_three(cls, v):
        if v is None:
            return v
        h = np.asarray(v, dtype=object)
        if h.shape != (3, 3):
            raise ValueError("a homography is 3 rows of 3 numbers")
        h = np.asarray(v, dtype=np.float64)
        if not np.isfinite(h).all():
            raise ValueError("the homography has a number that is not finite")
        if abs(np.linalg.det(h)) < 1e-12 * np.abs(h).max() ** 3:
            raise ValueError("the homography is singular: it maps the picture onto a line")
        return v

    @field_validator("points")
    @classmethod
    def _enough_points(cls, v):
        if v is not None and len(v) < MIN_POINTS:
            raise ValueError(f"a homography needs at least {MIN_POINTS} point pairs, got {len(v)}")
        return v

    @model_validator(mode="after")
    def _one_description(self):
        given = self.model_fields_set
        pose = [f for f in POSE_FIELDS if f in given]
        if self.homography is not None and self.points is not None:
            raise ValueError("give `homography` or `points`, not both")
        if self.homography is not None or self.points is not None:
            if pose:
                raise ValueError(f"a homography replaces the pose: remove {', '.join(pose)} (or the homography)")
            return self._check_survey()
        if not pose:
            raise ValueError("give the camera's pose (height_m, heading_deg, image_size, hfov_deg or fx, fy, cx, cy) "
                             "or a ground homography (`homography` or `points`)")
        problems = []
        if self.height_m is None:
            problems.append("a camera pose needs height_m (metres above the ground), or give `points` for a homography")
        if self.heading_deg is None:
            problems.append("a camera pose needs heading_deg (true bearing of the optical axis)")
        if self.image_size is None:
            problems.append("a camera pose needs image_size [width, height]")
        pinhole = [f for f in ("fx", "fy", "cx", "cy") if getattr(self, f) is not None]
        if self.hfov_deg is not None and pinhole:
            problems.append("give hfov_deg or fx, fy, cx, cy, not both")
        elif self.hfov_deg is None and len(pinhole) < 4:
            missing = [f for f in ("fx", "fy", "cx", "cy") if f not in pinhole]
            problems.append(
                "a camera pose needs hfov_deg, or fx, fy, cx and cy" + (f" (missing: {', '.join(missing)})" if pinhole else "")
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _check_survey(self):
        if self.points is None:
            return self
        kinds = {p.is_geo for p in self.points}
        if len(kinds) > 1:
            raise ValueError("the points mix lat/lon and east/north: give them all one way")
        # Problems are worded "points[i] ..." so that the config's error lines locate them.
        problems = survey_problems(np.array([p.pixel for p in self.points], dtype=np.float64), _survey_ground_approx(self.points))
        if self.image_size is not None:
            w, h = self.image_size
            problems += [f"points[{i}].pixel: ({p.pixel[0]:g}, {p.pixel[1]:g}) is outside the {w}x{h} image"
                         for i, p in enumerate(self.points) if not (0 <= p.pixel[0] <= w and 0 <= p.pixel[1] <= h)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_pose(self) -> bool:
        return self.homography is None and self.points is None

    @property
    def needs_post_position(self) -> bool:
        """Survey points in lat/lon are placed in the post's frame: the node needs its lat/lon."""
        return bool(self.points) and any(p.is_geo for p in self.points)


def _survey_ground_approx(points: list[SurveyPoint]) -> np.ndarray:
    """Ground positions in metres, good enough to check a survey's shape before the post's frame
    is known: lat/lon go through a local equirectangular projection around their mean."""
    if not points[0].is_geo:
        return np.array([(p.east, p.north) for p in points], dtype=np.float64)
    latlon = np.radians([(p.lat, p.lon) for p in points])
    return np.c_[latlon[:, 1] * math.cos(latlon[:, 0].mean()), latlon[:, 0]] * 6_371_000


def _spread_ratio(xy: np.ndarray) -> float:
    """Spread across the best-fitting line over spread along it (0 for points on a line)."""
    s = np.linalg.svd(xy - xy.mean(axis=0), compute_uv=False)
    return float(s[1] / s[0]) if s[0] > 0 else 0.0


def survey_problems(pixels: np.ndarray, ground: np.ndarray) -> list[str]:
    """Why these pixel/ground pairs cannot give a homography (empty when they can).

    >>> survey_problems(np.array([[0, 0], [10, 0], [20, 0]]), np.array([[0, 0], [1, 0], [0, 1]]))
    ['a homography needs at least 4 point pairs, got 3']
    """
    n = len(pixels)
    if n < MIN_POINTS:
        return [f"a homography needs at least {MIN_POINTS} point pairs, got {n}"]
    problems = []
    for what, xy in (("pixels", pixels), ("ground positions", ground)):
        seen: dict[tuple, int] = {}
        for i, p in enumerate(map(tuple, np.round(xy, 6))):
            if p in seen:
                problems.append(f"points[{i}] has the same {what[:-1]} as points[{seen[p]}]")
            seen.setdefault(p, i)
        if problems:
            continue
        if _spread_ratio(xy) < COLLINEAR_RATIO:
            problems.append(f"the points' {what} are collinear (on one line): survey points spread over the ground")
        elif n == MIN_POINTS:
            # With exactly 4 pairs the homography is determined only when no 3 are on one line.
            for skip in range(4):
                tri = np.delete(xy, skip, axis=0)
                if _spread_ratio(tri) < COLLINEAR_RATIO:
                    a, b, c = (f"points[{i}]" for i in range(4) if i != skip)
                    problems.append(f"{a}, {b} and {c} have collinear {what}: with 4 pairs no 3 may be on one line")
                    break
    return problems


def solve_ground_homography(pixels, ground, ransac_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The homography pixels -> ground (east, north) from >= 4 pairs, and which pairs it kept.

    Fitted ground -> pixels and inverted, so that least squares (and RANSAC's threshold) are in
    pixels, where the measurement noise is similar for near and far points; fitting in metres
    would let the far points, whose metres are cheap in pixels, dominate.
    """
    px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    gr = np.asarray(ground, dtype=np.float64).reshape(-1, 2)
    inliers = np.ones(len(px), dtype=bool)
    if ransac_px is not None and len(px) > MIN_POINTS:
        _, mask = cv2.findHomography(gr, px, cv2.RANSAC, ransac_px)
        if mask is not None and mask.sum() >= MIN_POINTS:
            inliers = mask.ravel().astype(bool)
    g2p, _ = cv2.findHomography(gr[inliers], px[inliers], 0)
    if g2p is None or abs(np.linalg.det(g2p)) < 1e-300:
        raise ValueError("no homography fits these points (degenerate survey)")
    return _ground_side_positive(np.linalg.inv(g2p), px[inliers]), inliers


def _ground_side_positive(h: np.ndarray, pixels_on_ground: np.ndarray) -> np.ndarray:
    """Scale H to unit norm with the sign that gives pixels on the ground w > 0 (the sign is
    what tells a ground pixel from one above the horizon)."""
    h = h / np.linalg.norm(h)
    w = np.c_[pixels_on_ground, np.ones(len(pixels_on_ground))] @ h[2]
    return -h if np.median(w) < 0 else h


# -- rotations -------------------------------------------------------------------------------

# Camera axes (OpenCV: x right, y down, z forward) in a body frame whose axes are right, forward, up.
_CAMERA_IN_BODY = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])


def rotation_from_pose(heading_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """World (east, north, up) -> camera (x right, y down, z forward) rotation.

    Heading turns clockwise about up from north, pitch raises the optical axis, roll turns about
    it (positive lowers the picture's right side): yaw-pitch-roll, each about the moved axes.
    """
    ps, th, ph = np.radians([heading_deg, pitch_deg, roll_deg])
    yaw = np.array([[math.cos(ps), math.sin(ps), 0], [-math.sin(ps), math.cos(ps), 0], [0, 0, 1]])
    pitch = np.array([[1, 0, 0], [0, math.cos(th), -math.sin(th)], [0, math.sin(th), math.cos(th)]])
    roll = np.array([[math.cos(ph), 0, math.sin(ph)], [0, 1, 0], [-math.sin(ph), 0, math.cos(ph)]])
    return (yaw @ pitch @ roll @ _CAMERA_IN_BODY).T


def pose_from_rotation(r_world_to_camera: np.ndarray) -> tuple[float, float, float]:
    """(heading, pitch, roll) in degrees of a world -> camera rotation; inverse of rotation_from_pose."""
    body = np.asarray(r_world_to_camera).T @ _CAMERA_IN_BODY.T  # body axes as columns, in world
    fwd = body[:, 1]
    pitch = math.degrees(math.asin(float(np.clip(fwd[2], -1, 1))))
    heading = math.degrees(math.atan2(fwd[0], fwd[1])) % 360.0
    roll = math.degrees(math.atan2(-body[2, 0], body[2, 2]))
    return heading, pitch, roll


# -- models ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroundFix:
    """Where box anchors stand on the ground: east/north metres in the post's frame, a 2x2
    covariance (m^2) from the anchor's pixel uncertainty, and lat/lon when the frame is known.
    Anchors that do not meet the ground (above the horizon) are NaN."""

    pixels: np.ndarray  # (N, 2)
    east_north: np.ndarray  # (N, 2)
    covariance: np.ndarray  # (N, 2, 2)
    lat: np.ndarray | None
    lon: np.ndarray | None

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.east_north).all(axis=1)


@njit(cache=True, nogil=True)
def _projective_fix(px: np.ndarray, h: np.ndarray, sigma: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Ground positions and covariances of pixels under a projective map h (pixel -> ground),
    compiled: a fusion places every camera track on the ground every frame, and in numpy this
    is twenty calls on arrays of a few dozen points. J in closed form, (H[:2, :2] W - (X, Y)
    H[2, :2]) / W^2; NaN off the ground; inf where a step of `step` pixels reaches the horizon
    (as probing the map would find)."""
    n = len(px)
    en = np.empty((n, 2))
    cov = np.empty((n, 2, 2))
    edge = step * max(abs(h[2, 0]), abs(h[2, 1]))
    s2 = sigma * sigma
    for i in range(n):
        u, v = px[i, 0], px[i, 1]
        x = h[0, 0] * u + h[0, 1] * v + h[0, 2]
        y = h[1, 0] * u + h[1, 1] * v + h[1, 2]
        w = h[2, 0] * u + h[2, 1] * v + h[2, 2]
        if not w > 0:
            en[i, 0] = en[i, 1] = np.nan
            cov[i, :, :] = np.nan
            continue
        en[i, 0], en[i, 1] = x / w, y / w
        if w - edge <= 0:
            cov[i, :, :] = np.inf
            continue
        w2 = w * w
        j00, j01 = (h[0, 0] * w - x * h[2, 0]) / w2, (h[0, 1] * w - x * h[2, 1]) / w2
        j10, j11 = (h[1, 0] * w - y * h[2, 0]) / w2, (h[1, 1] * w - y * h[2, 1]) / w2
        cov[i, 0, 0] = s2 * (j00 * j00 + j01 * j01)
        cov[i, 0, 1] = cov[i, 1, 0] = s2 * (j00 * j10 + j01 * j11)
        cov[i, 1, 1] = s2 * (j10 * j10 + j11 * j11)
    return en, cov


def _as_points(a, dims: int) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1, dims)


class CameraModel(ABC):
    """Pixels <-> the post's ground plane. Build one with `CameraModel.from_config(geometry, frame)`.

    frame: the post's LocalFrame (lat/lon in and out); None when nothing is geo-referenced.
    camera_en: the camera's (east, north) in that frame, when known.
    """

    frame: LocalFrame | None
    camera_en: np.ndarray | None
    image_size: tuple[int, int] | None
    pixel_sigma: float

    @staticmethod
    def from_config(geometry: CameraGeometry, frame: LocalFrame | None = None) -> CameraModel:
        """The model a config describes. `frame` is the post's LocalFrame (node lat/lon); without
        one, a camera `position` becomes the origin, and lat/lon survey points are refused."""
        if frame is None and geometry.position is not None:
            frame = LocalFrame(*geometry.position)
        camera_en = None
        if geometry.position is not None:
            camera_en = np.array(frame.to_local(*geometry.position), dtype=np.float64)
        if geometry.is_pose:
            return PinholeCamera.from_geometry(geometry, frame, camera_en)
        return GroundHomography.from_geometry(geometry, frame, camera_en)

    # The two primitives each model provides.
    @abstractmethod
    def world_to_pixel(self, points_enu) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) east/north/up metres (or (N, 2) on the ground) -> ((N, 2) pixels, (N,) visible):
        visible = in front of the camera and inside the image."""

    @abstractmethod
    def pixel_to_ground(self, pixels, ground_height: float = 0.0) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) east/north metres where their rays meet the plane
        up = ground_height; NaN for rays that do not (at or above the horizon)."""

    @abstractmethod
    def _ray_azimuth(self, pixels: np.ndarray) -> np.ndarray | None: ...

    @abstractmethod
    def _default_row(self) -> float: ...

    def _plane_homography(self, ground_height: float) -> np.ndarray | None:
        """The 3x3 map of pixels (u, v, 1) to (X, Y, W) with the ground point (X/W, Y/W) and
        W > 0 exactly where the pixel's ray meets the plane up = ground_height; None for a model
        whose map is not projective (lens distortion)."""
        return None

    def projective_ground(self) -> tuple[np.ndarray, float, float] | None:
        """For compiled callers (edge.fusion): the ground's pixel map (_plane_homography), the
        pixel sigma and the probe step that anchor_to_ground uses with it; None when the map is
        not projective."""
        h = self._plane_homography(0.0)
        return None if h is None else (h, float(self.pixel_sigma), self._STEP)

    # Built on the primitives.
    def ground_uncertainty(self, pixels, ground_height: float = 0.0, pixel_sigma: float | None = None) -> np.ndarray:
        """(N, 2, 2) covariance (m^2) of the ground positions of `pixels`, each pixel uncertain by
        `pixel_sigma` (default: the geometry's) in u and v: sigma^2 J J^T with J the Jacobian of
        pixel -> ground. Far anchors get long ellipses along the line of sight. NaN where the
        pixel is off the ground; inf where a step of a fraction of a pixel reaches the horizon."""
        return self._ground_fix(_as_points(pixels, 2), ground_height, pixel_sigma)[1]

    _STEP = 0.25  # pixels; small against how fast the map bends, large against float noise

    def _ground_fix(self, px: np.ndarray, ground_height: float, pixel_sigma: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(ground positions, their covariances; see ground_uncertainty) of pixels (N, 2)."""
        sigma = self.pixel_sigma if pixel_sigma is None else pixel_sigma
        step = self._STEP
        h = self._plane_homography(ground_height)
        if h is not None:
            return _projective_fix(np.ascontiguousarray(px), h, float(sigma), step)
        offsets = np.array([[step, 0], [-step, 0], [0, step], [0, -step]])
        # The centre and its four probes in one call: each call has a fixed cost (undistortion).
        pts = np.concatenate([px, (px[:, None, :] + offsets[None]).reshape(-1, 2)])
        ground = self.pixel_to_ground(pts, ground_height)
        probes = ground[len(px):].reshape(-1, 4, 2)
        jac = np.stack([(probes[:, 0] - probes[:, 1]), (probes[:, 2] - probes[:, 3])], axis=2) / (2 * step)
        cov = sigma**2 * jac @ jac.transpose(0, 2, 1)
        en = ground[:len(px)]
        centre_ok = np.isfinite(en).all(axis=1)
        cov[~np.isfinite(cov).all(axis=(1, 2))] = np.inf
        cov[~centre_ok] = np.nan
        return en, cov

    def anchor_to_ground(self, xyxy, anchor: str = "bottom_center", ground_height: float = 0.0,
                         geo: bool = True) -> GroundFix:
        """Where boxes (N, 4: x1, y1, x2, y2) stand: their anchor's ground position, covariance,
        and (with `geo`) lat/lon."""
        px = anchor_points(xyxy, anchor)
        en, cov = self._ground_fix(px, ground_height, None)
        lat = lon = None
        if geo and self.frame is not None:
            lat, lon = (np.asarray(a, dtype=np.float64) for a in self.frame.to_geo(en[:, 0], en[:, 1]))
            lat[~np.isfinite(en).all(axis=1)] = np.nan
            lon[~np.isfinite(en).all(axis=1)] = np.nan
        return GroundFix(px, en, cov, lat, lon)

    def bearing_of_pixel(self, u, v=None) -> np.ndarray | None:
        """True bearing (degrees, 0..360) from the camera of the ray through image column u at
        row v (default: the principal point's row; a homography's bottom row). A column is not
        one bearing when the camera is tilted and rolled, hence v. None when the camera's
        position is unknown (a homography without `position`)."""
        u = np.atleast_1d(np.asarray(u, dtype=np.float64))
        v = np.full_like(u, self._default_row()) if v is None else np.broadcast_to(np.asarray(v, dtype=np.float64), u.shape)
        az = self._ray_azimuth(np.stack([u, v], axis=-1).reshape(-1, 2))
        return None if az is None else az.reshape(u.shape)

    def footprint(self, max_range_m: float, samples: int = 32) -> np.ndarray:
        """The ground the camera sees out to `max_range_m` from the camera (the post when the
        camera's position is unknown), as a polygon of (K, 2) east/north vertices for a plan
        view: the image border's ground trace, closed by the range arc where the border runs
        past max_range or above the horizon. Empty (0, 2) when even the bottom row is farther.

        Assumes what holds for a camera looking down at the ground: along an image column the
        ground gets farther going up."""
        if self.image_size is None:
            raise ValueError("a footprint needs the geometry's image_size")
        w, h = self.image_size
        t = np.linspace(0.0, 1.0, samples, endpoint=False)
        u0, u1, v0, v1 = -0.5, w - 0.5, -0.5, h - 0.5
        border = np.concatenate([
            np.c_[u0 + t * (u1 - u0), np.full_like(t, v0)],   # top, left to right
            np.c_[np.full_like(t, u1), v0 + t * (v1 - v0)],   # right, downwards
            np.c_[u1 - t * (u1 - u0), np.full_like(t, v1)],   # bottom, right to left
            np.c_[np.full_like(t, u0), v1 - t * (v1 - v0)],   # left, upwards
        ])
        far = self._range(border) > max_range_m
        bottom = np.c_[border[:, 0], np.full(len(border), v1)]
        reachable = self._range(bottom) <= max_range_m
        # Slide each too-far border pixel down its column to where the ground is max_range away.
        lo, hi = border[far, 1].copy(), np.full(far.sum(), v1)
        cols = border[far, 0]
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            beyond = self._range(np.c_[cols, mid]) > max_range_m
            lo, hi = np.where(beyond, mid, lo), np.where(beyond, hi, mid)
        px = border.copy()
        px[far, 1] = hi
        keep = ~far | reachable
        ground = self.pixel_to_ground(px[keep])
        if len(ground) < 3:
            return np.zeros((0, 2))
        step = np.r_[True, np.linalg.norm(np.diff(ground, axis=0), axis=1) > 1e-6]
        return ground[step]

    def _range(self, pixels: np.ndarray) -> np.ndarray:
        """Horizontal distance from the camera (else the post) of each pixel's ground point; inf off the ground."""
        ref = self.camera_en if self.camera_en is not None else np.zeros(2)
        d = np.linalg.norm(self.pixel_to_ground(pixels) - ref, axis=1)
        return np.where(np.isfinite(d), d, np.inf)

    def ground_to_geo(self, east_north) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) of east/north metres in the post's frame."""
        if self.frame is None:
            raise ValueError("this camera model has no geographic frame (the node has no lat/lon)")
        en = _as_points(east_north, 2)
        lat, lon = self.frame.to_geo(en[:, 0], en[:, 1])
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


class PinholeCamera(CameraModel):
    """A posed pinhole camera with OpenCV's distortion (k1, k2, p1, p2, k3)."""

    def __init__(self, k: np.ndarray, dist: np.ndarray, r_world_to_camera: np.ndarray, centre_enu: np.ndarray,
                 image_size: tuple[int, int], *, frame: LocalFrame | None = None, pixel_sigma: float = 2.0):
        self.k = np.asarray(k, dtype=np.float64)
        self.dist = np.asarray(dist, dtype=np.float64).reshape(5)
        self.r = np.asarray(r_world_to_camera, dtype=np.float64)
        self.centre = np.asarray(centre_enu, dtype=np.float64).reshape(3)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.frame, self.pixel_sigma = frame, float(pixel_sigma)
        self.camera_en = self.centre[:2]
        self._distorted = bool(np.any(self.dist != 0))
        self._max_r2 = _monotonic_radius2(self.dist)
        self._planes: dict[float, np.ndarray] = {}  # ground height -> _plane_homography

    @classmethod
    def from_geometry(cls, g: CameraGeometry, frame: LocalFrame | None, camera_en: np.ndarray | None) -> PinholeCamera:
        w, h = g.image_size
        if g.hfov_deg is not None:
            f = (w / 2) / math.tan(math.radians(g.hfov_deg) / 2)
            k = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
        else:
            k = np.array([[g.fx, 0, g.cx], [0, g.fy, g.cy], [0, 0, 1]])
        en = camera_en if camera_en is not None else np.zeros(2)
        return cls(k, [g.k1, g.k2, g.p1, g.p2, g.k3], rotation_from_pose(g.heading_deg, g.pitch_deg, g.roll_deg),
                   np.r_[en, g.height_m], (w, h), frame=frame, pixel_sigma=g.pixel_sigma)

    @property
    def pose(self) -> tuple[float, float, float]:
        """(heading, pitch, roll) in degrees."""
        return pose_from_rotation(self.r)

    def world_to_pixel(self, points_enu) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points_enu, dtype=np.float64)
        pts = np.c_[pts.reshape(-1, 2), np.zeros(len(pts.reshape(-1, 2)))] if pts.shape[-1] == 2 else pts.reshape(-1, 3)
        cam = (pts - self.centre) @ self.r.T
        front = cam[:, 2] > 1e-9
        pixels = np.full((len(pts), 2), np.nan)
        if front.any():
            xy = cam[front, :2] / cam[front, 2:]
            pixels[front] = self._distort(xy)
            # Past the radius where the distortion polynomial folds back, a far-off-axis point
            # would land inside the picture: it is not seen.
            front[front] = (xy**2).sum(axis=1) <= self._max_r2
        w, h = self.image_size
        with np.errstate(invalid="ignore"):
            inside = (pixels[:, 0] >= -0.5) & (pixels[:, 0] < w - 0.5) & (pixels[:, 1] >= -0.5) & (pixels[:, 1] < h - 0.5)
        return pixels, front & inside

    def _distort(self, xy: np.ndarray) -> np.ndarray:
        if not self._distorted:
            return xy * [self.k[0, 0], self.k[1, 1]] + [self.k[0, 2], self.k[1, 2]]
        obj = np.c_[xy, np.ones(len(xy))].reshape(-1, 1, 3)
        out, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), self.k, self.dist)
        return out.reshape(-1, 2)

    def rays(self, pixels) -> np.ndarray:
        """(N, 3) world directions (east, north, up) of the rays through `pixels`."""
        px = _as_points(pixels, 2)
        if len(px) == 0:  # OpenCV answers None, not an empty array, for no points
            return np.zeros((0, 3))
        if self._distorted:
            crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
            xy = cv2.undistortPoints(px.reshape(-1, 1, 2), self.k, self.dist, criteria=crit).reshape(-1, 2)
        else:
            xy = (px - [self.k[0, 2], self.k[1, 2]]) / [self.k[0, 0], self.k[1, 1]]
        return np.c_[xy, np.ones(len(xy))] @ self.r  # R^T d, row-wise

    def pixel_to_ground(self, pixels, ground_height: float = 0.0) -> np.ndarray:
        d = self.rays(pixels)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (ground_height - self.centre[2]) / d[:, 2]
        t = np.where(np.isfinite(t) & (t > 0), t, np.nan)
        return self.centre[:2] + t[:, None] * d[:, :2]

    def _ray_azimuth(self, pixels: np.ndarray) -> np.ndarray:
        d = self.rays(pixels)
        return bearing_of(d[:, 0], d[:, 1])

    def _default_row(self) -> float:
        return float(self.k[1, 2])

    def _plane_homography(self, ground_height: float) -> np.ndarray | None:
        if self._distorted:
            return None
        cached = self._planes.get(ground_height)
        if cached is not None:
            return cached
        # The ray of (u, v) is d = M (u, v, 1) (M = R^T K^-1); it meets up = h at centre + t d with
        # t = (h - z) / d_z, so the point is ((h - z) d_xy + centre_xy d_z) / d_z, valid for t > 0.
        m = self.r.T @ np.linalg.inv(self.k)
        lift = ground_height - self.centre[2]
        h = np.vstack([lift * m[:2] + self.centre[:2, None] * m[2], m[2]])
        h = self._planes[ground_height] = h * np.sign(lift)  # W = sign(h - z) d_z > 0 exactly where t > 0
        return h


def _monotonic_radius2(dist: np.ndarray) -> float:
    """Largest r^2 (normalised, undistorted) up to which r * (1 + k1 r^2 + k2 r^4 + k3 r^6) still grows."""
    k1, k2, _, _, k3 = dist
    if k1 == k2 == k3 == 0:
        return np.inf
    r = np.linspace(0, 20, 200_001)[1:]
    s = r * r
    growth = 1 + 3 * k1 * s + 5 * k2 * s**2 + 7 * k3 * s**3  # d/dr of the distorted radius
    bad = np.flatnonzero(growth <= 0)
    return float(s[bad[0] - 1]) if len(bad) else np.inf


class GroundHomography(CameraModel):
    """A ground-plane homography: pixels <-> east/north metres on the ground (up = 0) only.

    H's sign matters: pixels on the ground must map to w > 0 (from_config sees to it)."""

    def __init__(self, h_pixel_to_ground: np.ndarray, *, image_size: tuple[int, int] | None = None,
                 frame: LocalFrame | None = None, camera_en: np.ndarray | None = None, pixel_sigma: float = 2.0):
        self.h = np.asarray(h_pixel_to_ground, dtype=np.float64)
        self.h_inv = np.linalg.inv(self.h)
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.frame, self.camera_en, self.pixel_sigma = frame, camera_en, float(pixel_sigma)

    @classmethod
    def from_geometry(cls, g: CameraGeometry, frame: LocalFrame | None, camera_en: np.ndarray | None) -> GroundHomography:
        if g.points is None:
            h = np.asarray(g.homography, dtype=np.float64)
            if g.image_size is not None:  # the bottom of the picture is on the ground
                h = _ground_side_positive(h, np.array([[(g.image_size[0] - 1) / 2, g.image_size[1] - 1]]))
            else:  # w grows downwards (with v) for a camera that is not upside down
                h = h / np.linalg.norm(h) * (1 if h[2, 1] >= 0 else -1)
            return cls(h, image_size=g.image_size, frame=frame, camera_en=camera_en, pixel_sigma=g.pixel_sigma)
        if g.needs_post_position and frame is None:
            raise ValueError("survey points in lat/lon need the post's position (node lat/lon)")
        pixels = np.array([p.pixel for p in g.points], dtype=np.float64)
        ground = np.array([frame.to_local(p.lat, p.lon) if p.is_geo else (p.east, p.north) for p in g.points],
                          dtype=np.float64)
        h, _ = solve_ground_homography(pixels, ground)  # its sign comes from the surveyed pixels
        return cls(h, image_size=g.image_size, frame=frame, camera_en=camera_en, pixel_sigma=g.pixel_sigma)

    def world_to_pixel(self, points_enu) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points_enu, dtype=np.float64)
        pts = pts.reshape(-1, pts.shape[-1])
        if pts.shape[1] == 3:
            if np.any(np.abs(pts[:, 2]) > 1e-9):
                raise ValueError("a ground homography knows only the ground: points need up = 0")
            pts = pts[:, :2]
        p = np.c_[pts, np.ones(len(pts))] @ self.h_inv.T
        front = p[:, 2] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = np.where(front[:, None], p[:, :2] / p[:, 2:], np.nan)
        if self.image_size is None:
            return pixels, front
        w, h = self.image_size
        with np.errstate(invalid="ignore"):
            inside = (pixels[:, 0] >= -0.5) & (pixels[:, 0] < w - 0.5) & (pixels[:, 1] >= -0.5) & (pixels[:, 1] < h - 0.5)
        return pixels, front & inside

    def _homogeneous(self, pixels) -> np.ndarray:
        px = _as_points(pixels, 2)
        return np.c_[px, np.ones(len(px))] @ self.h.T

    def _plane_homography(self, ground_height: float) -> np.ndarray | None:
        if ground_height != 0.0:
            raise ValueError("a ground homography knows only the ground plane (ground_height=0)")
        return self.h

    def pixel_to_ground(self, pixels, ground_height: float = 0.0) -> np.ndarray:
        if ground_height != 0.0:
            raise ValueError("a ground homography knows only the ground plane (ground_height=0)")
        g = self._homogeneous(pixels)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(g[:, 2:] > 0, g[:, :2] / g[:, 2:], np.nan)

    def _ray_azimuth(self, pixels: np.ndarray) -> np.ndarray | None:
        if self.camera_en is None:
            return None
        # (X - W*camera) points from the camera towards the pixel's ground point when W > 0, and
        # flips with W above the horizon (where the ray's backward extension meets the ground):
        # its direction is the ray's azimuth everywhere, horizon included.
        g = self._homogeneous(pixels)
        d = g[:, :2] - g[:, 2:] * self.camera_en
        return bearing_of(d[:, 0], d[:, 1])

    def _default_row(self) -> float:
        if self.image_size is None:
            raise ValueError("give the row v: this homography has no image_size")
        return float(self.image_size[1] - 1)
