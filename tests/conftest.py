"""Shared fixtures: the real model and data from $ZASTAVA_MODELS and $ZASTAVA_DATA.

.ci/run and scripts/test point these at ../shared; tests never name that folder themselves.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env_dir(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"${name} is not set: point it at the shared models/data folder (scripts/test does)")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"${name}={value} is not a folder")
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _env_dir("ZASTAVA_MODELS")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _env_dir("ZASTAVA_DATA")


@pytest.fixture(scope="session")
def yolox_path(models_dir: Path) -> Path:
    path = models_dir / "yolox_nano.onnx"
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def dog_jpg(data_dir: Path) -> Path:
    return data_dir / "images" / "dog.jpg"


@pytest.fixture(scope="session")
def videos(data_dir: Path) -> Path:
    return data_dir / "video"


@pytest.fixture(scope="session")
def yolox(yolox_path: Path):
    from edge.detect import Detector, DetectorConfig

    return Detector(DetectorConfig(model=str(yolox_path), conf=0.35))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `zastava-edge` as a user would, in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO
    )


def damaged_copy(src: Path, dst: Path, *, zero_at: float | None = None, keep: float | None = None) -> Path:
    """A real file damaged in place: 20 kB zeroed at a fraction of its length, or cut short."""
    data = bytearray(src.read_bytes())
    if zero_at is not None:
        start = int(len(data) * zero_at)
        data[start : start + 20_000] = bytes(20_000)
    if keep is not None:
        data = data[: int(len(data) * keep)]
    dst.write_bytes(bytes(data))
    return dst


def require_module(name: str) -> None:
    """Skip (with the reason) when an optional extra is absent; CI installs every extra and
    fails any skip, so this never hides a missing dependency there."""
    try:
        __import__(name)
    except ImportError as e:
        pytest.skip(f"needs `{name}` ({e}); install the export extra (scripts/test does)")


@pytest.fixture
def tmp_copy(tmp_path: Path):
    def copy(src: Path, name: str | None = None) -> Path:
        dst = tmp_path / (name or src.name)
        shutil.copyfile(src, dst)
        return dst

    return copy
