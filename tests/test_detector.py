"""The YOLOX detector on real images, and the detector's refusals and options."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detect import Detector, DetectorConfig
from edge.detect.detector import nms
from edge.errors import ModelError


def test_dog_jpg_yields_dog_bicycle_car(yolox, dog_jpg: Path):
    det = yolox.detect(cv2.imread(str(dog_jpg)))
    found = dict(zip(det.class_names(), det.scores.tolist()))
    assert set(found) == {"dog", "bicycle", "car"}
    # Reference decode in the model's README: dog 0.86, bicycle 0.80, car 0.80.
    assert found["dog"] == pytest.approx(0.86, abs=0.01)
    assert found["bicycle"] == pytest.approx(0.80, abs=0.01)
    assert found["car"] == pytest.approx(0.80, abs=0.01)
    boxes = dict(zip(det.class_names(), det.xyxy.tolist()))
    # The dog sits bottom-left and the car top-right of the 768x576 photo.
    assert boxes["dog"][0] < 200 and boxes["dog"][3] > 500
    assert boxes["car"][0] > 400 and boxes["car"][3] < 200


@pytest.mark.parametrize("value", [0, 114, 255])
def test_blank_frame_yields_nothing(yolox, value: int):
    assert len(yolox.detect(np.full((720, 1280, 3), value, np.uint8))) == 0


def test_boxes_are_in_source_pixels_and_clipped(yolox, dog_jpg: Path):
    img = cv2.imread(str(dog_jpg))
    big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2))
    small, large = yolox.detect(img), yolox.detect(big)
    assert small.class_names() == large.class_names()
    # Resampling differs between the two paths; boxes agree to 1% of the frame.
    np.testing.assert_allclose(large.xyxy, small.xyxy * 2, atol=0.01 * max(big.shape))
    assert (large.xyxy[:, [0, 2]] <= big.shape[1]).all() and (large.xyxy >= 0).all()


def test_class_filter_and_box_size_limits(yolox_path: Path, dog_jpg: Path):
    img = cv2.imread(str(dog_jpg))
    only = Detector(DetectorConfig(model=str(yolox_path), classes=["dog", 2])).detect(img)
    assert sorted(only.class_names()) == ["car", "dog"]
    # The bicycle box is ~520 px wide; the car ~225 px, the dog ~190 px.
    no_big = Detector(DetectorConfig(model=str(yolox_path), max_box=400)).detect(img)
    assert "bicycle" not in no_big.class_names() and len(no_big) == 2
    no_small = Detector(DetectorConfig(model=str(yolox_path), min_box=200)).detect(img)
    assert no_small.class_names() == ["bicycle"]


def test_unknown_class_name_is_refused(yolox_path: Path):
    with pytest.raises(ModelError, match="'persn' is not a class"):
        Detector(DetectorConfig(model=str(yolox_path), classes=["persn"]))


def test_fixed_batch_model_takes_several_frames(yolox, dog_jpg: Path):
    img = cv2.imread(str(dog_jpg))
    assert yolox.fixed_batch == 1
    results = yolox.detect_batch([img, np.zeros_like(img), img])
    assert [len(r) for r in results] == [3, 0, 3]


def test_not_an_onnx_file_is_refused(tmp_path: Path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Detector(DetectorConfig(model=str(bogus)))


def _tiny_model(path: Path, out_shape: list[int]) -> Path:
    """A real ONNX graph [1,3,64,64] -> out_shape (a Reshape of a pooled input)."""
    onnx = pytest.importorskip("onnx", reason="onnx comes with the export extra; CI installs it")
    from onnx import TensorProto, helper

    n = int(np.prod(out_shape))
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Tile", ["flat", "reps"], ["tiled"]),
        helper.make_node("Slice", ["tiled", "starts", "ends", "axes"], ["sliced"]),
        helper.make_node("Reshape", ["sliced", "shape"], ["output"]),
    ]
    inits = [
        helper.make_tensor("reps", TensorProto.INT64, [2], [1, n]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [n]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("shape", TensorProto.INT64, [len(out_shape)], out_shape),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_unknown_layout_is_refused_naming_the_shape(tmp_path: Path):
    path = _tiny_model(tmp_path / "odd.onnx", [1, 7, 9])
    with pytest.raises(ModelError, match=r"output shape \[1, 7, 9\] at input 64x64 matches no supported layout"):
        Detector(DetectorConfig(model=str(path)))


def test_forced_layout_that_does_not_fit_is_refused(tmp_path: Path):
    path = _tiny_model(tmp_path / "odd.onnx", [1, 4, 3])
    with pytest.raises(ModelError, match="does not fit output shape"):
        Detector(DetectorConfig(model=str(path), layout="end2end"))


def test_unavailable_provider_falls_back_to_cpu_and_says_so(yolox_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        det = Detector(DetectorConfig(model=str(yolox_path), provider="cuda"))
    assert det.provider == "CPUExecutionProvider"
    assert any("'cuda'" in r.message and "falling back to CPUExecutionProvider" in r.message for r in caplog.records)


def test_nms_matches_torchvision_including_degenerate_boxes():
    torch = pytest.importorskip("torch", reason="torchvision is the reference; the export extra installs it")
    torchvision = pytest.importorskip("torchvision")
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 600, (2000, 2)).astype(np.float32)
    wh = rng.uniform(0, 120, (2000, 2)).astype(np.float32)
    wh[::50] = 0  # zero-area boxes, as untrained heads emit
    xyxy = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, 2000).astype(np.float32)
    cls = rng.integers(0, 4, 2000)
    ours = nms(xyxy, scores, cls, 0.5)
    ref = torchvision.ops.batched_nms(torch.from_numpy(xyxy), torch.from_numpy(scores), torch.from_numpy(cls), 0.5).numpy()
    np.testing.assert_array_equal(ours, ref)
