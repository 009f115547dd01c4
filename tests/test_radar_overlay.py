"""The fused picture end to end: `replay` with a radar recording (alerts with radar evidence,
the overlay, the plan view), and a running node with a live UDP radar feed, geo-rule alerts,
radar figures in its heartbeat and its live MJPEG server."""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, free_port, run_cli
from edge.camera_model import CameraModel
from edge.config import parse_config
from edge.evaluation.radar_scenario import sentence
from edge.geo import LocalFrame
from edge.plan_view import CONFIRMED, RADAR, draw_radar_on_frame
from edge.radar.store import Target

START = "2026-01-01T12:00:00Z"


@pytest.fixture(scope="module")
def pets_fused(data_dir: Path, tmp_path_factory) -> dict:
    """The example fusion config replayed on PETS09-S3-MF1 with its generated radar feed."""
    out = tmp_path_factory.mktemp("fused")
    feed = out / "pets-radar.nmea"
    r = run_cli("eval", "radar-scenario", str(data_dir / "mot" / "PETS09-S3-MF1"), "--out", str(feed), "--seed", "7")
    assert r.returncode == 0, r.stderr
    env = {"ZASTAVA_RADAR_FEED": str(feed)}
    r = run_cli("replay", "-c", str(REPO / "configs" / "pets09-fusion.yaml"), "--start-time", START,
                "--out", str(out / "fused.avi"), "--plan-out", str(out / "plan.png"), "--snapshots", str(out / "snaps"),
                env=env)
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(line) for line in r.stdout.splitlines()]
    return {"out": out, "alerts": alerts, "summary": r.stderr.strip().splitlines()[-1], "feed": feed}


def test_replay_with_radar_raises_camera_confirmed_alerts_with_both_sensors(pets_fused):
    alerts = pets_fused["alerts"]
    confirmed = [a for a in alerts if a["rule_type"] == "radar_confirmed"]
    # People 1..5 walk through the road zone; a confirmed alert needs the radar link and 1 s in the zone.
    assert len(confirmed) >= 3, pets_fused["summary"]
    for a in confirmed:
        assert a["sensors"] == ["camera", "radar"] and a["class"] == "person"
        # The scenario numbers person N's radar track 10 + N; the camera's track on that person is linked.
        assert 11 <= int(a["radar"]["target"]) <= 17
        assert a["position"]["sigma_m"] < 1.0
        assert a["snapshot"]["bytes"] > 0 and a["bbox"] is not None
        # on the scenario's clock (from 2026-01-01 12:00 UTC, 107 frames at 7 fps): the camera
        # track's first sighting, not its seconds since the recording began
        first, started, when = (dt.datetime.fromisoformat(a[k]) for k in ("first_seen", "started", "time"))
        assert dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc) <= first <= started <= when
        assert when - first < dt.timedelta(seconds=16)
    # Camera rules gain the fused position and radar evidence too.
    camera = [a for a in alerts if a["rule_type"] == "intrusion"]
    assert camera and all(a["position"] is not None for a in camera)
    assert sum(a["radar"] is not None for a in camera) >= len(camera) - 1
    assert "94 radar/AIS report(s)" in pets_fused["summary"]


def test_radar_only_alerts_carry_the_plan_view_as_evidence(pets_fused):
    only = [a for a in pets_fused["alerts"] if a["rule_type"] == "radar_only"]
    for a in only:  # the scenario's false plots (numbered from 90) that live longer than the rule's dwell
        assert a["sensors"] == ["radar"] and int(a["radar"]["target"]) >= 90 and a["bbox"] is None
        img = cv2.imread(str(pets_fused["out"] / "snaps" / f"{a['id']}.jpg"))
        assert img.shape[:2] == (800, 800)  # the plan view, not a camera frame


def test_plan_view_and_overlay_show_radar_targets(pets_fused):
    plan = cv2.imread(str(pets_fused["out"] / "plan.png"))
    assert plan is not None and plan.shape == (800, 800, 3)
    assert np.all(plan == CONFIRMED, axis=2).sum() > 50  # camera-confirmed radar targets at the end
    cap = cv2.VideoCapture(str(pets_fused["out"] / "fused.avi"))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == 107


