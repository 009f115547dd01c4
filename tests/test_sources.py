"""Frame sources on real footage: timestamps, corrupt and truncated files, folders, live streams."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import damaged_copy, free_port
from edge.errors import SourceError
from edge.sources import (
    ImageFolderSource,
    ImageSource,
    LiveSource,
    ReconnectPolicy,
    SourceState,
    VideoFileSource,
    open_source,
)


def test_video_file_frames_carry_container_timestamps(videos: Path):
    src = open_source(videos / "vtest.avi")
    assert isinstance(src, VideoFileSource)
    frames = [(f.index, f.timestamp, f.image.shape) for f in src]
    # The container announces 682 frames at 50 fps but holds 341 at 25 fps (13.6 s either way).
    assert len(frames) == 341
    assert [i for i, _, _ in frames] == list(range(341))
    ts = np.array([t for _, t, _ in frames])
    assert (np.diff(ts) > 0).all()
    np.testing.assert_allclose(np.diff(ts), 0.04, atol=1e-6)
    assert frames[0][2] == (720, 1280, 3)
    assert src.state is SourceState.ENDED and src.incomplete is None and src.stats.corrupt_frames == 0


def test_corrupt_frames_mid_stream_are_skipped_and_counted(videos: Path, tmp_path: Path):
    # 20 kB of zeros in the middle of a real H.264 stream destroys a couple of frames.
    path = damaged_copy(videos / "car-detection.mp4", tmp_path / "damaged.mp4", zero_at=0.5)
    src = VideoFileSource(path)
    frames = list(src)
    assert src.stats.corrupt_frames >= 1
    assert len(frames) + src.stats.corrupt_frames >= 370  # of 377: the rest of the video still plays
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert frames[-1].timestamp > 29.0


def test_truncated_video_is_reported(videos: Path, tmp_path: Path):
    path = damaged_copy(videos / "car-detection.mp4", tmp_path / "cut.mp4", keep=0.5)
    src = VideoFileSource(path)
    n = sum(1 for _ in src)
    assert 100 < n < 377
    assert src.incomplete and "truncated or corrupt" in src.incomplete and "of 30.2 s announced" in src.incomplete


@pytest.mark.parametrize("content", [b"", b"hello world" * 100, b"\x00" * 5000])
def test_not_a_video_is_refused_at_open(tmp_path: Path, content: bytes):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="clip.mp4: not a video FFmpeg can open|no decodable video frame"):
        open_source(path)


def test_missing_source_is_refused():
    with pytest.raises(SourceError, match="no such file or directory"):
        open_source("/nonexistent/clip.mp4")


def test_image_and_corrupt_image(dog_jpg: Path, tmp_path: Path):
    frames = list(ImageSource(dog_jpg))
    assert len(frames) == 1 and frames[0].image.shape == (576, 768, 3) and frames[0].timestamp == 0.0
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(dog_jpg.read_bytes()[:300])
    with pytest.raises(SourceError, match="broken.jpg: not an image OpenCV can decode"):
        open_source(broken)


def test_image_folder_in_name_order_skipping_unreadable(data_dir: Path, tmp_path: Path):
    seq = data_dir / "mot" / "PETS09-S3-MF1" / "img1"
    for p in sorted(seq.glob("*.jpg"))[:5]:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "000003.jpg").write_bytes(b"not a jpeg")  # replaces a real frame
    (tmp_path / "notes.txt").write_text("ignored: not an image")
    src = ImageFolderSource(tmp_path, fps=7.0)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3, 4]
    assert [round(f.timestamp, 4) for f in frames] == [0.0, round(1 / 7, 4), round(3 / 7, 4), round(4 / 7, 4)]
    assert src.stats.corrupt_frames == 1


def test_empty_folder_is_refused(tmp_path: Path):
    with pytest.raises(SourceError, match="folder holds no images"):
        open_source(tmp_path)


class _Server:
    """A local HTTP server for one video file that can be stopped and started on its port."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port, self.httpd = folder, port, None

    def start(self) -> None:
        handler = functools.partial(_QuietHandler, directory=str(self.folder))
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def copyfile(self, source, outputfile) -> None:
        # Pace the stream like a camera (about 20 kB per 20 ms) so a cut lands mid-stream.
        try:
            while chunk := source.read(20_000):
                outputfile.write(chunk)
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_live_http_stream_reconnects_after_the_server_goes_away(videos: Path, tmp_path: Path):
    shutil.copy(videos / "highway_cctv.avi", tmp_path / "cam.avi")
    server = _Server(tmp_path, free_port())
    server.start()
    states: list[SourceState] = []
    src = LiveSource(
        f"http://127.0.0.1:{server.port}/cam.avi",
        policy=ReconnectPolicy(initial_delay=0.2, max_delay=0.5),
        on_state=lambda s, why: states.append(s),
        open_timeout_s=2.0,
    )
    seen: list = []
    consumer = threading.Thread(target=lambda: seen.extend(f.timestamp for f in src), daemon=True)
    consumer.start()
    try:
        assert _wait(lambda: len(seen) >= 10, 20), "no frames from the live stream"
        assert src.state is SourceState.CONNECTED
        server.stop()
        assert _wait(lambda: src.state is SourceState.RECONNECTING, 20), f"states: {states}"
        before = len(seen)
        time.sleep(1.0)  # several failed attempts while the server is down
        server.start()
        assert _wait(lambda: len(seen) > before + 10, 20), "frames did not resume after the server came back"
        assert src.stats.reconnects >= 1
        assert states[0] is SourceState.CONNECTED and SourceState.RECONNECTING in states
        assert all(b > a for a, b in zip(seen, seen[1:])), "capture timestamps go forward"
    finally:
        src.close()
        server.stop()
        consumer.join(5)
    assert src.state is SourceState.ENDED


def test_live_source_fails_after_its_attempts():
    src = LiveSource(
        f"http://127.0.0.1:{free_port()}/none.avi", policy=ReconnectPolicy(initial_delay=0.05, max_attempts=2), open_timeout_s=1.0
    )
    with pytest.raises(SourceError, match="gave up after 2 attempt"):
        list(src)
    assert src.state is SourceState.FAILED
    src.close()


def test_camera_urls_are_redacted_in_names():
    src = LiveSource("rtsp://admin:secret@127.0.0.1:1/stream", policy=ReconnectPolicy(max_attempts=0), open_timeout_s=0.5)
    try:
        assert "secret" not in src.name and src.name == "rtsp://***@127.0.0.1:1/stream"
    finally:
        src.close()
