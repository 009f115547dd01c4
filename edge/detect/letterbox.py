"""Fitting frames into a model's input the way each model family was trained.

Two conventions exist and getting them wrong costs accuracy silently:
- YOLOX: scale r = min(H/h, W/w), size truncated with int(), placed top-left, pad 114, BGR 0..255.
- Ultralytics / YOLOv5: same r, size rounded, centred with pads round(d/2 -/+ 0.1), pad 114,
  RGB scaled to 0..1.
Boxes come back to source pixels with x_src = (x_in - pad_x) / r.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one frame sits in the model input: x_in = x_src * scale + pad_x."""

    scale: float
    pad_x: float
    pad_y: float
    src_w: int
    src_h: int

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Map boxes from model-input pixels back to source pixels, clipped to the frame."""
        out = np.empty_like(xyxy, dtype=np.float32)
        xs, ys = out[:, 0::2], out[:, 1::2]  # views: x1, x2 and y1, y2
        np.subtract(xyxy[:, 0::2], self.pad_x, out=xs)
        np.subtract(xyxy[:, 1::2], self.pad_y, out=ys)
        out /= self.scale
        np.clip(xs, 0, self.src_w, out=xs)
        np.clip(ys, 0, self.src_h, out=ys)
        return out


def letterbox_into(img: np.ndarray, canvas: np.ndarray, centred: bool) -> Letterbox:
    """Resize `img` into the HxWx3 `canvas` (already filled with the pad value where needed).

    Writing into a preallocated canvas avoids an allocation and a copy per frame.
    """
    in_h, in_w = canvas.shape[:2]
    h, w = img.shape[:2]
    r = min(in_h / h, in_w / w)
    if centred:
        new_w, new_h = int(round(w * r)), int(round(h * r))
        dw, dh = (in_w - new_w) / 2, (in_h - new_h) / 2
        left, top = int(round(dw - 0.1)), int(round(dh - 0.1))
    else:
        new_w, new_h = int(w * r), int(h * r)
        left = top = 0
    canvas[...] = PAD_VALUE
    target = canvas[top : top + new_h, left : left + new_w]
    if (new_w, new_h) == (w, h):
        target[...] = img
    else:
        resized = cv2.resize(img, (new_w, new_h), dst=target, interpolation=cv2.INTER_LINEAR)
        if resized is not target:  # older OpenCV builds allocate instead of writing into a view
            target[...] = resized
    return Letterbox(scale=r, pad_x=float(left), pad_y=float(top), src_w=w, src_h=h)


def letterbox(img: np.ndarray, size: tuple[int, int], centred: bool) -> tuple[np.ndarray, Letterbox]:
    """Return a new (H, W, 3) uint8 picture of `img` fitted into `size` = (H, W)."""
    canvas = np.empty((size[0], size[1], 3), dtype=np.uint8)
    return canvas, letterbox_into(img, canvas, centred)
