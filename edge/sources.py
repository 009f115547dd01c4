"""Frame sources: video files, images, image folders, RTSP/HTTP streams and USB cameras.

Every frame carries the source's capture timestamp and a frame index. File sources end
cleanly; live sources reconnect with capped exponential backoff and report their state.
A corrupt frame in the middle of a stream is skipped and counted, never raised.

    >>> src = open_source("vtest.avi")            # doctest: +SKIP
    >>> for frame in src:                          # doctest: +SKIP
    ...     print(frame.index, frame.timestamp, frame.image.shape)
"""

from __future__ import annotations

import enum
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.clock import SYSTEM_CLOCK, Clock
from edge.errors import SourceError

# FFmpeg prints every damaged macroblock to stderr; we count corrupt frames ourselves instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2  # noqa: E402  (after the log-level environment above)

# cv2 may have been imported before this module: set its own log level through its API too.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
# A file read that fails this many times in a row is at its end (or unrecoverably damaged);
# fewer failures followed by a good frame are corrupt frames, skipped and counted.
MAX_CONSECUTIVE_READ_FAILURES = 30
# A live stream's read blocks up to its read timeout, so a few failures already mean it is gone.
MAX_LIVE_READ_FAILURES = 3


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture: BGR uint8 HxWx3, its index in the source and its capture time."""

    image: np.ndarray
    index: int
    timestamp: float
    source: str

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class SourceState(str, enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


@dataclass
class SourceStats:
    frames: int = 0
    corrupt_frames: int = 0
    dropped_frames: int = 0  # live frames superseded before the consumer took them
    reconnects: int = 0


@dataclass(frozen=True)
class ReconnectPolicy:
    """Capped exponential backoff for live sources. max_attempts=None retries for ever."""

    initial_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    max_attempts: int | None = None

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.initial_delay * self.factor ** max(0, attempt - 1))


class FrameSource:
    """Base class: iterate for frames; `state`, `stats` and `incomplete` describe the source."""

    is_live = False

    def __init__(self, name: str):
        self.name = name
        self.state = SourceState.CONNECTING
        self.stats = SourceStats()
        # Set when a file ended before the end its container announced (truncated or corrupt).
        self.incomplete: str | None = None
        self.fps: float | None = None
        self.frame_count: int | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _valid_image(img: np.ndarray | None) -> bool:
    return img is not None and img.ndim == 3 and img.shape[0] > 0 and img.shape[1] > 0 and img.shape[2] == 3


def _as_bgr(img: np.ndarray | None) -> np.ndarray | None:
    """Grey and BGRA pictures become BGR; anything else undecodable becomes None."""
    if img is None or img.size == 0:
        return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img if _valid_image(img) else None


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to BGR, or raise SourceError saying why not."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: no such file")
    if not p.is_file():
        raise SourceError(f"{p}: not a file")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:
        raise SourceError(f"{p}: cannot read: {e.strerror or e}") from None
    img = _as_bgr(cv2.imdecode(data, cv2.IMREAD_COLOR)) if data.size else None
    if img is None:
        raise SourceError(f"{p}: not an image OpenCV can decode (corrupt, empty or another format)")
    return img


class ImageSource(FrameSource):
    """A single image file: one frame at timestamp 0."""

    def __init__(self, path: str | Path):
        super().__init__(str(path))
        self._image = read_image(path)
        self.frame_count = 1
        self.state = SourceState.CONNECTED

    def __iter__(self) -> Iterator[Frame]:
        self.stats.frames = 1
        yield Frame(self._image, 0, 0.0, self.name)
        self.state = SourceState.ENDED


class ImageFolderSource(FrameSource):
    """Images of a folder in name order, stamped index / fps (a MOT seqinfo.ini gives the fps).

    Unreadable images are skipped and counted; their index is kept so indices match file order.
    """

    def __init__(self, path: str | Path, fps: float | None = None):
        super().__init__(str(path))
        folder = Path(path)
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self.files:
            raise SourceError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        self.fps = fps or _seqinfo_fps(folder) or 25.0
        self.frame_count = len(self.files)
        self.state = SourceState.CONNECTED

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.files):
            try:
                img = read_image(f)
            except SourceError as e:
                self.stats.corrupt_frames += 1
                log.warning("skipping frame %d: %s", i, e)
                continue
            self.stats.frames += 1
            yield Frame(img, i, i / self.fps, self.name)
        self.state = SourceState.ENDED


def _seqinfo_fps(folder: Path) -> float | None:
    """MOTChallenge sequences keep their frame rate in ../seqinfo.ini next to img1/."""
    ini = folder.parent / "seqinfo.ini"
    if not ini.is_file():
        return None
    m = re.search(r"^\s*frameRate\s*=\s*([0-9.]+)", ini.read_text(errors="replace"), re.M)
    return float(m.group(1)) if m else None


class VideoFileSource(FrameSource):
    """A video file decoded by OpenCV's FFmpeg backend.

    Timestamps are the container's presentation times (CAP_PROP_POS_MSEC); where a container
    reports none or goes backwards (OpenCV reports 0 for some last frames) the timestamp is
    the previous one plus the measured frame interval. Frame counts reported by containers can
    be wrong, so the file is read until the decoder gives up, and it counts as truncated only
    when decoding stops well before the container's announced duration.
    """

    def __init__(self, path: str | Path):
        super().__init__(str(path))
        p = Path(path)
        if not p.exists():
            raise SourceError(f"{p}: no such file")
        if not p.is_file():
            raise SourceError(f"{p}: not a file")
        if not os.access(p, os.R_OK):
            raise SourceError(f"{p}: permission denied")
        self._cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"{p}: not a video FFmpeg can open (unknown format, corrupt header or not a video)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.fps = fps if math.isfinite(fps) and fps > 0 else None
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        ok, first = self._cap.read()
        first = _as_bgr(first) if ok else None
        if first is None:
            self._cap.release()
            raise SourceError(f"{p}: no decodable video frame (corrupt or empty video)")
        self._first = first
        self._first_ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        self.state = SourceState.CONNECTED

    @property
    def announced_duration(self) -> float | None:
        if self.fps and self.frame_count:
            return self.frame_count / self.fps
        return None

    def __iter__(self) -> Iterator[Frame]:
        index, img, ts, gap = 0, self._first, self._first_ts, 1
        interval = 1.0 / self.fps if self.fps else 0.04
        last_ts: float | None = None
        try:
            while img is not None:
                if last_ts is not None:
                    if math.isfinite(ts) and ts > last_ts:
                        interval = (ts - last_ts) / gap
                    else:
                        ts = last_ts + interval * gap
                self.stats.frames += 1
                yield Frame(img, index, ts, self.name)
                last_ts = ts
                img, ts, skipped = self._read_next()
                if skipped and img is not None:
                    self.stats.corrupt_frames += skipped
                    log.warning("%s: skipped %d corrupt frame(s) after frame %d", self.name, skipped, index)
                gap = 1 + skipped
                index += gap
        finally:
            self._cap.release()
        self.state = SourceState.ENDED
        self._check_complete(last_ts, interval)

    def _read_next(self) -> tuple[np.ndarray | None, float, int]:
        """The next decodable frame, its timestamp, and how many undecodable ones came first."""
        for failures in range(MAX_CONSECUTIVE_READ_FAILURES):
            ok, raw = self._cap.read()
            img = _as_bgr(raw) if ok else None
            if img is not None:
                return img, self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, failures
        return None, math.nan, MAX_CONSECUTIVE_READ_FAILURES

    def _check_complete(self, last_ts: float | None, interval: float) -> None:
        duration = self.announced_duration
        if duration is None or last_ts is None:
            return
        end = last_ts + interval
        # Containers round durations; only a clear shortfall (10% and a second) is truncation.
        if end < 0.9 * duration and duration - end > 1.0:
            self.incomplete = (
                f"{self.name}: video ends at {end:.1f} s of {duration:.1f} s announced "
                f"(truncated or corrupt); {self.stats.frames} frames decoded"
            )

    def close(self) -> None:
        self._cap.release()


StateCallback = Callable[[SourceState, str], None]


class LiveSource(FrameSource):
    """An RTSP/HTTP URL or a USB camera read on a background thread.

    The consumer always gets the newest frame: frames it could not take in time are dropped
    and counted (a detector slower than the camera must not fall further and further behind).
    Lost connections are retried with capped exponential backoff; `state` says where it is and
    `on_state` hears every change. After `policy.max_attempts` failed attempts in a row the
    source is FAILED and iteration raises SourceError.
    """

    is_live = True

    def __init__(
        self,
        target: str | int,
        *,
        policy: ReconnectPolicy = ReconnectPolicy(),
        clock: Clock = SYSTEM_CLOCK,
        on_state: StateCallback | None = None,
        open_timeout_s: float = 10.0,
    ):
        super().__init__(_redact(str(target)))
        self._target = target
        self._policy = policy
        self._clock = clock
        self._on_state = on_state
        self._open_timeout_ms = int(open_timeout_s * 1000)
        self._lock = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"source:{self.name}", daemon=True)
        self._thread.start()

    def _set_state(self, state: SourceState, reason: str = "") -> None:
        if state is self.state:
            return
        self.state = state
        log.info("source %s: %s%s", self.name, state.value, f" ({reason})" if reason else "")
        if self._on_state:
            self._on_state(state, reason)
        with self._lock:
            self._lock.notify_all()

    def _open(self) -> cv2.VideoCapture | None:
        if isinstance(self._target, int):
            cap = cv2.VideoCapture(self._target)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._open_timeout_ms]
            cap = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _run(self) -> None:
        attempt = 0
        connected_before = False
        while not self._stop.is_set():
            cap = self._open()
            if cap is None:
                attempt += 1
                reason = "cannot open stream"
            else:
                if connected_before:
                    self.stats.reconnects += 1
                connected_before = True
                attempt = 0
                self._set_state(SourceState.CONNECTED)
                reason = self._pump(cap)
                cap.release()
                attempt = 1
            if self._stop.is_set():
                break
            if self._policy.max_attempts is not None and attempt > self._policy.max_attempts:
                self._error = f"{self.name}: {reason}; gave up after {self._policy.max_attempts} attempt(s)"
                self._set_state(SourceState.FAILED, reason)
                return
            self._set_state(SourceState.RECONNECTING, reason)
            self._clock.sleep(self._policy.delay(attempt), self._stop)
        self._set_state(SourceState.ENDED)

    def _pump(self, cap: cv2.VideoCapture) -> str:
        """Read until the stream breaks; returns why it stopped."""
        failures = 0
        while not self._stop.is_set():
            ok, raw = cap.read()
            img = _as_bgr(raw) if ok else None
            if img is None:
                if ok:  # decoded, but not a picture we can use
                    self.stats.corrupt_frames += 1
                    continue
                failures += 1
                if failures >= MAX_LIVE_READ_FAILURES or not cap.isOpened():
                    return "stream stopped delivering frames"
                continue
            failures = 0
            with self._lock:
                if self._latest is not None:
                    self.stats.dropped_frames += 1
                self._latest = (img, self._clock.now())
                self._lock.notify_all()
        return "stopped"

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            with self._lock:
                while self._latest is None and self.state not in (SourceState.FAILED, SourceState.ENDED):
                    self._lock.wait(0.5)
                item, self._latest = self._latest, None
            if item is None:
                if self.state is SourceState.FAILED:
                    raise SourceError(self._error or f"{self.name}: failed")
                return
            self.stats.frames += 1
            yield Frame(item[0], index, item[1], self.name)
            index += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        if self.state is not SourceState.FAILED:
            self.state = SourceState.ENDED


def _redact(url: str) -> str:
    """Camera URLs often carry credentials; never log them."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def open_source(
    spec: str | int | Path,
    *,
    fps: float | None = None,
    policy: ReconnectPolicy = ReconnectPolicy(),
    clock: Clock = SYSTEM_CLOCK,
    on_state: StateCallback | None = None,
) -> FrameSource:
    """Open what a user typed: a USB index, a stream URL, an image, a folder or a video file."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return LiveSource(int(spec), policy=policy, clock=clock, on_state=on_state)
    text = str(spec)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource(text, policy=policy, clock=clock, on_state=on_state)
    p = Path(text)
    if not p.exists():
        raise SourceError(f"{p}: no such file or directory")
    if p.is_dir():
        return ImageFolderSource(p, fps=fps)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(p)
    return VideoFileSource(p)
