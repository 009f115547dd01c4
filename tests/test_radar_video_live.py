"""A running node with a live CAT240 radar video feed: generated radials (the log's real targets,
stamped with today's time) sent over UDP at the radar's own pace; the node processes each sweep on
the feed's worker thread, tracks the targets, raises the geo rule's radar alert, and its live view
serves the annotated radar picture as /radar/{feed}.jpg and .mjpg."""

from __future__ import annotations

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

from conftest import free_port
from edge.evaluation.radar_video import Scenario, Simulation
from edge.geo import LocalFrame

pytestmark = pytest.mark.slow

TOKEN = "radar-video-token-0123456789"
# a faster antenna than the scenarios' (1 s a turn) so that tracks confirm within seconds
ROTATION_S, PREROLL_S, DURATION_S = 1.0, 4.0, 40.0
START_S = 30.0  # seconds into the log: its targets 01 and 02 are both on

NODE = """
node: {{site: coast, id: radar-post, lat: {lat}, lon: {lon}, timezone: UTC}}
cameras:
  - id: cam   # offline (nothing listens there): the node runs until stopped, the radar its only sensor
    source: rtsp://127.0.0.1:{camera_port}/offline
    detector: {{model: yolox-nano, classes: [person]}}
radars:
  - {{id: video, format: cat240, transport: udp, host: 127.0.0.1, port: {port}, position: [{lat}, {lon}],
      range_sigma_m: 4.3, bearing_sigma_deg: 0.2, stale_s: 5, video: {{azimuths: 1024, max_range_cells: 256}}}}
geo_zones:
  - {{id: lane, kind: maritime, points: [{zone}]}}
geo_rules:
  - {{id: lane-guard, type: radar_only, zone: lane, dwell_s: 2}}
live_view: {{port: {http_port}, max_fps: 5, token: "{token}"}}
"""


def get(url: str, token: str | None = TOKEN, timeout: float = 10):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    return urllib.request.urlopen(req, timeout=timeout)


def send_at_pace(sim: Simulation, port: int, stop: threading.Event, sent: list) -> None:
    """Every CAT240 block at its own time on the wall clock (the scenario is stamped from now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for block, t in sim.blocks():
            if stop.is_set():
                return
            wait = t - time.time()
            if wait > 0.002:
                stop.wait(wait)
            sock.sendto(block, ("127.0.0.1", port))
            sent[0] += 1


def test_a_running_node_tracks_live_cat240_video_and_serves_its_picture(data_dir: Path, tmp_path: Path):
    from edge.node import EdgeNode

    start = math.ceil(time.time()) + 3.0  # the node is up by then
    sim = Simulation(Scenario(rotation_s=ROTATION_S, start_s=START_S, preroll_s=PREROLL_S, duration_s=DURATION_S,
                              start_at=start),
                     data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt")
    sc = sim.scenario
    frame = LocalFrame(*sc.radar)
    t02 = next(t for t in sim.tracks if t["target"] == "02")  # 02 makes 6 m/s: a zone around its first 30 s
    leg = (t02["t"] > start + PREROLL_S) & (t02["t"] < start + PREROLL_S + 30)
    lo = np.array([t02["east"][leg].min(), t02["north"][leg].min()]) - 60
    hi = np.array([t02["east"][leg].max(), t02["north"][leg].max()]) + 60
    corners = [frame.to_geo(e, n) for e, n in ((lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1]))]
    port, http_port = free_port(), free_port()
    cfg = tmp_path / "post.yaml"
    cfg.write_text(NODE.format(lat=sc.radar[0], lon=sc.radar[1], camera_port=free_port(), port=port,
                               http_port=http_port, token=TOKEN,
                               zone=", ".join(f"[{lat:.6f}, {lon:.6f}]" for lat, lon in corners)))
    alerts = []
    node = EdgeNode(cfg, sink=alerts.append, reload_interval_s=3600)
    decoder = node.picture.decoders["video"]
    workers: set[str] = set()
    decoder.on_sweep = lambda sweep, plots: workers.add(threading.current_thread().name)
    stop, done = threading.Event(), threading.Event()
    runner = threading.Thread(target=node.run, args=(stop,), daemon=True)
    sent = [0]
    sender = threading.Thread(target=send_at_pace, args=(sim, port, done, sent), daemon=True)
    runner.start()
    sender.start()
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 3.0 + PREROLL_S + DURATION_S
        while time.monotonic() < deadline and not any(a.alert.rule == "lane-guard" for a in alerts):
            time.sleep(0.2)
        guard = [a.alert for a in alerts if a.alert.rule == "lane-guard"]
        assert len(guard) == 1, (sent, decoder.stats.messages, decoder.assembler.sweeps, decoder.assembler.lost_messages,
                                 decoder.sweeps, decoder.plots, decoder.stats.errors, [a.alert.rule for a in alerts])
        a = guard[0]
        assert a.sensors == ["radar"] and a.radar.source == "video"
        at = a.time.timestamp()
        e, n = frame.to_local(a.position.lat, a.position.lon)
        te, tn = np.interp(at, t02["t"], t02["east"]), np.interp(at, t02["t"], t02["north"])
        assert math.hypot(e - te, n - tn) < 30.0  # the alert is where target 02 was

        # sweeps were processed on the feed's worker thread, beside the socket's reader
        assert workers == {"radar-video:video"} and decoder.sweeps >= PREROLL_S / ROTATION_S
        assert decoder.stats.errors == {}
        live = [t for t in node.picture.store.targets("radar") if t.source == "video"]
        assert live and all(t.has_position and t.speed_mps is not None for t in live)
        [radar] = node.heartbeat().radars
        assert radar.feed == "video" and radar.reports >= 1 and radar.live_targets >= 1

        # the live view: the radar picture as a JPEG and as an MJPEG stream, behind the token
        with pytest.raises(urllib.error.HTTPError) as err:
            get(f"{base}/radar/video.jpg", token=None)
        assert err.value.code == 401
        with get(f"{base}/radar/video.jpg") as r:
            assert r.headers["Content-Type"] == "image/jpeg"
            img = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (800, 800, 3)
        green = (img[:, :, 1] > 180) & (img[:, :, 0] < 120) & (img[:, :, 2] < 120)
        assert green.sum() > 30  # a confirmed track drawn: its square, id, speed and vector
        with get(f"{base}/radar/video.mjpg") as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            body = b""
            while body.count(b"Content-Type: image/jpeg") < 3:
                body += r.read1(65536)
        part = [p for p in body.split(b"--zastava-frame") if b"image/jpeg" in p][1].split(b"\r\n\r\n", 1)[1]
        frame_img = cv2.imdecode(np.frombuffer(part[:part.rfind(b"\xff\xd9") + 2], np.uint8), cv2.IMREAD_COLOR)
        assert frame_img is not None and frame_img.shape == (800, 800, 3)
        with pytest.raises(urllib.error.HTTPError) as err:
            get(f"{base}/radar/nope.jpg")
        assert err.value.code == 404
        with get(f"{base}/?token={TOKEN}", token=None) as r:
            assert "/radar/video.mjpg" in r.read().decode()
    finally:
        done.set()
        stop.set()
        sender.join(timeout=10)
        runner.join(timeout=30)
    assert not runner.is_alive()
