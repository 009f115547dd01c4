"""The radar picture, radar-camera fusion and geo rules, on hand-built scenes with a real camera
model; and the fusion evaluation on PETS09 with the generated radar feed."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from edge.camera_model import CameraGeometry, CameraModel
from edge.config import parse_config
from edge.fusion import Fusion, FusionConfig, mahalanobis2
from edge.geo import LocalFrame
from edge.geo_rules import GeoRuleEngine
from edge.radar.reports import TargetReport
from edge.radar.store import SensorAccuracy, TrackStore
from edge.track import Track

POST = (45.8150, 15.9819)
WALL = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def frame() -> LocalFrame:
    return LocalFrame(*POST)


@pytest.fixture
def camera(frame) -> CameraModel:
    """A camera on a 10 m mast at the post, looking north, 20 degrees down, 60 degrees wide."""
    g = CameraGeometry(height_m=10.0, heading_deg=0.0, pitch_deg=-20.0, hfov_deg=60.0, image_size=(1280, 720))
    return CameraModel.from_config(g, frame)


def report(target: str, t: float, east: float, north: float, frame: LocalFrame, *, kind="radar", speed=None,
           course=None, source="radar", name=None) -> TargetReport:
    lat, lon = frame.to_geo(east, north)
    return TargetReport(source, kind, target, t, lat=float(lat), lon=float(lon), speed_mps=speed, course_deg=course,
                        name=name)


def person_track(track_id: int, camera: CameraModel, east: float, north: float, t: float) -> Track:
    """A real Track whose box is a 1.7 m person standing at (east, north), as the camera sees it."""
    pix, _ = camera.world_to_pixel(np.array([[east, north, 0.0], [east, north, 1.7]]))
    (u0, v0), (_, v1) = pix
    h = v0 - v1
    box = np.array([u0 - h / 5, v1, u0 + h / 5, v0], np.float32)
    tr = Track(track_id, 0, "person", box, 0.9, t, 64)
    return tr


# -- store ---------------------------------------------------------------------------------


def test_store_places_targets_and_estimates_velocity(frame):
    store = TrackStore(frame, {"radar": SensorAccuracy(origin=(0.0, 0.0))})
    for k in range(5):
        store.add(report("07", 100.0 + k, 200.0 + 2.0 * k, 300.0, frame))  # 2 m/s east
    tgt = store.get(("radar", "07"))
    assert tgt.east == pytest.approx(208.0, abs=0.01) and tgt.north == pytest.approx(300.0, abs=0.01)
    assert tgt.speed_mps == pytest.approx(2.0, abs=0.01) and tgt.course_deg == pytest.approx(90.0, abs=0.5)
    snap = store.snapshot(106.0)
    assert snap.east[0] == pytest.approx(212.0, abs=0.01), "predicted two seconds on, to the snapshot's time"


def test_store_range_bearing_without_position_uses_the_sensor_origin(frame):
    store = TrackStore(frame, {"r2": SensorAccuracy(origin=(100.0, 0.0))})
    store.add(TargetReport("r2", "radar", "1", 0.0, range_m=50.0, bearing_deg=90.0))
    tgt = store.get(("r2", "1"))
    assert (tgt.east, tgt.north) == pytest.approx((150.0, 0.0), abs=1e-6)


def test_a_radar_at_the_post_is_placed_where_its_lat_lon_are(frame):
    """Reports from a radar at the post take the short way (range and bearing are the frame's
    polar coordinates); they land where the report's lat/lon would put them, as those of a radar
    elsewhere do."""
    from edge.radar.nmea import NmeaDecoder

    rng = np.random.default_rng(2)
    here = NmeaDecoder("here", position=POST)
    away_at = frame.to_geo(300.0, -200.0)
    away = NmeaDecoder("away", position=(float(away_at[0]), float(away_at[1])))
    store = TrackStore(frame)
    for k in range(40):
        dist_nm, brg = rng.uniform(0.01, 12.0), rng.uniform(0, 360)
        for dec in (here, away):
            (rep,) = dec.feed(_ttm(k, dist_nm, brg), 0.0)
            tgt = store.add(rep)
            east, north = frame.to_local(rep.lat, rep.lon)
            assert (tgt.east, tgt.north) == pytest.approx((float(east), float(north)), abs=1e-6)
        assert rep.origin == away.position and here.feed(_ttm(k, dist_nm, brg), 0.0)[0].origin == POST


def _ttm(target: int, dist_nm: float, bearing: float) -> bytes:
    from edge.evaluation.radar_scenario import sentence

    return sentence(f"RATTM,{target:02d},{dist_nm:.5f},{bearing:.2f},T,5.0,90.0,T,,,N,,T,,120000.00,A").encode()


def test_radar_error_is_long_across_the_beam(frame):
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=5.0, bearing_sigma_deg=1.0, origin=(0.0, 0.0))})
    store.add(report("1", 0.0, 0.0, 1000.0, frame))  # straight north, 1 km
    cov = store.snapshot(0.0).cov[0]
    # Along the beam (north): 5 m. Across (east): 1 km x 1 degree = 17.5 m.
    assert math.sqrt(cov[1, 1]) == pytest.approx(5.0, rel=0.01)
    assert math.sqrt(cov[0, 0]) == pytest.approx(17.45, rel=0.01)


def test_stale_targets_expire_and_quality_is_reported(frame):
    store = TrackStore(frame, {"radar": SensorAccuracy(stale_s=5.0)})
    store.add(report("1", 0.0, 10.0, 10.0, frame))
    store.add(report("2", 8.0, 20.0, 10.0, frame))
    assert store.expire(10.0) == 1 and [t.target for t in store.targets()] == ["2"]
    q = store.quality(10.0)["radar"]
    assert q["reports"] == 2 and q["targets"] == 1 and q["expired"] == 1 and q["last_report_age_s"] == 2.0


def test_mahalanobis_by_hand():
    d = np.array([[3.0, 4.0]])
    assert mahalanobis2(d, np.array([np.eye(2) * 25.0]))[0] == pytest.approx(1.0)
    assert mahalanobis2(d, np.array([[[9.0, 0.0], [0.0, 16.0]]]))[0] == pytest.approx(2.0)


# -- fusion --------------------------------------------------------------------------------


def step_many(fusion, store, camera, frame, people, radar, t0, n, dt_s=0.2):
    """people: {track id: (east0, north0, ve, vn)}; radar: {target: (east0, north0, ve, vn)}."""
    result = None
    for k in range(n):
        t = t0 + k * dt_s
        for tgt, (e, nn, ve, vn) in radar.items():
            store.add(report(tgt, t, e + ve * (t - t0), nn + vn * (t - t0), frame, speed=math.hypot(ve, vn),
                             course=math.degrees(math.atan2(ve, vn)) % 360))
        tracks = [person_track(tid, camera, e + ve * (t - t0), nn + vn * (t - t0), t) for tid, (e, nn, ve, vn) in people.items()]
        result = fusion.step(tracks, t)
    return result


@pytest.mark.parametrize("distorted", [False, True])
def test_the_camera_side_is_the_ground_fix_and_ground_velocities(frame, distorted):
    """Fusion._camera_side (one compiled call with a projective ground map; anchor_to_ground and
    GroundVelocities.update otherwise, as with lens distortion) gives, frame by frame, what the
    camera model and the velocity fit give on their own: positions, covariances, on-ground flags
    and velocities, to the bit, while tracks come and go and one stands above the horizon."""
    from edge.ground_velocity import GroundVelocities

    # pitched 8 degrees down: the image's top rows are sky
    lens = dict(fx=900.0, fy=900.0, cx=640.0, cy=360.0, k1=-0.2, k2=0.05) if distorted else dict(hfov_deg=60.0)
    camera = CameraModel.from_config(CameraGeometry(height_m=10.0, heading_deg=0.0, pitch_deg=-8.0, image_size=(1280, 720),
                                                    **lens), frame)
    assert (camera.projective_ground() is None) == distorted
    fusion = Fusion("cam", camera, TrackStore(frame, {}), FusionConfig())
    reference = GroundVelocities(fusion.config.velocity_window_s)
    sky = Track(99, 0, "person", np.array([600, 0, 640, 5], np.float32), 0.9, 0.0, 64)  # its feet above the horizon
    seen = 0
    for k in range(60):
        t = 100.0 + k / 10
        tracks = [person_track(i, camera, -8.0 + 2 * i + 0.3 * k / 10, 30.0 + 3 * i, t) for i in range(6)
                  if not (i == 2 and 20 <= k < 35) and not (i == 5 and k < 10)]
        tracks += [sky] if k % 3 else []
        ids = [tr.id for tr in tracks]
        pos, cov, on_ground, vel = fusion._camera_side(tracks, ids, t)
        fix = camera.anchor_to_ground(np.array([tr.box for tr in tracks], np.float64), geo=False)
        want_vel = reference.update(ids, fix.east_north, t)
        np.testing.assert_array_equal(pos, fix.east_north)
        np.testing.assert_array_equal(cov, fix.covariance)
        np.testing.assert_array_equal(on_ground, fix.valid)
        np.testing.assert_array_equal(vel, want_vel)
        if 99 in ids:
            assert not on_ground[ids.index(99)] and on_ground.sum() == len(ids) - 1
        seen += int(np.isfinite(vel).all(1).sum())
    assert seen > 200, "the velocities were compared once the tracks had them"
    _, _, _, vel = fusion._camera_side([], [], 200.0)
    assert vel.shape == (0, 2)


def test_fusion_links_the_right_target_after_confirmation(frame, camera):
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=3))
    people = {1: (-4.0, 60.0, 1.0, 0.0), 2: (6.0, 80.0, -1.0, 0.0)}
    radar = {"11": (-4.0, 60.0, 1.0, 0.0), "12": (6.0, 80.0, -1.0, 0.0), "99": (30.0, 40.0, 0.0, 1.0)}
    early = step_many(fusion, store, camera, frame, people, radar, 0.0, 2)
    assert early.links == {}, "not before confirm_frames"
    result = step_many(fusion, store, camera, frame, people, radar, 0.4, 5)
    assert result.links == {1: ("radar", "11"), 2: ("radar", "12")}
    fused = {o.camera_track.id: o for o in result.objects if o.camera_track is not None}
    assert fused[1].sensors == ("camera", "radar") and fused[1].speed_mps == pytest.approx(1.0)
    alone = [o for o in result.objects if o.camera_track is None]
    assert [o.radar.target for o in alone] == ["99"], "the unseen radar target stays radar-only"


def test_fusion_gates_out_a_target_on_another_bearing(frame, camera):
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=30.0, bearing_sigma_deg=0.2, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=1))
    # Same range, 8 degrees apart: a loose range accuracy would allow it, the bearing does not.
    result = step_many(fusion, store, camera, frame, {1: (0.0, 60.0, 0, 0)}, {"11": (8.4, 59.4, 0, 0)}, 0.0, 3)
    assert result.links == {}


def test_a_passing_false_plot_does_not_steal_a_link(frame, camera):
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=3))
    step_many(fusion, store, camera, frame, {1: (0.0, 60.0, 1.0, 0.0)}, {"11": (0.0, 60.0, 1.0, 0.0)}, 0.0, 6)
    # A clutter plot lands on the person for two frames, moving differently.
    result = step_many(fusion, store, camera, frame, {1: (1.2, 60.0, 1.0, 0.0)},
                       {"11": (1.2, 60.0, 1.0, 0.0), "90": (1.25, 60.1, -0.5, 0.8)}, 1.2, 2)
    assert result.links == {1: ("radar", "11")}


def test_a_link_survives_a_short_radar_dropout(frame, camera):
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0), stale_s=5)})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=2, keep_s=1.5))
    step_many(fusion, store, camera, frame, {1: (0.0, 60.0, 1.0, 0.0)}, {"11": (0.0, 60.0, 1.0, 0.0)}, 0.0, 4)
    # The radar misses the target for a second; its prediction keeps it in the gate.
    result = step_many(fusion, store, camera, frame, {1: (0.8, 60.0, 1.0, 0.0)}, {}, 0.8, 5)
    assert result.links == {1: ("radar", "11")}


def test_a_track_that_replaces_a_lost_one_takes_its_target_after_confirmation(frame, camera):
    """The tracker loses a person and picks them up again under a new id: the new track takes
    the radar target once it has won it confirm_frames frames in a row, not when the lost
    track's link runs out (keep_s), and keeps it."""
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=3, keep_s=5.0, reassociate_s=0.0))
    person, target = (0.0, 60.0, 1.0, 0.0), {"11": (0.0, 60.0, 1.0, 0.0)}
    assert step_many(fusion, store, camera, frame, {1: person}, target, 0.0, 5).links == {1: ("radar", "11")}
    moved = (0.8 + 1.0, 60.0, 1.0, 0.0)  # where the person is from t = 1.0 on
    history = []
    for k in range(8):
        t = 1.0 + 0.2 * k
        history.append(step_many(fusion, store, camera, frame, {2: moved}, {"11": moved}, t, 1).links)
        moved = (moved[0] + 0.2, 60.0, 1.0, 0.0)
    assert history[:2] == [{}, {}], "a candidate until confirmed"
    assert all(links == {2: ("radar", "11")} for links in history[2:]), history


