"""Detection accuracy on coco128 with a COCO evaluator, and the benchmark command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli


@pytest.mark.slow
def test_yolox_nano_map_on_coco128(data_dir: Path):
    r = run_cli("models", "eval", "--data", str(data_dir / "coco128"), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    # The reference decode measures 0.334 / 0.514; the floor is 0.330.
    assert result["map50_95"] >= 0.330
    assert result["map50"] >= 0.51
    # 128 images (2 without labels count as empty), 929 labelled boxes; 2 label files lack images.
    assert result["images"] == 128 and result["labelled_boxes"] == 929
    assert r.stdout.startswith("mAP50-95 0.33")


@pytest.mark.slow
def test_evaluators_agree(yolox_path: Path, data_dir: Path):
    pytest.importorskip("pycocotools", reason="pycocotools is in the test extra; CI installs it")
    from edge.detect import Detector, DetectorConfig
    from edge.evaluation.detection import evaluate_detector, load_dataset

    det = Detector(DetectorConfig(model=str(yolox_path), conf=0.001, iou=0.65))
    ds = load_dataset(data_dir / "coco128")
    ds = type(ds)(root=ds.root, images=ds.images[:40], names=ds.names)
    a = evaluate_detector(det, ds, evaluator="faster-coco-eval")
    b = evaluate_detector(det, ds, evaluator="pycocotools")
    assert a.map50_95 == pytest.approx(b.map50_95, abs=1e-4) and a.map50 == pytest.approx(b.map50, abs=1e-4)


def test_eval_tolerates_malformed_labels(data_dir: Path, tmp_path: Path):
    src = data_dir / "coco128"
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for img in sorted((src / "images" / "train2017").glob("*.jpg"))[:6]:
        shutil.copy(img, tmp_path / "images" / img.name)
        label = src / "labels" / "train2017" / f"{img.stem}.txt"
        if label.exists():
            shutil.copy(label, tmp_path / "labels" / label.name)
    first = sorted((tmp_path / "labels").glob("*.txt"))[0]
    first.write_text(first.read_text() + "7 0.5 0.5\nperson 0.1 0.1 0.1 0.1\n")
    r = run_cli("models", "eval", "--data", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["malformed_label_lines"] == 2 and result["images"] == 6
    assert "skipped 2 malformed label line(s)" in r.stderr


@pytest.mark.slow
def test_bench_reports_side_by_side_figures(videos: Path):
    r = run_cli("bench", str(videos / "highway_cctv.avi"), "--frames", "20", "--rounds", "3", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("raw_single_fps", "raw_parallel_fps", "full_fps", "latency_p50_ms", "latency_p99_ms", "infer_ms"):
        assert result[key] > 0, key
    assert result["raw_best_fps"] == max(result["raw_single_fps"], result["raw_parallel_fps"])
    assert 0 < result["ratio"] <= 1.5  # noise can push one round past 1; the path does more work
    assert result["latency_p99_ms"] >= result["latency_p50_ms"]
    assert r.stderr.count("round ") == 3
    assert "ratio full / best raw" in r.stdout


def test_the_median_interval_brackets_the_median_and_narrows_with_more_rounds():
    from edge.bench import median_interval

    rng = np.random.default_rng(3)
    few, many = rng.normal(0.05, 0.07, 12), rng.normal(0.05, 0.07, 120)
    lo, hi = median_interval(list(few))
    assert lo <= float(np.median(few)) <= hi
    lo2, hi2 = median_interval(list(many))
    assert lo2 <= 0.05 <= hi2 and hi2 - lo2 < hi - lo
    assert median_interval([0.04] * 10) == (0.04, 0.04)
