"""Writing annotated pictures and videos to disk."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import ZastavaError
from edge.sources import IMAGE_EXTENSIONS

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}


def write_image(path: str | Path, img: np.ndarray, jpeg_quality: int = 90) -> None:
    p = Path(path)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise ZastavaError(f"{p}: an image output needs an image extension ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if p.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(p.suffix, img, params)
    if not ok:
        raise ZastavaError(f"{p}: cannot encode the picture as {p.suffix}")
    try:
        p.write_bytes(buf.tobytes())
    except OSError as e:
        raise ZastavaError(f"{p}: cannot write: {e.strerror or e}") from None


class VideoRecorder:
    """A video file whose size is fixed by the first frame; later frames are fitted to it."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise ZastavaError(f"{self.path}: a video output needs one of {', '.join(sorted(VIDEO_CODECS))}")
        if not self.path.parent.is_dir():
            raise ZastavaError(f"{self.path}: folder {self.path.parent} does not exist")
        self.fps = fps if fps and fps > 0 else 25.0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        if self._writer is None:
            self._size = (img.shape[1], img.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise ZastavaError(f"{self.path}: OpenCV cannot open a video writer for this file")
        if (img.shape[1], img.shape[0]) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