def test_a_track_found_again_under_its_id_keeps_its_link_within_keep_s(frame, camera):
    """The tracker misses a person for a few frames and finds them again under the same id: the
    link comes back with the track at once (no new confirmation), as long as the gap is shorter
    than keep_s; after a longer gap the track must win its target again."""
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0))})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=3, keep_s=1.0, reassociate_s=0.0))
    person = lambda t: {1: (-4.0 + t, 60.0, 1.0, 0.0)}  # noqa: E731
    target = lambda t: {"11": (-4.0 + t, 60.0, 1.0, 0.0)}  # noqa: E731
    assert step_many(fusion, store, camera, frame, person(0.0), target(0.0), 0.0, 5).links == {1: ("radar", "11")}
    assert step_many(fusion, store, camera, frame, {}, target(1.0), 1.0, 3).links == {}  # the track is missed
    assert step_many(fusion, store, camera, frame, person(1.6), target(1.6), 1.6, 1).links == {1: ("radar", "11")}
    step_many(fusion, store, camera, frame, person(1.8), target(1.8), 1.8, 3)
    assert step_many(fusion, store, camera, frame, {}, target(2.4), 2.4, 8).links == {}  # missed for 1.6 s
    again = [step_many(fusion, store, camera, frame, person(4.0 + 0.2 * k), target(4.0 + 0.2 * k), 4.0 + 0.2 * k, 1).links
             for k in range(3)]
    assert again == [{}, {}, {1: ("radar", "11")}], "a candidate again until confirmed"


