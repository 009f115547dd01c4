"""Drawing detections on frames, for people to look at (`detect --out`, later overlays)."""

from __future__ import annotations

import cv2
import numpy as np

# A fixed, high-contrast palette (BGR) so a class keeps its colour across frames and runs.
PALETTE = [
    (56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
    (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0),
    (147, 69, 52), (255, 115, 100), (236, 24, 0), (255, 56, 132), (133, 0, 82), (255, 56, 203),
    (200, 149, 255), (199, 55, 255),
]


def colour(class_id: int) -> tuple[int, int, int]:
    return PALETTE[class_id % len(PALETTE)]


def draw_label(img: np.ndarray, text: str, x: int, y: int, bg: tuple[int, int, int], scale: float) -> None:
    """Text on a filled box whose bottom-left is (x, y), kept inside the picture."""
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(min(max(0, x), max(0, img.shape[1] - tw - 2)))
    y = int(max(th + base + 2, y))
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 2, y), bg, -1)
    luminance = 0.114 * bg[0] + 0.587 * bg[1] + 0.299 * bg[2]
    fg = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(img, text, (x + 1, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, fg, thickness, cv2.LINE_AA)


def draw_detections(img: np.ndarray, detections, *, copy: bool = True) -> np.ndarray:
    """Boxes with class name and score; line width and text scale follow the picture size."""
    out = img.copy() if copy else img
    scale = max(0.4, min(out.shape[:2]) / 900)
    width = max(1, int(round(min(out.shape[:2]) / 360)))
    for (x1, y1, x2, y2), score, cid in zip(detections.xyxy, detections.scores, detections.class_ids):
        c = colour(int(cid))
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(out, p1, p2, c, width, cv2.LINE_AA)
        draw_label(out, f"{detections.class_name(int(cid))} {score:.2f}", p1[0], p1[1], c, scale)
    return out
