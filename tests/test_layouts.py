"""Layout detection from output shapes, and the letterbox arithmetic, by hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detect.layouts import Layout, decode_end2end, decode_ultralytics, decode_yolox, infer_layout
from edge.detect.letterbox import Letterbox, letterbox
from edge.detect.providers import choose_providers, parallelism
from edge.errors import ModelError


@pytest.mark.parametrize(
    "shape,hw,meta,expected",
    [
        ((1, 3549, 85), (416, 416), {}, Layout.YOLOX),  # 52^2 + 26^2 + 13^2
        ((1, 8400, 85), (640, 640), {}, Layout.YOLOX),
        ((1, 84, 8400), (640, 640), {}, Layout.ULTRALYTICS),
        ((4, 5, 8400), (640, 640), {}, Layout.ULTRALYTICS),  # one class
        ((1, 25200, 85), (640, 640), {}, Layout.YOLOV5),
        ((1, 300, 6), (640, 640), {"end2end": "True"}, Layout.END2END),
        ((1, 100, 6), (640, 640), {}, Layout.END2END),
        ((1, 8400, 6), (640, 640), {}, Layout.YOLOX),  # one-class YOLOX, not end-to-end
        ((1, 8500, 85), (640, 640), {}, Layout.YOLOX),  # P6 strides 8..64 at 640: 8400 + 100
    ],
)
def test_layout_from_shape(shape, hw, meta, expected):
    assert infer_layout(shape, hw, meta) is expected


@pytest.mark.parametrize("shape", [(1, 7, 9), (1, 1000), (1, 84, 8399)])
def test_unmatched_shape_names_itself(shape):
    with pytest.raises(ModelError, match=r"output shape \["):
        infer_layout(shape, (640, 640), {})


def test_yolox_letterbox_is_top_left_truncated():
    img = np.zeros((720, 1280, 3), np.uint8)
    canvas, lb = letterbox(img, (416, 416), centred=False)
    # r = 416/1280 = 0.325 -> 416 x int(234.0) = 234 rows of picture, pad below
    assert lb == Letterbox(scale=0.325, pad_x=0.0, pad_y=0.0, src_w=1280, src_h=720)
    assert (canvas[:234] == 0).all() and (canvas[234:] == 114).all()


def test_ultralytics_letterbox_is_centred_with_rounded_pads():
    img = np.zeros((480, 640, 3), np.uint8)
    canvas, lb = letterbox(img, (640, 640), centred=True)
    # 640x480 fits at scale 1; 160 rows of padding split round(80 - 0.1) = 80 above
    assert (lb.scale, lb.pad_x, lb.pad_y) == (1.0, 0.0, 80.0)
    assert (canvas[:80] == 114).all() and (canvas[80:560] == 0).all() and (canvas[560:] == 114).all()


def test_to_source_inverts_letterbox_and_clips():
    lb = Letterbox(scale=0.5, pad_x=10.0, pad_y=20.0, src_w=100, src_h=80)
    boxes = np.array([[20, 30, 40, 50], [0, 0, 500, 500]], np.float32)
    out = lb.to_source(boxes)
    np.testing.assert_allclose(out[0], [20, 20, 60, 60])
    np.testing.assert_allclose(out[1], [0, 0, 100, 80])  # clipped to the frame


def test_yolox_grid_decode_by_hand():
    # One cell of a 64x64 input: strides 8/16/32 give 64 + 16 + 4 = 84 cells.
    out = np.zeros((1, 84, 6), np.float32)
    # Cell 9 is stride 8, row 1, column 1: centre = (0.5 + 1) * 8 = 12; wh = exp(0) * 8 = 8.
    out[0, 9] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.8]
    c = decode_yolox(out, (64, 64), conf=0.5, nc=1)[0]
    np.testing.assert_allclose(c.xyxy, [[8, 8, 16, 16]])
    np.testing.assert_allclose(c.scores, [0.72])


def test_ultralytics_decode_by_hand():
    out = np.zeros((1, 6, 84), np.float32)  # 2 classes, 84 anchors
    out[0, :, 3] = [30, 40, 10, 20, 0.1, 0.7]
    c = decode_ultralytics(out, conf=0.5, nc=2)[0]
    np.testing.assert_allclose(c.xyxy, [[25, 30, 35, 50]])
    assert c.class_ids.tolist() == [1] and c.scores.tolist() == pytest.approx([0.7])


def test_end2end_decode_keeps_rows_over_conf():
    out = np.array([[[1, 2, 3, 4, 0.9, 5], [1, 2, 3, 4, 0.2, 1]]], np.float32)
    c = decode_end2end(out, conf=0.5)[0]
    assert c.class_ids.tolist() == [5] and len(c) == 1


def test_provider_choice_and_fallback():
    assert choose_providers("cpu", ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], None)
    chosen, warning = choose_providers("tensorrt", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen == ["CUDAExecutionProvider", "CPUExecutionProvider"] and "falling back to CUDAExecutionProvider" in warning
    chosen, warning = choose_providers("auto", ["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    assert chosen[0] == "OpenVINOExecutionProvider" and warning is None


@pytest.mark.parametrize(
    "threads,runs,provider,cores,expected",
    [(0, 0, "cpu", 2, (1, 2)), (0, 0, "cpu", 16, (4, 4)), (2, 0, "cpu", 2, (2, 1)), (0, 1, "cpu", 2, (2, 1)),
     (0, 0, "cuda", 8, (0, 2))],
)
def test_parallelism(threads, runs, provider, cores, expected):
    assert parallelism(threads, runs, provider, cores) == expected
