"""Tsai camera calibrations (Tsai 1987; Reg Willson's C implementation) and their conversion to
the `CameraGeometry` the rest of Zastava uses.

Tsai's model, in Willson's conventions (cal_tran.c), world units as calibrated (PETS: mm):
    camera = R(rx, ry, rz) @ world + T                  R = Rz(rz) Ry(ry) Rx(rx), world -> camera
    Xu, Yu = f * x / z, f * y / z                        undistorted sensor coordinates (mm)
    Xu = Xd * (1 + kappa1 * (Xd^2 + Yd^2))               radial distortion, distorted -> undistorted
    u = sx * Xd / dpx + Cx,  v = Yd / dpy + Cy           image pixels

Tsai's distortion runs from distorted to undistorted; OpenCV's runs the other way, so the
conversion fits OpenCV's k1, k2, k3 to the exact inverse over the picture (0.0013 px at worst
for PETS09; `opencv_distortion()` reports it, and strong distortion fits worse) rather than
pretending the two polynomials are the same.

    tsai = TsaiCamera.from_xml("View_001.xml")
    camera = CameraModel.from_config(tsai.to_geometry(frame), frame)   # world x east, y north, mm -> m
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.camera_model import CameraGeometry, pose_from_rotation
from edge.errors import ZastavaError
from edge.geo import LocalFrame


class CalibrationError(ZastavaError):
    """A calibration file that cannot be read as a Tsai camera."""


_XML = {
    "Geometry": ("width", "height", "ncx", "nfx", "dx", "dy", "dpx", "dpy"),
    "Intrinsic": ("focal", "kappa1", "cx", "cy", "sx"),
    "Extrinsic": ("tx", "ty", "tz", "rx", "ry", "rz"),
}


@dataclass(frozen=True)
class TsaiCamera:
    """One Tsai calibration: sensor geometry, intrinsics (f in mm, kappa1 in 1/mm^2) and pose."""

    width: int
    height: int
    ncx: float  # sensor elements along x
    nfx: float  # pixels along x in a frame grabbed from it
    dx: float  # sensor element pitch, mm
    dy: float
    dpx: float  # effective pixel pitch, mm (dx * ncx / nfx)
    dpy: float
    focal: float  # mm
    kappa1: float  # 1/mm^2
    cx: float  # pixels
    cy: float
    sx: float  # horizontal scale uncertainty
    tx: float  # world units
    ty: float
    tz: float
    rx: float  # radians
    ry: float
    rz: float

    @classmethod
    def from_xml(cls, path: str | Path) -> TsaiCamera:
        """Read the XML of the PETS / ETISEO calibrations (<Geometry>, <Intrinsic>, <Extrinsic>)."""
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            raise CalibrationError(f"{path}: cannot read a Tsai calibration: {e}") from None
        values: dict[str, float] = {}
        for tag, names in _XML.items():
            node = root.find(tag)
            if node is None:
                raise CalibrationError(f"{path}: no <{tag}> element")
            for name in names:
                try:
                    values[name] = float(node.attrib[name])
                except (KeyError, ValueError):
                    raise CalibrationError(f"{path}: <{tag}> needs a number {name}=...") from None
        values["width"], values["height"] = int(values["width"]), int(values["height"])
        return cls(**values)

    @property
    def rotation(self) -> np.ndarray:
        """World -> camera rotation, Willson's calc_rr(): Rz(rz) @ Ry(ry) @ Rx(rx)."""
        sa, ca = math.sin(self.rx), math.cos(self.rx)
        sb, cb = math.sin(self.ry), math.cos(self.ry)
        sg, cg = math.sin(self.rz), math.cos(self.rz)
        return np.array([
            [cb * cg, cg * sa * sb - ca * sg, sa * sg + ca * cg * sb],
            [cb * sg, sa * sb * sg + ca * cg, ca * sb * sg - cg * sa],
            [-sb, cb * sa, ca * cb],
        ])

    @property
    def translation(self) -> np.ndarray:
        return np.array([self.tx, self.ty, self.tz])

    @property
    def centre(self) -> np.ndarray:
        """The camera's optical centre in world units."""
        return -self.rotation.T @ self.translation

    def world_to_image(self, xyz) -> np.ndarray:
        """(N, 3) world points -> (N, 2) image pixels: Willson's world_coord_to_image_coord."""
        pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        cam = pts @ self.rotation.T + self.translation
        xu, yu = self.focal * cam[:, 0] / cam[:, 2], self.focal * cam[:, 1] / cam[:, 2]
        xd, yd = self._undistorted_to_distorted(xu, yu)
        return np.c_[xd * self.sx / self.dpx + self.cx, yd / self.dpy + self.cy]

    def image_to_world(self, pixels, z: float = 0.0) -> np.ndarray:
        """(N, 2) image pixels -> (N, 2) world x, y where their rays meet the plane at height z
        (Willson's image_coord_to_world_coord, written as a ray-plane intersection)."""
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        xd = self.dpx * (px[:, 0] - self.cx) / self.sx
        yd = self.dpy * (px[:, 1] - self.cy)
        factor = 1 + self.kappa1 * (xd**2 + yd**2)
        ray_cam = np.c_[xd * factor, yd * factor, np.full(len(px), self.focal)]
        ray = ray_cam @ self.rotation  # R^T d, row-wise
        c = self.centre
        with np.errstate(divide="ignore"):
            t = (z - c[2]) / ray[:, 2]
        t = np.where(np.isfinite(t) & (t > 0), t, np.nan)  # at or above the horizon: no ground
        return c[:2] + t[:, None] * ray[:, :2]

    def _undistorted_to_distorted(self, xu: np.ndarray, yu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Invert Xu = Xd (1 + kappa1 Rd^2) along the radius: Willson's closed-form cubic
        (Rd^3 + Rd / kappa1 - Ru / kappa1 = 0), the smaller positive root when there are three."""
        ru = np.hypot(xu, yu)
        if self.kappa1 == 0:
            return xu, yu
        c = 1 / self.kappa1
        q, r = c / 3, c * ru / 2
        disc = q**3 + r**2
        with np.errstate(invalid="ignore"):
            root = np.sqrt(np.abs(disc))
            one = np.cbrt(r + root) + np.cbrt(r - root)
            s = np.cbrt(np.hypot(r, root))
            ang = np.arctan2(root, r) / 3
            three = -s * np.cos(ang) + math.sqrt(3) * s * np.sin(ang)
        rd = np.where(disc >= 0, one, three)
        if np.any((disc >= 0) & (rd < 0)):  # beyond the maximum barrel radius: Willson clamps
            rd = np.where((disc >= 0) & (rd < 0), math.sqrt(-1 / (3 * self.kappa1)), rd)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(ru > 0, rd / ru, 1.0)
        return xu * scale, yu * scale

    def opencv_intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels: u = fx * Xd / f + Cx with fx = f * sx / dpx, v likewise."""
        return self.focal * self.sx / self.dpx, self.focal / self.dpy, self.cx, self.cy

    def opencv_distortion(self) -> tuple[tuple[float, float, float], float]:
        """OpenCV (k1, k2, k3) fitted to the exact inverse of Tsai's distortion over the picture
        (its corners plus 10%), and the fit's worst error in pixels."""
        f = self.focal
        corners = np.array([[0, 0], [self.width, 0], [0, self.height], [self.width, self.height]], dtype=np.float64)
        xd = self.dpx * (corners[:, 0] - self.cx) / self.sx
        yd = self.dpy * (corners[:, 1] - self.cy)
        rd = np.linspace(0, 1.1 * np.hypot(xd, yd).max() / f, 400)  # normalised (divided by f)
        ru = rd * (1 + self.kappa1 * f * f * rd**2)
        s = ru**2
        a = np.c_[s, s**2, s**3]
        coef, *_ = np.linalg.lstsq(a[1:], rd[1:] / ru[1:] - 1, rcond=None)
        fit = ru * (1 + a @ coef)
        worst_px = float(np.abs(fit - rd).max() * max(self.opencv_intrinsics()[:2]))
        return (float(coef[0]), float(coef[1]), float(coef[2])), worst_px

    def to_geometry(self, frame: LocalFrame, *, units_m: float = 0.001, origin_en: tuple[float, float] = (0.0, 0.0),
                    x_bearing_deg: float = 90.0, pixel_sigma: float = 2.0) -> CameraGeometry:
        """The same camera as a CameraGeometry in the post's `frame`.

        The calibration's world (z up, ground at z = 0) is placed with its origin at `origin_en`
        (east, north metres in the frame) and its x axis along the true bearing `x_bearing_deg`
        (default 90: x east, y north); `units_m` is metres per world unit (PETS: mm)."""
        b = math.radians(x_bearing_deg)
        world_to_enu = np.array([[math.sin(b), -math.cos(b), 0], [math.cos(b), math.sin(b), 0], [0, 0, 1]])
        centre = np.r_[origin_en, 0.0] + world_to_enu @ (self.centre * units_m)
        if centre[2] <= 0:
            raise CalibrationError(f"the camera is {centre[2]:.2f} m above the ground plane: is the world's z up?")
        heading, pitch, roll = pose_from_rotation(self.rotation @ world_to_enu.T)
        lat, lon = frame.to_geo(centre[0], centre[1])
        fx, fy, cx, cy = self.opencv_intrinsics()
        (k1, k2, k3), _ = self.opencv_distortion()
        return CameraGeometry(
            position=(float(lat), float(lon)), height_m=float(centre[2]),
            heading_deg=heading, pitch_deg=pitch, roll_deg=roll,
            fx=fx, fy=fy, cx=cx, cy=cy, k1=k1, k2=k2, k3=k3,
            image_size=(self.width, self.height), pixel_sigma=pixel_sigma,
        )
