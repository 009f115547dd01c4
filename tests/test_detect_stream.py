"""The detection stream on the real model and video: frame order, results equal to detecting
frame by frame, inference kept going while the consumer works, errors and early stops."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from edge.detect.stream import DetectionStream
from edge.sources import open_source


class CountingDetector:
    """The real detector, with a count of the inference runs started (what the test watches)."""

    def __init__(self, detector):
        self.inner = detector
        self.parallel_runs = 2
        self.started = 0
        self._lock = threading.Lock()

    def preprocess(self, images):
        return self.inner.preprocess(images)

    def infer(self, blob):
        with self._lock:
            self.started += 1
        return self.inner.infer(blob)

    def postprocess(self, out, boxes):
        return self.inner.postprocess(out, boxes)


def _frames(videos, n):
    return list(itertools.islice(iter(open_source(str(videos / "vtest.avi"))), n))


def test_results_come_in_frame_order_and_equal_frame_by_frame_detection(yolox, videos):
    frames = _frames(videos, 12)
    got = list(DetectionStream(yolox, iter(frames), runs=2))
    assert [f.index for f, _ in got] == [f.index for f in frames]
    for (_, det), frame in zip(got, frames):
        ref = yolox.detect(frame.image)
        assert len(det) == len(ref)
        np.testing.assert_allclose(det.xyxy, ref.xyxy, atol=1e-3)


def test_inference_goes_on_while_the_consumer_works_on_a_frame(yolox, videos):
    """A consumer busy with one frame (tracking, rules, fusion) does not leave a core idle: the
    next frames' runs are started meanwhile, up to `runs` at once and a bounded backlog."""
    counting = CountingDetector(yolox)
    stream = iter(DetectionStream(counting, iter(_frames(videos, 20)), runs=2, prefetch=1))
    next(stream)
    started_at_first = counting.started
    time.sleep(1.5)  # the consumer's long work on frame 0
    started = counting.started
    assert started >= started_at_first + 1 and started >= 3, (started_at_first, started)
    # Bounded: frame 0 consumed; 2 running or done plus 1 waiting in the backlog, the reader
    # holding one more it cannot hand over; never the whole video.
    assert started <= 1 + 2 + 1 + 1, started
    rest = list(stream)
    assert len(rest) == 19
    assert counting.started == 20


def test_a_failing_source_raises_in_the_consumer(yolox, videos):
    frames = _frames(videos, 3)

    def source():
        yield from frames
        raise OSError("camera gone")

    with pytest.raises(OSError, match="camera gone"):
        list(DetectionStream(yolox, source(), runs=2))


def test_stopping_early_stops_the_reader_and_the_runs(yolox, videos):
    before = {t.name for t in threading.enumerate()}
    stream = DetectionStream(yolox, iter(open_source(str(videos / "vtest.avi"))), runs=2)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = {t.name for t in threading.enumerate() if t.name.startswith("detect")} - before
        if not left:
            break
        time.sleep(0.05)
    assert not left, left
