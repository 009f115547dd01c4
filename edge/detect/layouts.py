"""Output layouts of the detector families users bring, and their vectorised decoders.

| layout      | output        | preprocessing               | decode                                  |
|-------------|---------------|-----------------------------|-----------------------------------------|
| yolox       | [B, N, 5+C]   | BGR 0..255, top-left pad    | raw grid: (d + grid) * s, exp(wh) * s   |
| ultralytics | [B, 4+C, N]   | RGB /255, centred pad       | xywh in input pixels, class scores      |
| yolov5      | [B, 3N, 5+C]  | RGB /255, centred pad       | xywh in input pixels, obj * class       |
| end2end     | [B, K, 6]     | RGB /255, centred pad       | x1 y1 x2 y2 score class, no NMS         |

N is the number of grid cells over strides 8/16/32 (P6 models add 64): N = sum (H/s)(W/s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edge.errors import ModelError


class Layout(str, enum.Enum):
    YOLOX = "yolox"
    ULTRALYTICS = "ultralytics"
    YOLOV5 = "yolov5"
    END2END = "end2end"


@dataclass(frozen=True)
class Convention:
    """The pixel convention a model family was trained with."""

    rgb: bool
    scale: float
    centred: bool


CONVENTIONS = {
    Layout.YOLOX: Convention(rgb=False, scale=1.0, centred=False),
    Layout.ULTRALYTICS: Convention(rgb=True, scale=1 / 255, centred=True),
    Layout.YOLOV5: Convention(rgb=True, scale=1 / 255, centred=True),
    Layout.END2END: Convention(rgb=True, scale=1 / 255, centred=True),
}
NEEDS_NMS = {Layout.YOLOX: True, Layout.ULTRALYTICS: True, Layout.YOLOV5: True, Layout.END2END: False}
STRIDE_SETS = ((8, 16, 32), (8, 16, 32, 64))


@dataclass(frozen=True, slots=True)
class Candidates:
    """Boxes of one image in model-input pixels (x1, y1, x2, y2), best score and class each."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    @staticmethod
    def empty() -> Candidates:
        return Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def grid_cells(input_hw: tuple[int, int], strides: tuple[int, ...]) -> int:
    h, w = input_hw
    return sum((h // s) * (w // s) for s in strides)


def describe_layouts(input_hw: tuple[int, int]) -> str:
    n = grid_cells(input_hw, STRIDE_SETS[0])
    return f"yolox [B,{n},5+C], ultralytics [B,4+C,{n}], yolov5 [B,{3 * n},5+C] or end2end [B,K,6]"


def infer_layout(shape: tuple[int, ...], input_hw: tuple[int, int], metadata: dict[str, str]) -> Layout:
    """Work out the layout from the first output's concrete shape and the ONNX metadata.

    Raises ModelError naming the shape when nothing fits.
    """
    if len(shape) != 3:
        raise ModelError(
            f"output shape {list(shape)} matches no supported layout: expected a 3-D output "
            f"({describe_layouts(input_hw)})"
        )
    _, a, b = shape
    grids = {grid_cells(input_hw, s) for s in STRIDE_SETS}
    if metadata.get("end2end", "").lower() == "true" and b >= 6:
        return Layout.END2END
    if a in grids and b >= 6:
        return Layout.YOLOX
    if b in grids and a >= 5:
        return Layout.ULTRALYTICS
    if a in {3 * g for g in grids} and b >= 6:
        return Layout.YOLOV5
    if b == 6 and a <= 10_000:
        return Layout.END2END
    raise ModelError(
        f"output shape {list(shape)} at input {input_hw[0]}x{input_hw[1]} matches no supported layout "
        f"({describe_layouts(input_hw)}); set `layout` in the detector config if it is one of these"
    )


def num_classes(layout: Layout, shape: tuple[int, ...], names_count: int | None) -> int | None:
    """Classes the output carries (None for end2end, whose class is an index)."""
    if layout is Layout.ULTRALYTICS:
        return names_count if names_count and names_count <= shape[1] - 4 else shape[1] - 4
    if layout in (Layout.YOLOX, Layout.YOLOV5):
        return shape[2] - 5
    return None


@lru_cache(maxsize=8)
def _yolox_grid(input_hw: tuple[int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N,2) and strides (N,1) for a YOLOX output of N cells."""
    for strides in STRIDE_SETS:
        if grid_cells(input_hw, strides) == n:
            break
    else:
        raise ModelError(f"YOLOX output has {n} cells, which no stride set fits at input {input_hw}")
    grids, expanded = [], []
    for s in strides:
        hs, ws = input_hw[0] // s, input_hw[1] // s
        yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack((xv, yv), -1).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def _best_class(cls: np.ndarray, obj: np.ndarray | None, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose best class score (times objectness) beats `conf`: (rows, scores, class ids)."""
    ids = cls.argmax(1)
    scores = cls[np.arange(len(cls)), ids]
    if obj is not None:
        scores = scores * obj
    keep = scores > conf
    return np.nonzero(keep)[0], scores[keep].astype(np.float32), ids[keep]


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    xyxy = np.empty_like(xywh, dtype=np.float32)
    half = xywh[:, 2:4] / 2
    xyxy[:, :2] = xywh[:, :2] - half
    xyxy[:, 2:] = xywh[:, :2] + half
    return xyxy


def decode_yolox(out: np.ndarray, input_hw: tuple[int, int], conf: float, nc: int) -> list[Candidates]:
    grid, strides = _yolox_grid(input_hw, out.shape[1])
    result = []
    for pred in out:
        obj = pred[:, 4]
        pre = np.nonzero(obj > conf)[0]  # score = obj * cls <= obj: a cheap first cut
        rows, scores, ids = _best_class(pred[pre, 5 : 5 + nc], obj[pre], conf)
        idx = pre[rows]
        xy = (pred[idx, 0:2] + grid[idx]) * strides[idx]
        wh = np.exp(pred[idx, 2:4]) * strides[idx]
        result.append(Candidates(_xywh_to_xyxy(np.concatenate((xy, wh), 1)), scores, ids))
    return result


def decode_yolov5(out: np.ndarray, conf: float, nc: int) -> list[Candidates]:
    result = []
    for pred in out:
        obj = pred[:, 4]
        pre = np.nonzero(obj > conf)[0]
        rows, scores, ids = _best_class(pred[pre, 5 : 5 + nc], obj[pre], conf)
        idx = pre[rows]
        result.append(Candidates(_xywh_to_xyxy(pred[idx, 0:4]), scores, ids))
    return result


def decode_ultralytics(out: np.ndarray, conf: float, nc: int) -> list[Candidates]:
    result = []
    for pred in out:
        cls = pred[4 : 4 + nc]  # (C, N): reduce along C without transposing the whole block
        best = cls.max(0)
        idx = np.nonzero(best > conf)[0]
        sub = cls[:, idx]
        ids = sub.argmax(0)
        scores = best[idx].astype(np.float32)
        result.append(Candidates(_xywh_to_xyxy(pred[0:4, idx].T), scores, ids))
    return result


def decode_end2end(out: np.ndarray, conf: float) -> list[Candidates]:
    result = []
    for pred in out:
        keep = pred[:, 4] > conf
        rows = pred[keep]
        result.append(Candidates(rows[:, 0:4].astype(np.float32), rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64)))
    return result


def decode(
    layout: Layout, out: np.ndarray, input_hw: tuple[int, int], conf: float, nc: int | None
) -> list[Candidates]:
    if layout is Layout.YOLOX:
        return decode_yolox(out, input_hw, conf, nc or out.shape[2] - 5)
    if layout is Layout.ULTRALYTICS:
        return decode_ultralytics(out, conf, nc or out.shape[1] - 4)
    if layout is Layout.YOLOV5:
        return decode_yolov5(out, conf, nc or out.shape[2] - 5)
    return decode_end2end(out, conf)
