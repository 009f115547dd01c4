"""The whole pipeline on real footage: replay alerts on vtest.avi, measured alert accuracy on
PETS09, and the evaluation's matching rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, run_cli
from edge.contract import Alert
from edge.evaluation.alerts import GtEvent, match_alerts
from edge.geometry import anchor_points, inside_polygon
from edge.pipeline import cap_fps
from edge.sources import Frame

PLAZA = [(560, 440), (880, 440), (880, 700), (560, 700)]
MIDLINE_Y, MIDLINE_X = 420, (300, 1000)


@pytest.fixture(scope="module")
def hall_replay(tmp_path_factory, data_dir: Path):
    out = tmp_path_factory.mktemp("hall")
    r = run_cli("replay", "-c", str(REPO / "configs" / "hall-vtest.yaml"), "--out", str(out / "hall.mp4"),
                "--snapshots", str(out / "snaps"), "--start-time", "2026-11-22T22:00:00+01:00",
                env={"ZASTAVA_DATA": str(data_dir)})
    assert r.returncode == 0, r.stderr
    return r, [json.loads(line) for line in r.stdout.splitlines()], out


@pytest.mark.slow
def test_replay_raises_the_hall_alerts(hall_replay):
    r, alerts, _ = hall_replay
    for a in alerts:
        Alert.model_validate(a)  # every line is a valid v1 alert
    by_rule = Counter(a["rule"] for a in alerts)
    # Counted by eye on the evidence snapshots of this recording (all events real):
    # 13 people cross the mid-hall line, 9 walk into the plaza and stay 1 s, 2 of the group loiter.
    assert 11 <= by_rule["midline-crossing"] <= 15
    directions = Counter(a["direction"] for a in alerts if a["rule"] == "midline-crossing")
    assert directions["in"] >= 5 and directions["out"] >= 5
    assert 7 <= by_rule["plaza-intrusion"] <= 11
    assert 1 <= by_rule["kiosk-loitering"] <= 3
    assert "341 frame(s)" in r.stderr and "alert(s): " in r.stderr
    # One alert per event: no object alerts twice on one rule (cooldowns outlast this 13.6 s clip).
    pairs = Counter((a["rule"], a["track_id"]) for a in alerts)
    assert max(pairs.values()) == 1
    ids = [a["id"] for a in alerts]
    assert len(set(ids)) == len(ids) and ids == sorted(ids), "ULIDs are unique and sort by event time"
    assert alerts[0]["time"].startswith("2026-11-22T21:00:0"), "wall time = --start-time + media time, in UTC"


@pytest.mark.slow
def test_every_alert_is_where_its_rule_says(hall_replay):
    _, alerts, _ = hall_replay
    for a in alerts:
        path = np.array([[p["x"], p["y"]] for p in a["path"]])
        anchor = anchor_points(np.array([a["bbox"]]))[0]
        assert np.allclose(path[-1], anchor, atol=0.1), "the path ends at the alert's box"
        if a["rule"] == "midline-crossing":
            assert MIDLINE_X[0] <= anchor[0] <= MIDLINE_X[1]
            below = path[:, 1] > MIDLINE_Y  # "in" is below the line
            assert below[-1] == (a["direction"] == "in"), "the object ends on the side it crossed to"
            assert (below[:-1] != below[-1]).any(), "and came from the other side"
        elif a["rule"] == "plaza-intrusion":
            # The dwell: every position in the last second before the alert is in the plaza.
            when = dt.datetime.fromisoformat(a["time"])
            recent = np.array([[p["x"], p["y"]] for p in a["path"]
                               if dt.datetime.fromisoformat(p["t"]) >= when - dt.timedelta(seconds=1.0)])
            assert len(recent) >= 10 and inside_polygon(recent, PLAZA).all()  # frames it was detected in
            assert a["first_seen"] <= a["started"] <= a["time"]


@pytest.mark.slow
def test_replay_writes_evidence_and_annotated_video(hall_replay):
    _, alerts, out = hall_replay
    for a in alerts:
        data = (out / "snaps" / f"{a['id']}.jpg").read_bytes()
        assert hashlib.sha256(data).hexdigest() == a["snapshot"]["sha256"] and len(data) == a["snapshot"]["bytes"]
        assert len(data) <= 400_000
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[1::-1] == (a["snapshot"]["width"], a["snapshot"]["height"])
    cap = cv2.VideoCapture(str(out / "hall.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 341


@pytest.mark.slow
def test_alert_accuracy_on_pets09(data_dir: Path):
    r = run_cli("eval", "alerts", str(data_dir / "mot" / "PETS09-S3-MF1"), "-c", str(REPO / "configs" / "pets09-intrusion.yaml"),
                "--fps", "7", "--json", env={"ZASTAVA_DATA": str(data_dir)})
    assert r.returncode == 0, r.stderr
    score = json.loads(r.stdout.strip().splitlines()[-1])
    assert score["events"] == 12, "7 people walk through the bend zone, 5 of them on through the road zone"
    assert score["precision"] >= 0.9 and score["recall"] >= 0.9


def test_matching_window_iou_and_one_to_one():
    gt = {10: {1: np.array([100, 100, 140, 200], np.float32)}, 30: {1: np.array([100, 100, 140, 200], np.float32)}}
    event = GtEvent("r", "z", time=2.0, frame=10, track_id=1)

    def alert(t, frame, box=(100, 100, 140, 200), rule="r", zone="z"):
        return {"rule": rule, "zone": zone, "line": None, "media_time": t, "frame": frame, "bbox": list(box)}

    assert match_alerts([alert(1.0, 10)], [event], gt).matched == 1  # 1 s early: in the window
    assert match_alerts([alert(4.0, 30)], [event], gt).matched == 1  # 2 s late: in the window
    assert match_alerts([alert(0.9, 10)], [event], gt).matched == 0
    assert match_alerts([alert(4.1, 30)], [event], gt).matched == 0
    assert match_alerts([alert(2.0, 10, rule="other")], [event], gt).matched == 0
    assert match_alerts([alert(2.0, 10, box=(130, 100, 170, 200))], [event], gt).matched == 0  # IoU 0.14
    two = match_alerts([alert(2.0, 10), alert(2.1, 10)], [event], gt)
    assert (two.matched, two.precision, two.recall) == (1, 0.5, 1.0)


def test_fps_cap_keeps_an_even_schedule():
    frames = [Frame(np.zeros((2, 2, 3), np.uint8), i, i * 0.04, "x") for i in range(50)]  # 25 fps, 2 s
    kept = [f.timestamp for f in cap_fps(frames, 7.0)]
    assert len(kept) == 14  # 7 per second over 1.96 s, on a schedule of 1/7 s
    assert np.allclose(np.diff(kept), 1 / 7, atol=0.04)


@pytest.mark.slow
def test_tracker_and_rules_cost_benchmark(videos: Path, data_dir: Path):
    r = run_cli("bench", str(videos / "vtest.avi"), "-c", str(REPO / "configs" / "hall-vtest.yaml"),
                "--frames", "30", "--rounds", "3", "--json", env={"ZASTAVA_DATA": str(data_dir)})
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["objects_mean"] >= 45, "the scene holds about 50 tracked objects"
    assert result["detection_ms"] > 0 and result["track_rules_ms"] > 0
    assert "tracker + rules" in r.stdout and r.stderr.count("round ") == 3