def test_radar_markers_land_where_the_camera_sees_the_target(data_dir: Path):
    from edge.evaluation.radar_scenario import POST_LAT, POST_LON
    from edge.tsai import TsaiCamera

    frame = LocalFrame(POST_LAT, POST_LON)
    tsai = TsaiCamera.from_xml(data_dir / "mot" / "PETS09-S3-MF1" / "View_001.xml")
    model = CameraModel.from_config(tsai.to_geometry(frame, units_m=0.001, origin_en=(0.0, 0.0)), frame)
    img = np.zeros((576, 768, 3), np.uint8)
    tgt = Target("radar", "radar", "42", 0.0, 0.0, east=-8.0, north=-8.0, speed_mps=1.2, course_deg=45.0)
    behind = Target("radar", "radar", "43", 0.0, 0.0, east=-40.0, north=-30.0)  # behind the camera: not drawn
    draw_radar_on_frame(img, model, [tgt, behind], {}, [])
    (u, v), = model.world_to_pixel(np.array([[-8.0, -8.0, 0.0]]))[0]
    radar = np.all(img == RADAR, axis=2)
    x, y = int(round(u)), int(round(v))
    marker = radar[y - 9:y + 10, x - 9:x + 10]
    assert marker.sum() > 20 and not marker[7:12, 7:12].any()  # a hollow square centred on the target
    assert radar.sum() > marker.sum() + 200  # and its label: id, range, speed, heading
    assert not model.world_to_pixel(np.array([[-40.0, -30.0, 0.0]]))[1][0]


# -- the running node --------------------------------------------------------------------------

NODE = """
node: {{site: coast, id: post-7, lat: 45.815, lon: 15.9819, timezone: UTC}}
cameras:
  - id: cam1
    source: {video}
    detector: {{model: yolox-nano, classes: [person]}}
    geometry: {{height_m: 10, heading_deg: 0, pitch_deg: -20, hfov_deg: 60, image_size: [1280, 720]}}
radars:
  - {{id: arpa, format: nmea, transport: udp, host: 127.0.0.1, port: {radar_port}, position: [45.815, 15.9819],
      stale_s: 10}}
geo_zones:
  - {{id: south-shore, kind: maritime, points: [[45.8130, 15.9790], [45.8130, 15.9850], [45.8140, 15.9850], [45.8140, 15.9790]]}}
geo_rules:
  - {{id: guard-south, type: radar_only, zone: south-shore, dwell_s: 1}}
live_view: {{port: {http_port}, max_fps: 10, token: "{token}"}}
"""
TOKEN = "test-token-0123456789"


def ttm(target: int, range_nm: float, bearing: float) -> bytes:
    return (sentence(f"RATTM,{target:02d},{range_nm:.3f},{bearing:.1f},T,5.0,90.0,T,,,N,,T,,,A") + "\r\n").encode()


def get(url: str, token: str | None = TOKEN, timeout: float = 10):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    return urllib.request.urlopen(req, timeout=timeout)