def test_targets_that_come_and_go_for_long_do_not_grow_the_fusion_or_break_its_links(frame, camera):
    """A node runs for months and radar targets come and go: the fusion's integer names for
    target keys are pruned (only those a column or a link still uses are kept), and a link made
    before a prune is the same link after it, also when its target was out of view just then."""
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0),
                                                       stale_s=0.5)})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=3, keep_s=1.0))
    sizes, linked, away = [], [], []
    for k in range(200):
        t = 0.2 * k
        away.append(k > 10 and k % 10 < 4)  # the radar's target jumps out of the camera's view for 0.8 s
        store.add(report("11", t, 200.0 if away[-1] else -4.0 + 0.2 * t, 60.0, frame, speed=0.2, course=90.0))
        for n in range(20):  # clutter in view, each plot a new target that lives a frame or two
            store.add(report(f"c{k}-{n}", t, -10.0 + n, 90.0 + (k % 7), frame))
        store.expire(t)
        result = fusion.step([person_track(1, camera, -4.0 + 0.2 * t, 60.0, t)], t)
        sizes.append(len(fusion._uid_of))
        linked.append(result.links.get(1))
    pruned = [k for k in range(1, len(sizes)) if sizes[k] < sizes[k - 1]]
    assert sizes[60] > 1000, "every clutter plot was in view and named"
    assert max(sizes) < 1300 and pruned, "4,001 names unpruned"
    assert any(away[k - 1] for k in pruned), "a prune while the linked target was out of view (its last frame)"
    assert all(key == ("radar", "11") for key in linked[5:]), linked


