"""A real radar-picture model, trained here in about a minute of CPU: the Ultralytics path a user
takes for `video.detector: onnx`, made small.

No radar-picture model is published and none may be downloaded, so this trains one: a data set of
rendered PPIs with labelled blips from the generator (edge.evaluation.radar_video.picture_dataset),
a YOLO detector with a tiny backbone (five strided convolutions and one C2f block) and the three
Detect levels of every Ultralytics model (so the exported [1, 5, N] output is the layout the
detector reads on its own), trained from scratch on 128-pixel tiles (240 steps, AdamW, no warm-up: a blip is
a simple thing to find) and exported to ONNX at the picture's full 512 pixels. Seeded and
deterministic on one machine; never committed.
"""

from __future__ import annotations

import os
from pathlib import Path

TINY_YAML = """
# a tiny YOLO for blips on a radar picture: 0.28 M parameters
nc: 1
backbone:
  - [-1, 1, Conv, [16, 3, 2]]   # 0 P1/2
  - [-1, 1, Conv, [32, 3, 2]]   # 1 P2/4
  - [-1, 1, Conv, [32, 3, 2]]   # 2 P3/8
  - [-1, 1, C2f, [32, False]]   # 3
  - [-1, 1, Conv, [32, 3, 2]]   # 4 P4/16
  - [-1, 1, Conv, [32, 3, 2]]   # 5 P5/32
head:
  - [[3, 4, 5], 1, Detect, [nc]]
"""
SIZE_PX = 512  # the PPI the model runs on: 3,840 m of range over 256 pixels, 15 m (one range cell) a pixel
TILE_PX = 128


def train_blip_model(work: Path, *, pictures: int = 12, epochs: int = 20, seed: int = 0) -> Path:
    """Train the tiny blip detector in `work`; returns its .onnx."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    from edge.evaluation.radar_video import picture_dataset

    data = picture_dataset(work / "data", pictures=pictures, tile_px=TILE_PX, size_px=SIZE_PX, seed=seed + 1)
    (work / "tiny-blips.yaml").write_text(TINY_YAML)
    model = YOLO(str(work / "tiny-blips.yaml"))
    model.train(data=str(data), epochs=epochs, imgsz=TILE_PX, batch=16, workers=0, device="cpu", seed=seed,
                deterministic=True, amp=False, plots=False, val=False, verbose=False, project=str(work / "runs"),
                name="blips", exist_ok=True, optimizer="AdamW", lr0=0.01, lrf=0.1, warmup_epochs=0,
                # a radar picture has no colour, no perspective and no up: flips only
                mosaic=0.0, close_mosaic=0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, scale=0.0, translate=0.0, erasing=0.0,
                fliplr=0.5, flipud=0.5, cache=False)
    return Path(model.export(format="onnx", imgsz=SIZE_PX, simplify=True, dynamic=False))
