"""The node's merged picture builds a fused object only when it is read, and reads as the eager
list of objects did: the same objects, places, keys and geo-rule events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.config import parse_config
from edge.fused_picture import MergedPicture
from edge.fusion import CameraObjects, Fusion, FusionConfig, RadarOnly, pair_ais
from edge.geo_rules import GeoRuleEngine, object_key
from edge.radar.store import SensorAccuracy, TrackStore
from test_fusion import GEO, WALL, camera, frame, person_track, report  # noqa: F401  (fixtures)


def fields(o) -> tuple:
    return (o.camera_track.id if o.camera_track is not None else None, o.radar.key if o.radar else None,
            o.ais.key if o.ais else None, o.east, o.north, o.sigma_m, o.speed_mps, o.course_deg, o.camera, o.sensors,
            o.class_name)


def test_camera_objects_read_as_the_eager_build_and_carry_the_ais_identity(frame, camera):  # noqa: F811
    """A linked track's object has the radar's target, the vessel's AIS identity, and the
    position refined by both; an unlinked track's the camera's own; in track order, linked first."""
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0)),
                               "ais": SensorAccuracy(position_sigma_m=10.0)})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=2))
    for k in range(6):
        t = k * 0.25
        store.add(report("11", t, 0.8 * t, 60.0, frame, speed=0.8, course=90))
        store.add(report("99", t, 0.8 * t + 3, 61.0, frame, kind="ais", source="ais", speed=0.8, course=90,
                         name="SKIFF"))
        tracks = [person_track(7, camera, -15.0, 40.0, t), person_track(1, camera, 0.8 * t, 60.0, t)]
        result = fusion.step(tracks, t)
    view = result.camera_view
    assert isinstance(view, CameraObjects) and len(view) == 2
    assert view.keys == [("radar", "radar", "11"), ("camera", "cam", 7)], "linked first, then the others"
    linked, alone = view[0], view[1]
    assert linked.camera_track.id == 1 and linked.radar.target == "11" and linked.ais.name == "SKIFF"
    assert linked.sensors == ("camera", "radar", "ais")
    assert alone.radar is None and alone.sensors == ("camera",)
    assert [object_key(o) for o in view] == view.keys
    np.testing.assert_array_equal(view.positions, [[o.east, o.north] for o in view])
    assert view[-1] is alone and view[0:2] == [linked, alone] and list(view) == result.camera_objects
    # The camera's own fix for the unlinked track; the linked one lies between radar and camera.
    fix = camera.anchor_to_ground(np.array([tracks[0].box], np.float64), geo=False)
    np.testing.assert_allclose(view.positions[1], fix.east_north[0])
    assert abs(linked.north - 60.0) < 1.0 and linked.sigma_m < 2.0


def test_the_merged_picture_is_lazy_and_gives_the_rules_the_same_events(frame, camera):  # noqa: F811
    """The geo rules on the merged picture (objects built when read) fire what they fire on the
    plain list of every object; reading places and keys brings no waiting report into a target."""
    config = parse_config(GEO)
    lazy_engine, list_engine = GeoRuleEngine(config, frame), GeoRuleEngine(config, frame)
    store = TrackStore(frame, {"radar": SensorAccuracy(range_sigma_m=2.0, bearing_sigma_deg=0.5, origin=(0.0, 0.0)),
                               "ais": SensorAccuracy()})
    fusion = Fusion("cam", camera, store, FusionConfig(confirm_frames=2))
    fired = {"lazy": [], "list": []}
    for k in range(12):
        t = k * 0.25
        store.add(report("11", t, 0.8 * t, 60.0, frame, speed=0.8, course=90))  # a person the camera sees
        store.add(report("12", t, -40.0, 150.0, frame, speed=2.0, course=0))  # out of the camera's view
        store.add(report("13", t, 40.0, 120.0, frame, speed=3.0, course=270))  # identified by AIS
        store.add(report("99", t, 40.0, 120.0, frame, kind="ais", source="ais", speed=3.0, course=270, name="PATROL"))
        store.add(report("14", t, 300.0, -500.0, frame, speed=1.0, course=0))  # far from every zone
        tracks = [person_track(1, camera, 0.8 * t, 60.0, t), person_track(2, camera, -5.0, 16.0, t)]  # outside the bay
        result = fusion.step(tracks, t)
        radar, ais = store.snapshot(t, kind="radar"), store.snapshot(t, kind="ais")
        merged = MergedPicture([result.camera_view], RadarOnly(radar, ais, set(result.links.values()),
                                                                pair_ais(radar, ais, FusionConfig())))
        events = lambda engine, objects: [(e.rule.id, object_key(e.obj), e.started)  # noqa: E731
                                          for e in engine.evaluate(objects, t, WALL)]
        fired["lazy"] += events(lazy_engine, merged)
        far = merged.rest.keys.index(("radar", "14"))
        camera_only = merged.parts[0].keys.index(("camera", "cam", 2))
        assert far not in merged.rest._built and camera_only not in merged.parts[0]._built, (
            far, camera_only, list(merged.rest._built), list(merged.parts[0]._built))
        # The eager list: every object built (this reads the same camera objects as `merged`).
        eager = result.camera_objects + list(RadarOnly(radar, ais, set(result.links.values()),
                                                       pair_ais(radar, ais, FusionConfig())))
        fired["list"] += events(list_engine, eager)
        assert [fields(o) for o in merged] == [fields(o) for o in eager]
        assert merged.keys == [object_key(o) for o in eager]
        np.testing.assert_array_equal(merged.positions, [[o.east, o.north] for o in eager])
    assert fired["lazy"] == fired["list"] and len(fired["lazy"]) == 5


def test_reading_places_and_keys_leaves_the_fast_paths_reports_waiting(videos: Path):
    """On the fusion bench's scene (a radar at the post, its TTMs on the store's fast path), the
    rules' zone test reads the merged picture's places and keys: no target is brought up to date
    for it. Reading an object does."""
    from edge.fusion_bench import FusionScene
    from edge.sources import open_source
    from edge.track import Tracker

    scene = FusionScene(next(iter(open_source(str(videos / "vtest.avi")))), ["person"], frames=80)
    tracker = Tracker(scene.camera.tracker)
    for k in range(80):
        scene.radar_work(k, tracker.update(scene.detections[k], k * scene.dt_frame), "step")
    t = scene.t0 + 79 * scene.dt_frame
    store = scene.picture.store
    from edge.pipeline import FrameResult
    from edge.sources import Frame

    tracks = tracker.update(scene.detections[79], 79 * scene.dt_frame)
    result = scene.fusion.step(tracks, t)
    scene.fused.update(scene.camera.id, FrameResult(Frame(scene.image, 79, t, "bench"), scene.detections[79], tracks,
                                                    [], [], result, t), scene.cam_model)
    waiting = len(store._pending)
    merged = scene.fused.merged(t)
    assert waiting > 0 and len(merged) == 200 + len(merged.parts[0]) - len(result.links)
    assert merged.positions.shape == (len(merged), 2) and len(merged.keys) == len(merged)
    assert len(store._pending) == waiting, "places and keys read no target"
    first = merged[0]
    assert first.radar is not None and len(store._pending) == 0
    row = store._row[first.radar.key]
    assert (first.radar.east, first.radar.north) == tuple(store._num[row, :2]) and first.radar.reports > 1