def test_ais_gives_the_radar_target_an_identity(frame, camera):
    store = TrackStore(frame, {"radar": SensorAccuracy(origin=(0.0, 0.0)), "ais": SensorAccuracy(position_sigma_m=10.0)})
    fusion = Fusion("cam", camera, store)
    store.add(report("21", 0.0, 100.0, 400.0, frame, speed=4.0, course=90.0))
    store.add(report("244123456", 0.0, 108.0, 404.0, frame, kind="ais", source="ais", name="NORDIC STAR"))
    store.add(report("22", 0.0, -300.0, 250.0, frame))
    result = fusion.step([], 0.5)
    by_target = {o.radar.target: o for o in result.objects if o.radar is not None}
    assert by_target["21"].ais.name == "NORDIC STAR" and by_target["21"].sensors == ("radar", "ais")
    assert by_target["22"].ais is None


# -- geo rules -----------------------------------------------------------------------------


GEO = """
node: {site: coast, id: tower-1, lat: 45.815, lon: 15.9819}
cameras: [{id: cam, source: x}]
geo_zones:
  - {id: bay, kind: maritime, points: [[45.8152, 15.9810], [45.8170, 15.9810], [45.8170, 15.9830], [45.8152, 15.9830]]}
geo_rules:
  - {id: confirmed, type: radar_confirmed, zone: bay, classes: [person], dwell_s: 1}
  - {id: unseen, type: radar_only, zone: bay, dwell_s: 1, min_speed_mps: 0.5}
  - {id: dark, type: dark_vessel, zone: bay, dwell_s: 1}
"""


