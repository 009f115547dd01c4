"""`zastava-edge detect` and friends, run as a user runs them: a separate process."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from conftest import damaged_copy, run_cli


def test_detect_image_prints_and_writes_annotated_picture(dog_jpg: Path, tmp_path: Path):
    out = tmp_path / "dog.jpg"
    r = run_cli("detect", str(dog_jpg), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("frame 0 t=0.000s: 3 — dog 0.86, bicycle 0.80, car 0.80")
    img = cv2.imread(str(out))
    assert img.shape == (576, 768, 3)
    assert (img != cv2.imread(str(dog_jpg))).any(), "boxes were drawn"


def test_detect_json_lines_with_class_filter(dog_jpg: Path):
    r = run_cli("detect", str(dog_jpg), "--json", "--classes", "dog,car", "--conf", "0.5")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout.strip())
    assert record["frame"] == 0 and record["timestamp"] == 0.0 and (record["width"], record["height"]) == (768, 576)
    assert sorted(d["class"] for d in record["detections"]) == ["car", "dog"]
    for d in record["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576 and d["score"] >= 0.5


@pytest.mark.slow
def test_detect_runs_a_video_end_to_end(videos: Path, tmp_path: Path):
    out = tmp_path / "annotated.mp4"
    r = run_cli("detect", str(videos / "vtest.avi"), "--json", "--classes", "person", "--out", str(out))
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["frame"] for rec in records] == list(range(341))
    ts = [rec["timestamp"] for rec in records]
    assert ts == sorted(ts) and ts[-1] == pytest.approx(13.64, abs=0.01)
    people = [len(rec["detections"]) for rec in records]
    assert min(people) >= 5 and sum(people) / len(people) > 12, "dozens of people cross this hall in every frame"
    assert {d["class"] for rec in records for d in rec["detections"]} == {"person"}
    assert "341 frame(s)" in r.stderr
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 341


def test_truncated_video_processes_what_it_can_then_exits_2(videos: Path, tmp_path: Path):
    path = damaged_copy(videos / "car-detection.mp4", tmp_path / "cut.mp4", keep=0.5)
    r = run_cli("detect", str(path))
    assert r.returncode == 2
    assert len(r.stdout.splitlines()) > 100
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("zastava-edge: error: ") and "cut.mp4: video ends at" in last and "truncated" in last
    assert "Traceback" not in r.stderr


def test_corrupt_frames_are_skipped_and_reported(videos: Path, tmp_path: Path):
    path = damaged_copy(videos / "car-detection.mp4", tmp_path / "damaged.mp4", zero_at=0.5)
    r = run_cli("detect", str(path), "--json")
    assert r.returncode == 0, r.stderr
    assert "corrupt frame(s) skipped" in r.stderr
    assert len(r.stdout.splitlines()) >= 370


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("notes.txt", b"just some text\n", "notes.txt: not a video FFmpeg can open"),
        ("clip.mp4", b"\x00" * 4096, "clip.mp4: not a video FFmpeg can open"),
        ("photo.jpg", b"\xff\xd8\xff\xe0 truncated", "photo.jpg: not an image OpenCV can decode"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_2(tmp_path: Path, name: str, content: bytes, message: str):
    path = tmp_path / name
    path.write_bytes(content)
    r = run_cli("detect", str(path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zastava-edge: error: ") and message in lines[0], r.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["detect", "/no/such/file.mp4"], "/no/such/file.mp4: no such file or directory"),
        (["detect", "{dog}", "--conf", "1.5"], "argument --conf: 1.5 is outside 0..1"),
        (["detect", "{dog}", "--model", "yolov9000"], "unknown model 'yolov9000'"),
        (["detect", "{dog}", "--model", "./missing.onnx"], "missing.onnx: no such model file"),
        (["detect", "{dog}", "--classes", "unicorn"], "'unicorn' is not a class of yolox_nano.onnx"),
        (["detect", "{dog}", "--out", "/no/such/dir/out.mp4", "--max-frames", "1"], None),
        (["models", "pull", "nope"], "unknown model 'nope'"),
        (["models", "eval", "--data", "/no/such/dataset"], "no such dataset folder"),
    ],
)
def test_cli_errors_are_one_line(dog_jpg: Path, args: list[str], message: str | None):
    r = run_cli(*[a.replace("{dog}", str(dog_jpg)) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    if message:
        assert message in lines[0]


def test_models_list_shows_the_default_and_where_it_is(models_dir: Path):
    r = run_cli("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["yolox-nano"]["default"] and rows["yolox-nano"]["layout"] == "yolox"
    assert rows["yolox-nano"]["path"] == str(models_dir / "yolox_nano.onnx")
    assert rows["yolov8n"]["source"] == "export yolov8n.pt"


def test_console_scripts_are_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    bindir = Path(sys.executable).parent
    for name, version in [("zastava-edge", "zastava-edge 0.1.0"), ("zastava-central", "zastava-central 0.1.0")]:
        exe = shutil.which(name, path=str(bindir)) or shutil.which(name)
        assert exe, f"{name} is not installed"
        r = subprocess.run([exe, "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == version
