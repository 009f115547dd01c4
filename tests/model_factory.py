"""Real models of each layout, built here without downloading weights.

No pretrained weights can be downloaded on these machines, and a network built from its yaml
with fresh weights is useless for an equivalence test: every class score is the same (the head's
bias init makes them ~1.6e-4), so NMS order is a coin toss. These builders make the outputs
varied the way a trained model's are, while keeping the real architecture and exporter:
- batch-norm statistics are recalibrated on real photos (one forward pass in training mode),
  so every layer sees activations of realistic spread;
- the class (and, for YOLOv5, objectness) convolutions of the head get seeded normal weights
  (std 0.15) and bias -5, so scores spread over 0..1 with a handful to a few hundred detections
  per image at conf 0.25.
Everything is seeded, so the models are the same on every run.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

HEAD_STD = 0.15
HEAD_BIAS = -5.0


def calibration_batch(data_dir: Path, n: int = 16, size: int = 640):
    import torch

    files = [data_dir / "images" / "dog.jpg"] + sorted((data_dir / "coco128" / "images" / "train2017").glob("*.jpg"))
    imgs = [cv2.resize(cv2.imread(str(f)), (size, size))[:, :, ::-1].transpose(2, 0, 1) / 255.0 for f in files[:n]]
    return torch.tensor(np.stack(imgs), dtype=torch.float32)


def _recalibrate_bn(net, batch) -> None:
    import torch

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()


def _spread(conv) -> None:
    import torch

    torch.nn.init.normal_(conv.weight, std=HEAD_STD)
    torch.nn.init.constant_(conv.bias, HEAD_BIAS)


def ultralytics_weights(yaml_name: str, data_dir: Path, out: Path, seed: int = 0) -> Path:
    """Build an Ultralytics model from its yaml, make its outputs varied, save a .pt."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO(yaml_name)
    net = model.model
    _recalibrate_bn(net, calibration_batch(data_dir))
    head = net.model[-1]
    for branch in (head.cv3, getattr(head, "one2one_cv3", None)):
        for seq in branch or []:
            _spread(seq[-1])
    model.save(str(out))
    return out


def yolov5_onnx(data_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """Build YOLOv5n (anchor-based) from the yolov5 package's yaml and export it with that
    package's own ONNX exporter; returns the .onnx path ([1, 25200, 85] output)."""
    import torch
    import yolov5
    from yolov5 import export
    from yolov5.models.yolo import Detect, Model

    torch.manual_seed(seed)
    model = Model(str(Path(yolov5.__path__[0]) / "models" / "yolov5n.yaml"))
    _recalibrate_bn(model, calibration_batch(data_dir))
    for conv in model.model[-1].m:
        _spread(conv)
    model.names = {i: f"class{i}" for i in range(80)}
    for m in model.modules():
        if isinstance(m, Detect):  # what yolov5's export.run() sets before exporting
            m.inplace, m.dynamic, m.export = True, False, True
    im = torch.zeros(1, 3, 640, 640)
    model(im)
    # yolov5 was written for torch's TorchScript exporter; torch >= 2.9 defaults to dynamo.
    original = torch.onnx.export
    torch.onnx.export = functools.partial(original, dynamo=False)
    try:
        export.export_onnx(model, im, out_dir / "yolov5n_seeded.pt", 12, False, False)
    finally:
        torch.onnx.export = original
    return out_dir / "yolov5n_seeded.onnx"
