"""Camera geometry: pose and homography models, their inverses and uncertainties, and the proof
on real data: PETS09-S3-MF1's Tsai calibration, converted to our model, puts the sequence's
ground-truth ground positions on its ground-truth boxes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from edge.camera_model import (
    CameraGeometry,
    CameraModel,
    GroundHomography,
    PinholeCamera,
    pose_from_rotation,
    rotation_from_pose,
)
from edge.config import format_errors
from edge.geometry import inside_polygon
from edge.geo import LocalFrame
from edge.tsai import CalibrationError, TsaiCamera

FRAME = LocalFrame(43.5081, 16.4402)  # any post: the PETS world is placed at its origin, x east


def pose(**kw) -> CameraGeometry:
    base = dict(height_m=12.0, heading_deg=30.0, pitch_deg=-20.0, roll_deg=0.0, hfov_deg=60.0, image_size=(1280, 720))
    return CameraGeometry(**{**base, **kw})


# -- PETS09 ground truth ---------------------------------------------------------------------


def pets09(data_dir: Path) -> dict:
    """PETS09-S3-MF1: boxes' bottom-centres (pixels) and their ground positions (metres, world x/y).

    The published gt.txt (byte for byte as in antonmil/dctracking) puts the world columns of
    a frames x ids matrix in column-major order beside boxes listed frame by frame: the row of
    (frame f, id i) holds the world position of the cell at column-major index (f-1)*7 + (i-1).
    Undone here, 497 of the 620 rows get their own position back, and each lands on its box
    within a twentieth of a pixel; the other 123 positions were written into cells that have no
    box and are lost (the file's 123 rows of 0, 0). A file with the columns in place is used
    as it is."""
    seq = data_dir / "mot" / "PETS09-S3-MF1"
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    tsai = TsaiCamera.from_xml(seq / "View_001.xml")
    bottom = np.c_[gt[:, 2] + gt[:, 4] / 2, gt[:, 3] + gt[:, 5]]
    world = gt[:, 7:9].copy()
    as_read = np.linalg.norm(tsai.world_to_image(np.c_[world, np.zeros(len(gt))]) - bottom, axis=1)
    if np.median(as_read) > 1.0:
        frames, ids = int(gt[:, 0].max()), int(gt[:, 1].max())
        f, i = gt[:, 0].astype(int) - 1, gt[:, 1].astype(int) - 1
        cells = np.full((frames, ids, 2), np.nan)
        cells[f, i] = world
        world = cells.reshape(-1, 2).reshape((frames, ids, 2), order="F")[f, i]
    known = np.isfinite(world).all(axis=1) & (np.abs(world).sum(axis=1) > 0)
    return {"gt": gt, "tsai": tsai, "bottom": bottom, "world_m": world / 1000.0, "known": known,
            "as_read_px": as_read, "image": seq / "img1" / "000001.jpg"}


@pytest.fixture(scope="module")
def pets(data_dir: Path) -> dict:
    return pets09(data_dir)


@pytest.fixture(scope="module")
def pets_camera(pets) -> PinholeCamera:
    geometry = pets["tsai"].to_geometry(FRAME)
    return CameraModel.from_config(geometry, FRAME)


# -- the pose model --------------------------------------------------------------------------


def test_pose_angles_round_trip():
    rng = np.random.default_rng(1)
    for heading, pitch, roll in np.c_[rng.uniform(0, 360, 50), rng.uniform(-85, 85, 50), rng.uniform(-60, 60, 50)]:
        r = rotation_from_pose(heading, pitch, roll)
        assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1)
        assert np.allclose(pose_from_rotation(r), (heading, pitch, roll))


def test_a_posed_camera_sees_the_ground_where_it_should():
    # 10 m up, looking 45 degrees down towards the east: the image centre is 10 m east.
    cam = CameraModel.from_config(pose(height_m=10, heading_deg=90, pitch_deg=-45, hfov_deg=90, image_size=(1001, 801)))
    centre = [[500, 400]]
    assert np.allclose(cam.pixel_to_ground(centre), [[10, 0]], atol=1e-9)
    assert np.isclose(cam.bearing_of_pixel(500)[0], 90)
    # The right edge of the picture at the principal row: 45 degrees right of the axis, seen
    # on the ground plane from above it is atan(tan 45 / cos 45) = 54.7 degrees right of east.
    assert np.isclose(cam.bearing_of_pixel(1000.5)[0], 90 + np.degrees(np.arctan(1 / np.cos(np.radians(45)))), atol=1e-6)
    # The top row looks 45 - atan(400 / 500.5) degrees down; 600 px above the centre is above the horizon.
    top = 10 / np.tan(np.radians(45) - np.arctan(400 / 500.5))
    assert np.allclose(cam.pixel_to_ground([[500, 0]]), [[top, 0]], atol=1e-9)
    assert np.isnan(cam.pixel_to_ground([[500, -200]])).all()
    px, seen = cam.world_to_pixel([[10, 0, 0], [-10, 0, 0], [10, 50, 0], [10, 0, 3]])
    assert np.allclose(px[0], [500, 400]) and seen.tolist() == [True, False, False, True]
    assert px[3, 1] < 400  # 3 m above the ground point appears higher in the picture


def test_pixels_and_ground_invert_each_other_with_distortion():
    cam = CameraModel.from_config(pose(k1=-0.28, k2=0.09, p1=0.001, p2=-0.0005, k3=-0.01), FRAME)
    w, h = cam.image_size
    uu, vv = np.meshgrid(np.linspace(0, w - 1, 17), np.linspace(h * 0.45, h - 1, 9))
    pixels = np.c_[uu.ravel(), vv.ravel()]
    ground = cam.pixel_to_ground(pixels)
    assert np.isfinite(ground).all()
    back, seen = cam.world_to_pixel(ground)
    assert seen.all() and np.abs(back - pixels).max() < 1e-4
    # Barrel distortion folds back far off the axis: such points are not "in the picture".
    behind_the_fold = [[cam.centre[0] + 1000 * np.sin(np.radians(30 + 85)), 1000 * np.cos(np.radians(30 + 85)), 12]]
    assert not cam.world_to_pixel(behind_the_fold)[1][0]


def test_ground_uncertainty_agrees_with_monte_carlo_and_stretches_along_the_line_of_sight():
    cam = CameraModel.from_config(pose(pixel_sigma=1.5), FRAME)
    near, far = [640, 700], [640, 100]  # 16 m and 100 m away
    cov = cam.ground_uncertainty([near, far])
    rng = np.random.default_rng(7)
    for pixel, c in zip([near, far], cov):
        samples = cam.pixel_to_ground(pixel + rng.normal(0, 1.5, (20_000, 2)))
        assert np.allclose(np.cov(samples.T), c, rtol=0.08, atol=1e-6)
    (minor_n, major_n), (minor_f, major_f) = np.linalg.eigvalsh(cov)
    assert major_f > 100 * major_n  # far away, a pixel covers much more ground (variance ~ range^4)
    _, vectors = np.linalg.eigh(cov[1])
    line_of_sight = cam.pixel_to_ground([far])[0] - cam.camera_en
    cos = abs(vectors[:, 1] @ line_of_sight) / np.linalg.norm(line_of_sight)
    assert cos > 0.999, "the long axis of a far ellipse points along the line of sight"
    assert np.isnan(cam.ground_uncertainty([[640, -400]])).all()  # above the horizon


def test_footprint_is_the_border_trace_closed_by_the_range_arc():
    cam = CameraModel.from_config(pose(height_m=20, pitch_deg=-5), FRAME)  # the horizon is in the picture
    wedge = cam.footprint(300)
    dist = np.linalg.norm(wedge - cam.camera_en, axis=1)
    assert dist.max() <= 300 + 1e-3 and (np.abs(dist - 300) < 1e-3).sum() >= 10  # the arc
    # Ground the camera sees within the range is inside the wedge; ground beyond it is not.
    rng = np.random.default_rng(5)
    ground = cam.pixel_to_ground(np.c_[rng.uniform(0, 1279, 4000), rng.uniform(0, 719, 4000)])
    ground = ground[np.isfinite(ground).all(axis=1)]
    dist = np.linalg.norm(ground - cam.camera_en, axis=1)
    inside = inside_polygon(ground, wedge)
    assert inside[dist < 299].all() and not inside[dist > 301].any()
    assert (dist < 299).sum() > 1000 and (dist > 301).sum() > 200
    # Looking steeply down, the whole picture is nearer than the range: its four sides' trace.
    down = CameraModel.from_config(pose(height_m=20, pitch_deg=-70), FRAME)
    trace = down.footprint(500)
    px, _ = down.world_to_pixel(trace)
    on_border = np.isclose(px[:, 0], -0.5) | np.isclose(px[:, 0], 1279.5) | np.isclose(px[:, 1], -0.5) | np.isclose(px[:, 1], 719.5)
    assert on_border.all() and len(trace) == 4 * 32
    assert down.footprint(0.5).shape == (0, 2)  # even the bottom row is farther (0.7 m at its middle)


# -- the homography model --------------------------------------------------------------------


def _survey_of(cam: PinholeCamera, pixels) -> list[dict]:
    ground = cam.pixel_to_ground(pixels)
    return [{"pixel": [float(u), float(v)], "east": float(e), "north": float(n)} for (u, v), (e, n) in zip(pixels, ground)]


def test_a_surveyed_homography_reproduces_the_pinhole_camera():
    cam = CameraModel.from_config(pose(position=(43.5082, 16.4404), pitch_deg=-5), FRAME)  # horizon at row 262
    survey = _survey_of(cam, [[100, 700], [1200, 690], [900, 420], [300, 430], [640, 550]])
    hom = CameraModel.from_config(CameraGeometry(points=survey, position=(43.5082, 16.4404), image_size=(1280, 720)), FRAME)
    assert isinstance(hom, GroundHomography)
    test = np.c_[np.random.default_rng(3).uniform(0, 1279, 200), np.random.default_rng(4).uniform(400, 719, 200)]
    assert np.abs(hom.pixel_to_ground(test) - cam.pixel_to_ground(test)).max() < 1e-4  # OpenCV's solver: 0.02 mm
    assert np.allclose(hom.ground_uncertainty(test), cam.ground_uncertainty(test), rtol=1e-4, atol=1e-10)
    assert np.allclose(hom.bearing_of_pixel(test[:, 0], test[:, 1]), cam.bearing_of_pixel(test[:, 0], test[:, 1]))
    # Above the horizon too: the azimuth of the ray, not of the ground behind the camera.
    assert np.allclose(hom.bearing_of_pixel([100, 1200], [50, 50]), cam.bearing_of_pixel([100, 1200], [50, 50]))
    px, seen = hom.world_to_pixel(cam.pixel_to_ground(test))
    assert seen.all() and np.abs(px - test).max() < 1e-3
    assert not hom.world_to_pixel([[cam.camera_en[0] - 30 * np.sin(np.radians(30)), cam.camera_en[1] - 30 * np.cos(np.radians(30))]])[1][0]
    with pytest.raises(ValueError, match="only the ground"):
        hom.world_to_pixel([[1, 2, 3]])
    with pytest.raises(ValueError, match="ground_height=0"):
        hom.pixel_to_ground(test, ground_height=1.0)
    # Without the camera's position there is no bearing; a footprint is measured from the post.
    anonymous = CameraModel.from_config(CameraGeometry(points=survey, image_size=(1280, 720)), FRAME)
    assert anonymous.bearing_of_pixel(640) is None
    assert len(anonymous.footprint(200)) > 3


def test_a_homography_matrix_works_whatever_its_sign_and_scale():
    cam = CameraModel.from_config(pose(pitch_deg=-5), FRAME)  # horizon at row 262
    survey = _survey_of(cam, [[100, 700], [1200, 690], [900, 420], [300, 430]])
    h = CameraModel.from_config(CameraGeometry(points=survey, image_size=(1280, 720)), FRAME).h
    for matrix in (-3.7 * h, 0.01 * h):
        hom = CameraModel.from_config(CameraGeometry(homography=matrix.tolist(), image_size=(1280, 720)), FRAME)
        assert np.allclose(hom.pixel_to_ground([[640, 600]]), cam.pixel_to_ground([[640, 600]]))
        assert np.isnan(hom.pixel_to_ground([[640, 10]])).all()


def test_lat_lon_survey_points_are_placed_in_the_posts_frame():
    cam = CameraModel.from_config(pose(), FRAME)
    survey = _survey_of(cam, [[100, 700], [1200, 690], [900, 420], [300, 430], [640, 550]])
    geo = []
    for p in survey:
        lat, lon = FRAME.to_geo(p["east"], p["north"])
        geo.append({"pixel": p["pixel"], "lat": float(lat), "lon": float(lon)})
    hom = CameraModel.from_config(CameraGeometry(points=geo), FRAME)
    assert np.abs(hom.pixel_to_ground([[640, 600]]) - cam.pixel_to_ground([[640, 600]])).max() < 1e-6
    with pytest.raises(ValueError, match="post's position"):
        CameraModel.from_config(CameraGeometry(points=geo))
    assert CameraGeometry(points=geo).needs_post_position and not CameraGeometry(points=survey).needs_post_position


# -- config errors ---------------------------------------------------------------------------


class _Camera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    geometry: CameraGeometry | None = None


class _Node(BaseModel):
    cameras: list[_Camera]


def _errors(geometry: dict) -> list[str]:
    with pytest.raises(ValidationError) as e:
        _Node.model_validate({"cameras": [{"id": "cam1", "geometry": geometry}]})
    return format_errors(e.value)


def _pt(u, v, e, n):
    return {"pixel": [u, v], "east": e, "north": n}


def test_config_errors_are_specific_and_located():
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(10, 0, 1, 0), _pt(0, 10, 0, 1)]}) == [
        "cameras[0].geometry.points: a homography needs at least 4 point pairs, got 3"]
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(10, 0, 1, 0), _pt(20, 0, 2, 1), _pt(30, 0, 0, 1)]}) == [
        "cameras[0].geometry: the points' pixels are collinear (on one line): survey points spread over the ground"]
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(10, 0, 1, 0), _pt(20, 0.01, 2, 1), _pt(30, 40, 0, 1)]}) == [
        "cameras[0].geometry.points[0], points[1] and points[2] have collinear pixels: with 4 pairs no 3 may be on one line"]
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(100, 0, 1, 0), _pt(0, 100, 0, 1), _pt(0, 0, 1, 1)]}) == [
        "cameras[0].geometry.points[3] has the same pixel as points[0]"]
    assert _errors({"points": [_pt(0, 0, 0, 0), {"pixel": [9, 9], "east": 1}, _pt(0, 100, 0, 1), _pt(100, 100, 1, 1)]}) == [
        "cameras[0].geometry.points[1]: a survey point needs lat and lon, or east and north"]
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(100, 0, 1, 0), _pt(0, 100, 0, 1), _pt(900, 100, 1, 1)],
                    "image_size": [640, 480]}) == ["cameras[0].geometry.points[3].pixel: (900, 100) is outside the 640x480 image"]
    assert _errors({"height_m": 10, "heading_deg": 90, "image_size": [640, 480], "fx": 500}) == [
        "cameras[0].geometry: a camera pose needs hfov_deg, or fx, fy, cx and cy (missing: fy, cx, cy)"]
    assert _errors({"homography": [[1, 0, 0], [0, 1, 0], [1, 0, 0]]}) == [
        "cameras[0].geometry.homography: the homography is singular: it maps the picture onto a line"]
    assert _errors({"homography": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "height_m": 10, "hfov_deg": 50}) == [
        "cameras[0].geometry: a homography replaces the pose: remove height_m, hfov_deg (or the homography)"]
    assert _errors({"points": [_pt(0, 0, 0, 0), _pt(100, 0, 1, 0), _pt(0, 100, 0, 1),
                               {"pixel": [100, 100], "lat": 43.5, "lon": 16.4}]}) == [
        "cameras[0].geometry: the points mix lat/lon and east/north: give them all one way"]
    assert _errors({})[0].startswith("cameras[0].geometry: give the camera's pose (height_m, heading_deg")
    assert _errors({"height_m": 10, "heading_deg": 90, "hfov_deg": 60, "image_size": [640, 480], "pitch_deg": -95}) == [
        "cameras[0].geometry.pitch_deg: Input should be greater than or equal to -90"]
    assert _errors({"height_m": 10, "heading_deg": 90, "hfov_deg": 60, "image_size": [640, 480], "zoom": 2}) == [
        "cameras[0].geometry.zoom: Extra inputs are not permitted"]


# -- Tsai, and the proof on PETS09 -----------------------------------------------------------


def test_tsai_calibration_reads_and_inverts_itself(pets):
    tsai = pets["tsai"]
    assert (tsai.width, tsai.height) == (768, 576) and np.isclose(tsai.dpx, tsai.dx * tsai.ncx / tsai.nfx)
    assert 6.5 < tsai.centre[2] / 1000 < 7.5  # a camera about 7 m above the ground
    uu, vv = np.meshgrid(np.linspace(0, 767, 25), np.linspace(200, 575, 16))
    pixels = np.c_[uu.ravel(), vv.ravel()]
    # Willson's cubic has one real root for kappa1 > 0 and three for kappa1 < 0: both branches.
    for kappa1 in (tsai.kappa1, -tsai.kappa1, -4 * tsai.kappa1, 0.0):
        cam = dataclasses.replace(tsai, kappa1=kappa1)
        ground = cam.image_to_world(pixels)
        assert np.abs(cam.world_to_image(np.c_[ground, np.zeros(len(ground))]) - pixels).max() < 1e-6


def test_converted_tsai_model_equals_the_exact_one(pets, pets_camera):
    tsai = pets["tsai"]
    (k1, k2, k3), fit_px = tsai.opencv_distortion()
    assert fit_px < 0.01, "OpenCV's polynomial matches the inverse of Tsai's distortion over the picture"
    uu, vv = np.meshgrid(np.linspace(0, 767, 25), np.linspace(150, 575, 18))
    pixels = np.c_[uu.ravel(), vv.ravel()]
    world = tsai.image_to_world(pixels) / 1000
    px, seen = pets_camera.world_to_pixel(np.c_[world, np.zeros(len(world))])
    assert seen.all() and np.abs(px - pixels).max() < 0.01
    assert np.abs(pets_camera.pixel_to_ground(pixels) - world).max() < 1e-4  # 0.1 mm
    heading, pitch, roll = pets_camera.pose
    assert 50 < heading < 60 and -20 < pitch < -10 and abs(roll) < 5  # looking north-east and down


def test_pets09_ground_truth_positions_project_onto_the_boxes(pets, pets_camera):
    known = pets["known"]
    world = np.c_[pets["world_m"][known], np.zeros(known.sum())]
    px, seen = pets_camera.world_to_pixel(world)
    err = np.linalg.norm(px - pets["bottom"][known], axis=1)
    median, p95, worst = np.median(err), np.percentile(err, 95), err.max()
    print(f"\nPETS09 gt -> pixels: {known.sum()} of {len(known)} rows with a position; "
          f"error median {median:.4f} px, p95 {p95:.4f} px, max {worst:.4f} px "
          f"(the file's world columns as read: median {np.median(pets['as_read_px']):.0f} px)")
    assert known.sum() >= 497 and seen.all()
    # The gt's positions and boxes agree to the precision they are printed with: 5 significant
    # digits, so +-0.5 mm on the ground (0.04 px at the nearest, 14 m) and +-0.005 px per box
    # coordinate. Measured: median 0.007, max 0.045 px. A bound of 0.1 px leaves room for that
    # rounding and nothing else: the model and the annotation are the same projection.
    assert worst < 0.1 and median < 0.02


def test_pets09_boxes_back_onto_the_ground(pets, pets_camera):
    known = pets["known"]
    ground = pets_camera.pixel_to_ground(pets["bottom"][known])
    err = np.linalg.norm(ground - pets["world_m"][known], axis=1)
    dist = np.linalg.norm(pets["world_m"][known] - pets_camera.camera_en, axis=1)
    print(f"\nPETS09 bottom-centres -> ground: error median {1000 * np.median(err):.2f} mm, "
          f"max {1000 * err.max():.2f} mm, at {dist.min():.1f}..{dist.max():.1f} m from the camera")
    # Rounding again (+-0.5 mm in x and y): measured median 0.3 mm, max 0.85 mm.
    assert err.max() < 0.002
    fix = pets_camera.anchor_to_ground(np.c_[pets["gt"][known, 2:4], pets["gt"][known, 2:4] + pets["gt"][known, 4:6]])
    assert np.allclose(fix.east_north, ground) and fix.valid.all()
    back = np.column_stack(FRAME.to_local(fix.lat, fix.lon))
    assert np.abs(back - ground).max() < 1e-6
    # A 2 px anchor is centimetres to decimetres here, growing with distance along the line of sight.
    major = np.sqrt(np.linalg.eigvalsh(fix.covariance)[:, 1])
    assert 0.03 < major.min() and major.max() < 0.5
    assert np.corrcoef(dist, major)[0, 1] > 0.9


def test_tsai_errors_are_one_line(tmp_path):
    bad = tmp_path / "View.xml"
    bad.write_text('<Camera><Geometry width="768"/></Camera>')
    with pytest.raises(CalibrationError, match="needs a number height"):
        TsaiCamera.from_xml(bad)
    with pytest.raises(CalibrationError, match="cannot read"):
        TsaiCamera.from_xml(tmp_path / "missing.xml")


@pytest.mark.parametrize("geometry", [
    pose(), pose(height_m=30, heading_deg=77, pitch_deg=-3, roll_deg=2, hfov_deg=40),  # the horizon in the picture
    CameraGeometry(homography=[[0.01, 0.0001, -3], [0.0002, -0.05, 40], [0.00001, 0.001, 0.1]], image_size=(1280, 720)),
])
def test_ground_covariance_in_closed_form_is_the_map_s_own_derivative(geometry):
    """Without lens distortion pixel -> ground is projective and its Jacobian is exact; it must
    agree with a fine central difference of pixel_to_ground, and say NaN / inf where the probes
    of the distorted model's path would (off the ground; a quarter pixel from the horizon)."""
    cam = CameraModel.from_config(geometry, FRAME)
    assert cam._plane_homography(0.0) is not None
    rng = np.random.default_rng(11)
    px = np.c_[rng.uniform(0, 1279, 3000), rng.uniform(-360, 719, 3000)]
    fix = cam.anchor_to_ground(np.c_[px - [1, 10], px + [1, 0]], geo=False)  # boxes whose bottom centre is px
    assert np.allclose(fix.east_north, cam.pixel_to_ground(px), rtol=1e-9, atol=1e-6, equal_nan=True)
    h = 1e-3
    jac = np.stack([(cam.pixel_to_ground(px + [h, 0]) - cam.pixel_to_ground(px - [h, 0])) / (2 * h),
                    (cam.pixel_to_ground(px + [0, h]) - cam.pixel_to_ground(px - [0, h])) / (2 * h)], axis=2)
    expected = cam.pixel_sigma ** 2 * jac @ jac.transpose(0, 2, 1)
    finite = np.isfinite(fix.covariance).all(axis=(1, 2))
    assert finite.sum() > 1000 and np.isnan(fix.covariance).all(axis=(1, 2)).sum() > 500
    scale = np.abs(expected[finite]).max(axis=(1, 2))
    error = np.abs(fix.covariance[finite] - expected[finite]).max(axis=(1, 2)) / scale
    assert error.max() < 1e-4
    # The same pixels through the probe path (as a distorted lens would take): the same verdicts.
    probes = type(cam)._plane_homography
    try:
        type(cam)._plane_homography = lambda self, height: None
        by_probes = cam.ground_uncertainty(px)
    finally:
        type(cam)._plane_homography = probes
    assert (np.isnan(by_probes) == np.isnan(fix.covariance)).all() and (np.isinf(by_probes) == np.isinf(fix.covariance)).all()