def test_running_node_fuses_a_live_udp_radar_and_serves_live_pictures(videos: Path, tmp_path: Path):
    from edge.node import EdgeNode

    radar_port, http_port = free_port(), free_port()
    cfg = tmp_path / "post.yaml"
    cfg.write_text(NODE.format(video=videos / "vtest.avi", radar_port=radar_port, http_port=http_port, token=TOKEN))
    parse_config(cfg.read_text())
    alerts = []
    node = EdgeNode(cfg, sink=alerts.append, reload_interval_s=3600)
    stop = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop,), daemon=True)
    runner.start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a boat 0.08 NM south of the post, in the guard zone, and garbage
            sender.sendto(ttm(5, 0.08, 180.0) + b"$RATTM,garbage*00\r\n", ("127.0.0.1", radar_port))
            if any(a.alert.rule == "guard-south" for a in alerts) and node.workers["cam1"].frames > 5:
                break
            time.sleep(0.2)
        geo = [a for a in alerts if a.alert.rule == "guard-south"]
        assert len(geo) == 1, "one radar-only alert for one boat, however many reports"
        a = geo[0].alert
        assert a.sensors == ["radar"] and a.radar.target == "05" and a.radar.source == "arpa"
        assert abs(a.position.lat - 45.8138) < 0.0003 and abs(a.position.lon - 15.9819) < 0.0003
        assert geo[0].snapshot and cv2.imdecode(np.frombuffer(geo[0].snapshot, np.uint8), cv2.IMREAD_COLOR) is not None

        beat = node.heartbeat()
        [radar] = beat.radars
        assert radar.feed == "arpa" and radar.reports >= 1 and radar.rejected >= 1 and radar.live_targets == 1

        # The live view: no token, no picture; with it, the camera overlay, the plan view, an MJPEG stream.
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"{base}/cameras/cam1.jpg", token=None)
        assert e.value.code == 401
        with get(f"{base}/cameras/cam1.jpg") as r:
            assert r.headers["Content-Type"] == "image/jpeg"
            img = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (720, 1280, 3)
        with get(f"{base}/plan.jpg") as r:
            plan = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert plan.shape == (800, 800, 3)
        with get(f"{base}/cameras/cam1.mjpg") as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            body = b""
            while body.count(b"Content-Type: image/jpeg") < 3:
                body += r.read1(65536)
        parts = [p for p in body.split(b"--zastava-frame") if b"image/jpeg" in p]
        first = parts[0].split(b"\r\n\r\n", 1)[1]
        assert cv2.imdecode(np.frombuffer(first[:first.rfind(b"\xff\xd9") + 2], np.uint8), cv2.IMREAD_COLOR) is not None
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"{base}/cameras/nope.jpg")
        assert e.value.code == 404
        with get(f"{base}/?token={TOKEN}", token=None) as r:
            page = r.read().decode()
        assert "/cameras/cam1.mjpg" in page and "/plan.mjpg" in page
    finally:
        sender.close()
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_live_view_beyond_loopback_needs_a_token():
    base = "node: {site: a, id: b}\ncameras: [{id: c, source: x.mp4}]\n"
    with pytest.raises(Exception, match="reaches beyond this machine: set a token"):
        parse_config(base + "live_view: {bind: 0.0.0.0}\n")
    assert parse_config(base + "live_view: {}\n").live_view.bind == "127.0.0.1"


