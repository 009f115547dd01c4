"""A captured radar display end to end: the generated radar's sweeps painted as a radar screen
(PPI in a circle, a bezel, range rings, a heading marker, a text panel) into a video file, north-up
and heading-up; the display feed reads it (region, centre, range scale, orientation), CFAR and the
clutter map find the blips, the tracker tracks them, the store holds them where the targets were.

How the screen is painted (the test's assumptions): one picture per antenna rotation, showing the
rotation just completed, captured at 2 frames/s (each picture five times), MJPG; the echo green
on black, brightness as edge.radar.ppi renders it (dB over the noise floor, 0..30 dB), with a 3x3
echo stretch as radar displays do so that a one-cell blip stays visible; heading-up rotates the
picture so the heading is at the top. A display loses the antenna's timing, so a plot is stamped
with the frame's time: a moving target lags by up to one rotation of its motion.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import parse_config
from edge.evaluation.radar_video import Scenario, Simulation
from edge.radar.picture import RadarPicture
from edge.radar.ppi import PpiRenderer
from edge.radar.sweep import Sweep

pytestmark = pytest.mark.slow

W, H, CX, CY, R = 960, 720, 400, 360, 330  # the screen, the radar picture's centre and radius (px)
FPS, REPEAT = 2.0, 5  # capture rate; each rotation's picture is on screen for REPEAT frames
HEADING = 72.0  # heading-up: the ship's heading at the top of the screen


@pytest.fixture(scope="module")
def scenario(data_dir: Path) -> dict:
    """The radar's sweeps (the log's targets 01 and 02, the coast, buildings) rendered as PPIs."""
    sim = Simulation(Scenario(duration_s=100, preroll_s=10), data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt")
    sc = sim.scenario
    renderer = PpiRenderer(2 * R)
    ppis = []
    for k, ts, counts in sim.sweeps():
        n_az = counts.shape[0]
        sweep = Sweep(k, counts, ts + (np.arange(n_az) + 0.5) / n_az * sc.rotation_s, np.ones(n_az, bool), sc.cell_m)
        ppis.append(cv2.dilate(renderer.render(sweep), np.ones((3, 3), np.uint8)))  # the echo stretch
    return {"sim": sim, "truth": sim.truth(), "ppis": ppis, "range_m": sc.range_cells * sc.cell_m}


def paint_screen(ppi: np.ndarray, heading: float, label: str) -> np.ndarray:
    """One screen: the radar picture in its circle (rotated for heading-up) amid a display's furniture."""
    if heading:
        ppi = cv2.warpAffine(ppi, cv2.getRotationMatrix2D((R, R), heading, 1.0), (2 * R, 2 * R))
    screen = np.full((H, W, 3), (48, 40, 36), np.uint8)
    cv2.rectangle(screen, (CX + R + 30, 20), (W - 20, H - 20), (70, 60, 50), -1)
    cv2.putText(screen, label, (CX + R + 45, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (200, 200, 200), 1)
    echo = np.zeros((2 * R, 2 * R, 3), np.uint8)
    echo[:, :, 1] = ppi
    echo[:, :, 2] = (ppi.astype(np.uint16) * 3 // 5).astype(np.uint8)
    disk = np.zeros((2 * R, 2 * R), np.uint8)
    cv2.circle(disk, (R, R), R, 255, -1)
    roi = screen[CY - R:CY + R, CX - R:CX + R]
    roi[disk > 0] = echo[disk > 0]
    for ring in (1, 2, 3):
        cv2.circle(screen, (CX, CY), R * ring // 4, (90, 70, 40), 1, cv2.LINE_AA)
    cv2.circle(screen, (CX, CY), R, (160, 160, 160), 2, cv2.LINE_AA)  # the bezel
    cv2.line(screen, (CX, CY), (CX, CY - R), (120, 120, 120), 1)  # the heading marker
    return screen


def node_config(sc, video: Path, orientation: str, heading: float, range_m: float):
    start = dt.datetime.fromtimestamp(sc.t0 + sc.rotation_s, dt.timezone.utc).isoformat()  # sweep 0, complete
    return parse_config(f"""
node: {{site: coast, id: radar-post, lat: {sc.radar[0]}, lon: {sc.radar[1]}, timezone: UTC}}
cameras: [{{id: cam, source: unused.mp4}}]
radars:
  - id: screen
    format: display
    transport: frames
    source: {video}
    position: [{sc.radar[0]}, {sc.radar[1]}]
    range_sigma_m: 8
    bearing_sigma_deg: 0.5
    stale_s: 15
    display: {{region: [{CX - R}, {CY - R}, {2 * R}, {2 * R}], centre_px: [{CX}, {CY}], radius_px: {R},
              range_m: {range_m}, orientation: {orientation}, heading_deg: {heading}, channel: green, scan_s: 2.5,
              start_time: "{start}", azimuths: 1024, range_cells: 320}}
    video: {{cfar: {{pfa: 0.05, min_amplitude: 100}}}}
""")


@pytest.mark.parametrize("orientation", ["north-up", "heading-up"])
def test_a_captured_display_is_tracked_where_the_targets_are(scenario, orientation, tmp_path: Path):
    sim, truth = scenario["sim"], scenario["truth"]
    sc = sim.scenario
    heading = HEADING if orientation == "heading-up" else 0.0
    video = tmp_path / f"{orientation}.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for ppi in scenario["ppis"]:
        screen = paint_screen(ppi, heading, f"{orientation.upper()} HDG {heading:05.1f}")
        for _ in range(REPEAT):
            writer.write(screen)
    writer.release()

    picture = RadarPicture(node_config(sc, video, orientation, heading, scenario["range_m"]))
    reports = picture.load_recordings()
    dec = picture.decoders["screen"]
    assert dec.sweeps == len(scenario["ppis"])  # one sweep per rotation, the repeated frames left out
    assert dec.ignored["frame between scans"] == (REPEAT - 1) * len(scenario["ppis"])
    assert reports > 30

    # every confirmed track follows one of the truth targets, close to where it was
    tracks = {t["target"]: np.array(t["positions"]) for t in truth["tracks"]}
    assert sorted(tracks) == ["01", "02"]
    errors: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for rep in picture._replay:
        e, n = dec.frame.to_local(rep.lat, rep.lon)
        for target, p in tracks.items():
            if p[0, 0] - sc.rotation_s <= rep.time <= p[-1, 0] + sc.rotation_s:
                te, tn = np.interp(rep.time, p[:, 0], p[:, 1]), np.interp(rep.time, p[:, 0], p[:, 2])
                errors[rep.target][target].append(math.hypot(e - te, n - tn))
    followed = {}
    for track_id, by_target in errors.items():
        target = min(by_target, key=lambda k: np.median(by_target[k]))
        followed.setdefault(target, []).extend(by_target[target])
        assert np.median(by_target[target]) < 30.0, (track_id, target, np.median(by_target[target]))
    assert sorted(followed) == ["01", "02"]  # both targets, and no track on anything else
    # 01 barely moves: within a screen pixel or two (11.6 m) and a range cell; 02 makes 6 m/s, and a display
    # dates its picture by the frame, so 02's track lags by up to a rotation of its motion (15 m)
    assert np.median(followed["01"]) < 15.0 and np.median(followed["02"]) < 25.0
    assert len(followed["01"]) > 20 and len(followed["02"]) > 15

    # the store holds them as radar targets with the fields of any radar track
    last = max(r.time for r in picture._replay)
    picture.advance_to(last)
    live = {t.target: t for t in picture.store.targets("radar")}
    assert 1 <= len(live) <= 2
    p02 = tracks["02"]
    v = np.diff(p02[-6:, 1:], axis=0).sum(0) / (p02[-1, 0] - p02[-6, 0])  # 02's velocity, the last 5 scans
    for t in live.values():
        assert t.source == "screen" and t.has_position and t.speed_mps is not None and t.course_deg is not None
        if np.median(errors[t.target]["02"]) < 30.0:
            assert abs(t.speed_mps - math.hypot(*v)) < 2.0
            course = math.degrees(math.atan2(v[0], v[1])) % 360
            assert abs((t.course_deg - course + 180) % 360 - 180) < 20.0