def test_geo_rules_on_the_fused_picture(frame, camera):
    config = parse_config(GEO)
    engine = GeoRuleEngine(config, frame)
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0)),
                               "ais": SensorAccuracy()})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=2))
    fired = []
    for k in range(12):
        t = k * 0.25
        store.add(report("11", t, 0.0 + 0.8 * t, 60.0, frame, speed=0.8, course=90))  # a person the camera sees
        store.add(report("12", t, -40.0, 150.0, frame, speed=2.0, course=0))  # out of the camera's view
        store.add(report("13", t, 40.0, 120.0, frame, speed=3.0, course=270))  # identified by AIS
        store.add(report("99", t, 40.0, 120.0, frame, kind="ais", source="ais", speed=3.0, course=270, name="PATROL"))
        tracks = [person_track(1, camera, 0.0 + 0.8 * t, 60.0, t)]
        objects = fusion.step(tracks, t).objects
        fired += [(round(t, 2), e.rule.id, e.obj.radar.target if e.obj.radar else None)
                  for e in engine.evaluate(objects, t, WALL)]
    assert [tg for _, r, tg in fired if r == "confirmed"] == ["11"]
    assert sorted(tg for _, r, tg in fired if r == "unseen") == ["12", "13"], "no camera track links them"
    dark = sorted(tg for _, r, tg in fired if r == "dark")
    assert dark == ["11", "12"], "radar vessels without AIS; the AIS-identified one is not dark"
    assert len(fired) == 5, "each fires once per visit"


# -- the PETS09 evaluation -----------------------------------------------------------------


@pytest.mark.slow
def test_fusion_accuracy_on_pets09_with_the_generated_radar(data_dir: Path, tmp_path: Path):
    seq = data_dir / "mot" / "PETS09-S3-MF1"
    feed = tmp_path / "radar.nmea"
    r = run_cli("eval", "radar-scenario", str(seq), "--out", str(feed))
    assert r.returncode == 0, r.stderr
    assert "target reports of 7 people" in r.stdout
    r = run_cli("eval", "fusion", str(seq), "--radar", str(feed), "--fps", "7", "--json")
    assert r.returncode == 0, r.stderr
    score = json.loads(r.stdout.strip().splitlines()[-1])
    assert score["link_accuracy"] >= 0.95 and score["wrong_link_rate"] <= 0.02
    assert score["eligible"] > 500


def test_the_scenario_feed_is_what_it_claims(data_dir: Path, frame):
    """The generator's stated properties, measured on what it wrote: valid sentences, the
    people's targets near their true tracks with the stated noise, dropouts, clutter ids."""
    from edge.evaluation.fusion import pets_camera
    from edge.evaluation.radar_scenario import generate, trajectories
    from edge.evaluation.tracking import load_sequence
    from edge.radar.nmea import NmeaDecoder

    seq = load_sequence(data_dir / "mot" / "PETS09-S3-MF1")
    model = pets_camera(seq, frame)
    tracks = trajectories(seq.gt, model.pixel_to_ground)
    sc = generate(tracks, tuple(model.camera_en), 7.0, frame=frame, seed=3, dropout=0.2, range_sigma_m=1.0,
                  bearing_sigma_deg=0.5, clutter_rate=0.5)
    decoder = NmeaDecoder("radar")
    reports = [rep for line in sc.lines for rep in decoder.feed(line, 0.0)]
    assert decoder.stats.rejected == 0 and len(reports) == sc.reports
    people = [r for r in reports if 10 <= int(r.target) < 90]
    clutter = [r for r in reports if int(r.target) >= 90]
    assert clutter and sc.clutter_tracks >= 3
    # Every person report within 4 sigma of the person's true place at that second.
    errors = []
    for r in people:
        tr = tracks[int(r.target) - 10]
        f = 1 + (r.time - 1767268800.0) * 7.0
        e, n = np.interp(f, tr[:, 0], tr[:, 1]), np.interp(f, tr[:, 0], tr[:, 2])
        re, rn = frame.to_local(r.lat, r.lon)
        errors.append(math.hypot(re - e, rn - n))
    assert np.median(errors) < 1.5 and max(errors) < 4.5
    expected = sum(int((tr[-1, 0] - tr[0, 0]) / 7.0) + 1 for tr in tracks.values())
    assert 0.65 * expected <= len(people) <= 0.95 * expected, "about 20% missed"