def test_the_real_arpa_log_fills_the_track_store_with_its_four_targets(data_dir: Path):
    from edge.radar.nmea import NmeaDecoder
    from edge.radar.store import SensorAccuracy, TrackStore

    frame = LocalFrame(58.2124, 11.5475)  # the boat's first GGA fix, Gullmarn fjord
    store = TrackStore(frame, {"arpa": SensorAccuracy(stale_s=3600.0)})
    dec = NmeaDecoder("arpa")
    for line in (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().splitlines():
        for rep in dec.feed(line, 0.0):
            store.add(rep)
    targets = {t.target: t for t in store.targets("radar")}
    assert sorted(targets) == ["01", "02", "03", "04"]
    assert sum(t.reports for t in targets.values()) == 2932  # 1,466 TTM + 1,466 TLL
    for t in targets.values():  # placed on the earth near the boat, in lat/lon and in the local frame
        assert t.has_position and abs(t.lat - 58.21) < 0.05 and abs(t.lon - 11.54) < 0.1
        assert math.hypot(t.east, t.north) < 3000
    last = max(t.updated for t in targets.values())
    q = store.quality(last)["arpa"]
    assert q["reports"] == 2932 and q["targets"] == 4
    assert store.expire(last + 3601) == 4 and store.targets() == []


def test_fusion_bench_command_builds_the_stated_scene(videos: Path):
    r = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--rounds", "2", "--frames", "20", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert 190 <= got["radar_targets"] <= 200 and 45 <= got["camera_tracks"] <= 50 and got["sentences_per_frame"] == 8
    assert got["links"] >= 30  # most people are confirmed by their radar target
    assert got["fused_ms"] > got["fusion_ms"] > 0 and got["camera_ms"] > 0
    assert got["added"] == pytest.approx(got["fused_ms"] / got["camera_ms"] - 1, abs=0.5)  # medians of per-round ratios
    assert got["added_low"] <= got["added"] <= got["added_high"]
    assert "round 2/2" in r.stderr and "added to the per-frame time" in r.stdout


def test_fusion_bench_parts_are_measured_as_variants_of_their_own(videos: Path):
    r = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--parts", "--rounds", "2", "--frames", "20", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert math.isfinite(got["added_ingest"]) and math.isfinite(got["added_step"])
    assert "ingest alone adds" in r.stdout and "ingest alone +" in r.stderr and "step alone +" in r.stderr
    plain = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--rounds", "2", "--frames", "10", "--json")
    assert json.loads(plain.stdout.splitlines()[-1])["added_ingest"] is None  # measured only when asked for
    one = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--rounds", "1")
    assert one.returncode != 0 and one.stderr.strip().count("\n") == 0 and "--rounds 2 or more" in one.stderr
    wrong = run_cli("bench", str(videos / "vtest.avi"), "--parts")
    assert wrong.returncode == 2 and wrong.stderr.strip().count("\n") == 0 and "--fusion" in wrong.stderr


def test_fusion_bench_through_a_nodes_live_udp_feed(videos: Path):
    """--feed udp: every sentence sent reaches the store through the feed's thread (8 a frame), the
    fusion links on what it took in, and the feed's threads and the sender are measured."""
    r = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--feed", "udp", "--rounds", "2", "--frames", "20",
                "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got["feed"] == "udp" and got["sentences_per_frame"] == 8 and 190 <= got["radar_targets"] <= 200
    assert got["links"] >= 30
    assert got["feed_ms"] > 0 and got["sender_ms"] > 0 and 0 < got["coalesce_s"] < 0.2
    assert math.isfinite(got["added_sender"]) and "sender alone +" in r.stderr  # the control, in the same rounds
    assert got["cpu_share"] > got["fusion_ms"] / got["camera_ms"]  # the feed's threads are in it
    assert "feed threads" in r.stderr and "a node's UDP feed thread" in r.stdout
    inline = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--rounds", "2", "--frames", "10", "--json")
    assert json.loads(inline.stdout.splitlines()[-1])["feed_ms"] is None
    assert json.loads(inline.stdout.splitlines()[-1])["added_sender"] is None
    wrong = run_cli("bench", str(videos / "vtest.avi"), "--fusion", "--feed", "tcp")
    assert wrong.returncode == 2 and "--feed" in wrong.stderr and wrong.stderr.strip().count("\n") == 0


def test_fusion_scene_parts_stop_where_they_say(videos: Path):
    """`upto` ingest: the store fills, the fusion never runs; step: the fusion links, the fused
    picture stays empty; all: the picture has the camera's view too."""
    from edge.fusion_bench import FusionScene
    from edge.sources import open_source
    from edge.track import Tracker

    first = next(iter(open_source(str(videos / "vtest.avi"))))
    names = ["person", "bicycle", "car"]
    scenes = {upto: FusionScene(first, names, frames=60) for upto in ("ingest", "step", "all")}
    for upto, scene in scenes.items():
        tracker = Tracker(scene.camera.tracker)
        for k in range(60):
            assert scene.radar_work(k, tracker.update(scene.detections[k], k * scene.dt_frame), upto) > 0
    for scene in scenes.values():  # every part ingests: 200 targets at 1 Hz, 8 sentences a frame
        assert len(scene.picture.store.targets()) == 200
    assert scenes["ingest"].fusion._last_t is None and not scenes["ingest"].counts["links"]
    assert scenes["step"].fusion._last_t == scenes["step"].t0 + 59 * scenes["step"].dt_frame

    def camera_objects(scene):
        return [o for o in scene.fused.objects(scene.t0 + 59 * scene.dt_frame) if o.camera_track is not None]

    assert camera_objects(scenes["step"]) == [] and len(camera_objects(scenes["all"])) >= 40
    assert sum(scenes["all"].counts["links"]) > 0
