"""Each adapter proven against the model family's own inference code on the same ONNX file.

Ultralytics (v8, 11) and end-to-end (YOLO26) models are exported with `zastava-edge models
export`; YOLOv5 with the yolov5 package's exporter. Zastava's boxes and scores must equal the
reference's on real images within 1 px and 1e-3.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_module, run_cli
from edge.detect import Detector, DetectorConfig

pytestmark = [pytest.mark.export, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_images(data_dir: Path) -> list[np.ndarray]:
    coco = sorted((data_dir / "coco128" / "images" / "train2017").glob("*.jpg"))
    frames = [data_dir / "images" / "dog.jpg", *coco[20:24], data_dir / "mot" / "PETS09-S3-MF1" / "img1" / "000050.jpg"]
    imgs = [cv2.imread(str(p)) for p in frames]
    cap = cv2.VideoCapture(str(data_dir / "video" / "vtest.avi"))
    imgs.append(cap.read()[1])
    cap.release()
    return imgs


MAX_DET = 3000  # above what these images produce, so no cut at a near-tie can differ


def _match(ours, ref_xyxy: np.ndarray, ref_scores: np.ndarray, ref_cls: np.ndarray) -> None:
    """Every detection pairs with one reference detection: same class, box within 1 px, score
    within 1e-3. Pairing is an optimal assignment, so near-tied scores in another order pass."""
    from scipy.optimize import linear_sum_assignment

    assert len(ours) == len(ref_scores), f"{len(ours)} detections vs reference {len(ref_scores)}"
    assert len(ours) < MAX_DET
    if len(ours) == 0:
        return
    cost = np.abs(ours.xyxy[:, None, :] - ref_xyxy[None, :, :]).max(-1)
    cost += 1e6 * (ours.class_ids[:, None] != ref_cls[None, :])
    cost += 1e6 * (np.abs(ours.scores[:, None] - ref_scores[None, :]) > 1e-3)
    rows, cols = linear_sum_assignment(cost)
    worst = cost[rows, cols].max()
    assert worst <= 1.0, f"a detection has no reference within 1 px / 1e-3 / same class (worst cost {worst:.3g})"


@pytest.fixture(scope="module")
def ultralytics_models(tmp_path_factory, data_dir: Path) -> dict[str, Path]:
    """Export v8 and 11 (ultralytics layout) and YOLO26 (end-to-end) with `models export`."""
    require_module("ultralytics")
    from model_factory import ultralytics_weights

    work = tmp_path_factory.mktemp("ultralytics")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    out = {}
    for name, yaml_name, extra in [
        ("yolov8n", "yolov8n.yaml", []),
        ("yolo11n", "yolo11n.yaml", []),
        ("yolo26n", "yolo26n.yaml", ["--end2end"]),
        ("yolov8n_dynamic", "yolov8n.yaml", ["--dynamic"]),
    ]:
        pt = ultralytics_weights(yaml_name, data_dir, work / f"{name}.pt")
        onnx = work / f"{name}.onnx"
        r = run_cli("models", "export", str(pt), "--out", str(onnx), *extra, env={"YOLO_OFFLINE": "1"})
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip().endswith(str(onnx)), r.stdout
        out[name] = onnx
    return out


@pytest.mark.parametrize("name,layout", [("yolov8n", "ultralytics"), ("yolo11n", "ultralytics"), ("yolo26n", "end2end")])
@pytest.mark.parametrize("conf,iou", [(0.25, 0.7), (0.5, 0.45)])
def test_ultralytics_family_equals_ultralytics(ultralytics_models, real_images, name, layout, conf, iou):
    from ultralytics import YOLO

    path = ultralytics_models[name]
    ours = Detector(DetectorConfig(model=str(path), conf=conf, iou=iou, max_det=MAX_DET))
    assert ours.layout.value == layout
    assert ours.names[:3] == tuple(str(i) for i in range(3)), "names come from the model's metadata"
    ref = YOLO(str(path), task="detect")
    compared = 0
    for img in real_images:
        r = ref.predict(img, conf=conf, iou=iou, imgsz=640, max_det=MAX_DET, verbose=False)[0].boxes
        d = ours.detect(img)
        _match(d, r.xyxy.numpy(), r.conf.numpy(), r.cls.numpy().astype(int))
        compared += len(d)
    assert compared >= 20


def test_dynamic_batch_runs_frames_in_one_session_run(ultralytics_models, real_images):
    """A dynamic-batch export detects several frames in one run, identically to one at a time."""
    det = Detector(DetectorConfig(model=str(ultralytics_models["yolov8n_dynamic"]), conf=0.25, iou=0.7))
    assert det.dynamic_batch
    blob, _ = det.preprocess(real_images[:4])
    assert det.infer(blob).shape[0] == 4
    batched = det.detect_batch(real_images[:4])
    for img, b in zip(real_images[:4], batched):
        single = det.detect(img)
        np.testing.assert_allclose(b.xyxy, single.xyxy, atol=1e-2)
        np.testing.assert_allclose(b.scores, single.scores, atol=1e-4)


def test_yolov5_equals_yolov5(tmp_path: Path, data_dir: Path, real_images):
    require_module("yolov5")
    import torch
    from model_factory import yolov5_onnx
    from yolov5.utils.augmentations import letterbox
    from yolov5.utils.general import non_max_suppression, scale_boxes
    import onnxruntime as ort

    path = yolov5_onnx(data_dir, tmp_path)
    ours = Detector(DetectorConfig(model=str(path), conf=0.25, iou=0.45, max_det=MAX_DET))
    assert ours.layout.value == "yolov5"
    assert ours.names[5] == "class5"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compared = 0
    for img in real_images:
        # yolov5's own detect.py path: letterbox (no auto padding for a fixed-size export),
        # BGR->RGB, /255, NMS, scale_boxes.
        im = letterbox(img, 640, stride=32, auto=False)[0].transpose(2, 0, 1)[::-1]
        im = np.ascontiguousarray(im, dtype=np.float32)[None] / 255.0
        pred = torch.from_numpy(session.run(None, {"images": im})[0])
        det = non_max_suppression(pred, 0.25, 0.45, max_det=MAX_DET)[0]
        det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], img.shape)
        d = ours.detect(img)
        _match(d, det[:, :4].numpy(), det[:, 4].numpy(), det[:, 5].numpy().astype(int))
        compared += len(d)
    assert compared >= 20
