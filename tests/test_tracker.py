"""The tracker on hand-made detections: ids, occlusions, classes, timing, the Kalman bank."""

from __future__ import annotations


import numpy as np
import pytest
from pydantic import ValidationError

from edge.detect import Detections
from edge.track import Track, Tracker, TrackerConfig
from edge.track.association import assign, box_iou
from edge.track.kalman import KalmanBank, KalmanNoise, xyxy_to_xywh

NAMES = ("person", "bicycle", "car")
PERSON, CAR = 0, 2


def dets(boxes, scores=None, classes=None) -> Detections:
    xyxy = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(xyxy)
    s = np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    c = np.zeros(n, np.int64) if classes is None else np.asarray(classes, np.int64)
    return Detections(xyxy, s, c, NAMES)


def person_at(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [x, y, x + w, y + h]


def test_a_moving_box_keeps_one_id_and_its_velocity_is_in_pixels_per_second():
    tracker = Tracker(TrackerConfig(min_hits=2))
    fps, speed = 25.0, 150.0  # px/s
    reported = []
    for i in range(50):
        t = i / fps
        reported.append(tracker.update(dets([person_at(20 + speed * t)]), t))
    assert reported[0] == [], "tentative until min_hits matches"
    assert all(len(r) == 1 for r in reported[1:])
    assert {r[0].id for r in reported[1:]} == {1}
    track = reported[-1][0]
    assert isinstance(track, Track) and track.is_confirmed and track.class_name == "person"
    assert track.velocity[0] == pytest.approx(speed, rel=0.03) and abs(track.velocity[1]) < 3
    assert track.first_seen == 0.0 and track.last_seen == pytest.approx(49 / fps)
    np.testing.assert_allclose(track.box, person_at(20 + speed * 49 / fps), atol=1e-3)


@pytest.mark.parametrize("fps", [5.0, 25.0])
def test_velocity_estimate_does_not_depend_on_the_frame_rate(fps: float):
    tracker = Tracker()
    for i in range(int(2 * fps) + 1):
        t = i / fps
        (track,) = tracker.update(dets([person_at(20 + 80 * t, 50 + 40 * t)]), t) or [None]
    assert track is not None
    np.testing.assert_allclose(track.velocity, [80, 40], rtol=0.05)


def test_two_crossing_people_keep_their_ids():
    tracker = Tracker()
    fps = 10.0
    ids_of = {100: set(), 110: set()}  # each person's ids, by the top of their box
    for i in range(41):
        t = i / fps
        # One walks right, one left; at t = 2 s they overlap almost completely (IoU 0.82).
        a = person_at(100 + 100 * t, 100)
        b = person_at(500 - 100 * t, 110)
        for track in tracker.update(dets([b, a] if i % 2 else [a, b]), t):
            ids_of[round(float(track.box[1]))].add(track.id)
            assert np.sign(track.velocity[0]) == (1 if track.box[1] == 100 else -1)
    assert len(ids_of[100]) == 1 and len(ids_of[110]) == 1 and ids_of[100] != ids_of[110]


def test_detections_only_match_tracks_of_their_own_class():
    tracker = Tracker(TrackerConfig(min_hits=1))
    box = person_at(100)
    first = tracker.update(dets([box, box], classes=[PERSON, CAR]), 0.0)
    assert sorted((t.class_name, t.id) for t in first) == [("car", 2), ("person", 1)]
    for i in range(1, 5):
        out = tracker.update(dets([box, box], classes=[CAR, PERSON]), i * 0.1)
        assert {(t.class_name, t.id) for t in out} == {("person", 1), ("car", 2)}
    # The person leaves; a car pulls up where the person stood: it must not inherit the person's id.
    tracker.update(dets([box], classes=[CAR]), 0.5)
    out = tracker.update(dets([box, box], classes=[CAR, CAR]), 0.6)
    cars = sorted(t.id for t in out)
    assert cars[0] == 2 and 1 not in cars
    assert any(t.id == 1 and t.is_lost for t in tracker.tracks)


def ids_around_a_gap(fps: float, gap: float, lost_seconds: float) -> tuple[set[int], set[int], Tracker]:
    """A person walks for 2 s, is unseen for `gap` seconds (last sighting to next), walks 1 s."""
    tracker = Tracker(TrackerConfig(lost_seconds=lost_seconds))
    n_seen, n_hidden = int(round(2.0 * fps)), int(round(gap * fps)) - 1
    before, after = set(), set()
    for i in range(n_seen + n_hidden + int(fps)):
        t = i / fps
        hidden = n_seen <= i < n_seen + n_hidden
        out = tracker.update(dets([] if hidden else [person_at(20 + 60 * t)]), t)
        (before if i < n_seen else after).update(tr.id for tr in out)
        assert not (hidden and out)
    return before, after, tracker


@pytest.mark.parametrize("fps", [5.0, 25.0])
@pytest.mark.parametrize("gap,survives", [(0.8, True), (1.2, False)])
def test_lost_buffer_is_measured_in_seconds(fps: float, gap: float, survives: bool):
    before, after, tracker = ids_around_a_gap(fps, gap, lost_seconds=1.0)
    assert len(before) == 1
    if survives:
        assert after == before, f"an occlusion of {gap} s at {fps} fps must keep the id"
    else:
        assert len(after) == 1 and after.isdisjoint(before), f"{gap} s is past lost_seconds"
        assert all(t.id not in before for t in tracker.tracks)
        # The motion model would have bridged it: only the time budget ended the track.
        before, after, _ = ids_around_a_gap(fps, gap, lost_seconds=1.5)
        assert after == before


def test_a_low_score_frame_keeps_a_track_alive_through_the_second_stage():
    cfg = TrackerConfig(high_score=0.5, low_score=0.1)
    scores = [0.9] * 5 + [0.3] + [0.9] * 3
    tracker = Tracker(cfg)
    seen = []
    for i, s in enumerate(scores):
        seen.append([(t.id, t.score, t.best_score) for t in tracker.update(dets([person_at(20 + 5 * i)], [s]), i / 10)])
    assert [len(o) for o in seen] == [0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert {o[0][0] for o in seen[1:]} == {1}
    assert seen[5][0][1:] == pytest.approx((0.3, 0.9))
    # Without the second stage, the same low-score frame drops the track from the output.
    plain = Tracker(cfg.model_copy(update={"low_score": 0.5}))
    for i, s in enumerate(scores[:6]):
        out = plain.update(dets([person_at(20 + 5 * i)], [s]), i / 10)
    assert out == [] and plain.tracks[0].is_lost
    # A low-score detection alone never starts a track.
    assert Tracker(cfg).update(dets([person_at(0)], [0.3]), 0.0) == [] and not Tracker(cfg).tracks


def test_history_is_bounded_and_holds_time_box_score():
    tracker = Tracker(TrackerConfig(history=5, min_hits=1))
    for i in range(20):
        (track,) = tracker.update(dets([person_at(10 + i)], [0.6 + i / 100]), i * 0.2)
    assert len(track.history) == 5 and track.history.maxlen == 5
    t, box, score = track.history[-1]
    assert t == pytest.approx(3.8) and box == pytest.approx(tuple(person_at(29))) and score == pytest.approx(0.79)
    assert [h[0] for h in track.history] == pytest.approx([3.0, 3.2, 3.4, 3.6, 3.8])


def test_ids_are_unique_across_classes_and_start_at_one():
    tracker = Tracker(TrackerConfig(min_hits=1))
    out = tracker.update(dets([person_at(0), person_at(200), person_at(400)], classes=[PERSON, CAR, 1]), 0.0)
    assert sorted(t.id for t in out) == [1, 2, 3]
    assert tracker.update(dets([]), 0.1) == []
    assert all(t.is_lost for t in tracker.tracks)


def test_config_is_validated():
    with pytest.raises(ValidationError):
        TrackerConfig(lost_frames=30)  # extra fields are refused
    with pytest.raises(ValidationError):
        TrackerConfig(low_score=0.7, high_score=0.5)
    for name, field in TrackerConfig.model_fields.items():
        assert field.description, f"{name} has no description"


def test_iou_and_assignment():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
    # Greedy would pair row 0 with column 0 and leave row 1 without a partner above the floor.
    rows, cols = assign(np.array([[0.9, 0.6], [0.5, 0.0]]), min_iou=0.3)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def _dense_reference(noise: KalmanNoise, boxes: list[np.ndarray], dts: list[float]):
    """A textbook 8x8 Kalman filter with the bank's noise model, one box at a time."""
    m = noise.measurement
    z0 = xyxy_to_xywh(boxes[0][None])[0]

    def scale(mean):
        w, h = max(mean[2], 1.0), max(mean[3], 1.0)
        return np.array([w, h, w, h]) ** 2

    mean = np.concatenate([z0, np.zeros(4)])
    s2 = scale(mean)
    cov = np.diag(np.concatenate([(2 * m) ** 2 * s2, noise.initial_velocity**2 * s2]))
    h_mat = np.hstack([np.eye(4), np.zeros((4, 4))])
    for box, dt in zip(boxes[1:], dts):
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        mean = f @ mean
        s2 = scale(mean)
        qp, qv = noise.position**2, noise.velocity**2
        q = np.zeros((8, 8))
        q[:4, :4] = np.diag((qp * dt + qv * dt**3 / 3) * s2)
        q[:4, 4:] = q[4:, :4] = np.diag(qv * dt**2 / 2 * s2)
        q[4:, 4:] = np.diag(qv * dt * s2)
        cov = f @ cov @ f.T + q
        r = np.diag(m**2 * scale(mean))
        s = h_mat @ cov @ h_mat.T + r
        k = cov @ h_mat.T @ np.linalg.inv(s)
        mean = mean + k @ (xyxy_to_xywh(box[None])[0] - h_mat @ mean)
        cov = (np.eye(8) - k @ h_mat) @ cov
    return mean, cov


def test_kalman_bank_equals_a_dense_8x8_filter():
    rng = np.random.default_rng(7)
    noise = KalmanNoise(measurement=0.05, position=0.2, velocity=1.5, initial_velocity=2.0)
    n, steps = 6, 12
    start = rng.uniform(0, 500, (n, 2))
    size = rng.uniform(20, 120, (n, 2))
    vel = rng.uniform(-100, 100, (n, 2))
    dts = rng.uniform(0.02, 0.3, steps).tolist()
    times = np.concatenate([[0.0], np.cumsum(dts)])
    tracks = [
        [np.concatenate([start[i] + vel[i] * t, start[i] + vel[i] * t + size[i]]) + rng.normal(0, 2, 4) for t in times]
        for i in range(n)
    ]
    bank = KalmanBank(noise)
    bank.add(xyxy_to_xywh(np.array([tr[0] for tr in tracks])))
    for k, dt in enumerate(dts, 1):
        bank.predict(dt)
        bank.update(np.arange(n), xyxy_to_xywh(np.array([tr[k] for tr in tracks])))
    for i in range(n):
        mean, cov = _dense_reference(noise, tracks[i], dts)
        np.testing.assert_allclose(bank.mean[i], mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(bank.covariance()[i], cov, rtol=1e-9, atol=1e-9)


def test_fifty_crossing_tracks_keep_their_ids():
    """Fifty objects in view at once (the load the tracker + rules benchmark times with
    `zastava-edge bench -c`): every one keeps the id it was given for the whole run."""
    rng = np.random.default_rng(0)
    n, fps = 50, 25.0
    # a 10 x 5 grid of walkers 180 px apart, moving together with a little spread of their own
    pos = np.stack(np.meshgrid(np.arange(10) * 180.0 + 100, np.arange(5) * 180.0 + 100), -1).reshape(-1, 2)
    vel = np.array([40.0, 10.0]) + rng.uniform(-5, 5, (n, 2))
    size = rng.uniform(30, 90, (n, 1)) * np.array([[0.5, 1.0]])
    tracker = Tracker()
    first: dict[int, int] = {}  # detection index -> the id its track got once confirmed
    for i in range(150):
        c = pos + vel * (i / fps) + rng.normal(0, 1.0, (n, 2))
        out = tracker.update(dets(np.concatenate([c - size / 2, c + size / 2], 1), rng.uniform(0.3, 0.95, n), np.arange(n) % 3), i / fps)
        if i < 20:
            continue
        assert len(out) == n
        for tr in out:
            k = int(np.argmin(np.abs(np.asarray(tr.box)[:2] - (c - size / 2)).sum(1)))
            assert first.setdefault(k, tr.id) == tr.id, f"object {k} changed id at frame {i}"
    assert len(set(first.values())) == n
