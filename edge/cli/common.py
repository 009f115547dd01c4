"""Pieces the commands share: detector options, progress bars, number parsing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from pydantic import ValidationError

from edge.detect.config import DetectorConfig
from edge.errors import ZastavaError

T = TypeVar("T")


def unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return v


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return v


def input_size(text: str) -> tuple[int, int]:
    """`640` or `384x640` (height x width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 640 or 384x640") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or any(p <= 0 or p % 32 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are positive multiples of 32, like 640 or 384x640")
    return parts[0], parts[1]


def add_detector_options(p: argparse.ArgumentParser, *, conf: float = 0.35, iou: float = 0.45) -> None:
    g = p.add_argument_group("detector")
    g.add_argument("--model", default="yolox-nano", help="registry name, file name or .onnx path (default: yolox-nano)")
    g.add_argument("--conf", type=unit_float, default=conf, help=f"minimum score (default {conf})")
    g.add_argument("--iou", type=unit_float, default=iou, help=f"NMS IoU threshold (default {iou})")
    g.add_argument("--classes", help="comma-separated class names or ids to keep, e.g. person,car")
    g.add_argument("--imgsz", type=input_size, help="input size for models with dynamic axes, e.g. 640 or 384x640")
    g.add_argument("--layout", choices=["auto", "yolox", "ultralytics", "yolov5", "end2end"], default="auto")
    g.add_argument("--provider", choices=["cpu", "cuda", "tensorrt", "openvino", "auto"], default="cpu")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads per run (0: auto)")
    g.add_argument("--runs", type=int, default=0, help="inference runs in flight on a video (0: auto, from the cores)")
    g.add_argument("--max-det", type=positive_int, default=300, help="most detections per frame")


def detector_config(args: argparse.Namespace) -> DetectorConfig:
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if getattr(args, "classes", None) else None
    try:
        return DetectorConfig(
            model=args.model,
            conf=args.conf,
            iou=args.iou,
            classes=classes,
            input_size=args.imgsz,
            layout=args.layout,
            provider=args.provider,
            threads=args.threads,
            runs=args.runs,
            max_det=args.max_det,
        )
    except ValidationError as e:
        err = e.errors()[0]
        raise ZastavaError(f"--{'.'.join(str(x) for x in err['loc'])}: {err['msg']}") from None


def progress(items: Iterable[T], *, total: int | None, desc: str, unit: str = "frame") -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; the items unchanged otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    with tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False) as bar:
        yield from bar


def lat_lon(text: str) -> tuple[float, float]:
    """argparse type for LAT,LON in degrees."""
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LAT,LON like 58.2123,11.5475") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"{text!r}: lat within -90..90, lon within -180..180")
    return lat, lon
