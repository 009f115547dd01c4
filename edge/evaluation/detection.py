"""Detection accuracy on a YOLO-format dataset, scored by an established COCO evaluator.

Dataset layout (that of coco128): DIR/<name>.yaml with `path`, `val`/`train` image folders and
`names`; or DIR/images/... with labels at the same relative path under DIR/labels/ (`.txt`,
one `class cx cy w h` line per box, normalised 0..1). Images without a label file have no
objects; label files without an image are ignored.

AP is computed by faster-coco-eval (a drop-in, faster implementation of pycocotools' COCOeval);
pycocotools is used when asked for. Hand-written AP would be one more thing to prove.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from edge.errors import DatasetError, SourceError, ZastavaError
from edge.sources import IMAGE_EXTENSIONS, read_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    root: Path
    images: list[Path]
    names: list[str] | None

    def label_path(self, image: Path) -> Path:
        """YOLO convention: the last /images/ in the path becomes /labels/, suffix .txt."""
        parts = list(image.parts)
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] == "images":
                parts[i] = "labels"
                return Path(*parts).with_suffix(".txt")
        return image.with_suffix(".txt")


def load_dataset(root: str | Path, split: str = "val") -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    names = None
    image_dir = None
    for spec in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        try:
            cfg = yaml.safe_load(spec.read_text()) or {}
        except yaml.YAMLError as e:
            raise DatasetError(f"{spec}: not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(cfg, dict) or not (split in cfg or "train" in cfg):
            continue
        base = (spec.parent / str(cfg.get("path", "."))).resolve()
        image_dir = base / str(cfg.get(split) or cfg["train"])
        raw = cfg.get("names")
        if isinstance(raw, dict):
            names = [str(raw[k]) for k in sorted(raw)]
        elif isinstance(raw, list):
            names = [str(n) for n in raw]
        break
    if image_dir is None:
        image_dir = root / "images" if (root / "images").is_dir() else root
    if not image_dir.is_dir():
        raise DatasetError(f"{image_dir}: image folder named by the dataset does not exist")
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DatasetError(f"{image_dir}: no images found")
    return Dataset(root=root, images=images, names=names)


@dataclass
class LabelIssues:
    malformed_lines: list[str] = field(default_factory=list)
    unreadable_images: list[str] = field(default_factory=list)


def read_labels(path: Path, width: int, height: int, issues: LabelIssues) -> list[tuple[int, list[float]]]:
    """(class, [x, y, w, h] in pixels) per valid line; bad lines are recorded, not fatal."""
    if not path.is_file():
        return []
    boxes = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:5])
            if len(fields) != 5 or not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
                raise ValueError
        except ValueError:
            issues.malformed_lines.append(f"{path}:{n}")
            continue
        boxes.append((cls, [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]))
    return boxes


@dataclass(frozen=True)
class DetectionScore:
    map50_95: float
    map50: float
    images: int
    labelled_boxes: int
    detections: int
    evaluator: str
    issues: LabelIssues

    def as_dict(self) -> dict:
        return {
            "map50_95": round(self.map50_95, 4),
            "map50": round(self.map50, 4),
            "images": self.images,
            "labelled_boxes": self.labelled_boxes,
            "detections": self.detections,
            "evaluator": self.evaluator,
            "malformed_label_lines": len(self.issues.malformed_lines),
            "unreadable_images": len(self.issues.unreadable_images),
        }


def class_mapping(model_names: tuple[str, ...], dataset_names: list[str] | None) -> dict[int, int]:
    """Model class id -> dataset class id, by name; identity when the dataset names none."""
    if dataset_names is None:
        return {i: i for i in range(len(model_names))}
    index = {n: i for i, n in enumerate(dataset_names)}
    return {i: index[n] for i, n in enumerate(model_names) if n in index}


def evaluate_detector(
    detector,
    dataset: Dataset,
    *,
    evaluator: str = "faster-coco-eval",
    progress: Callable[[Iterator], Iterator] = lambda it: it,
) -> DetectionScore:
    """Run `detector` over every image and score it with COCO mAP."""
    mapping = class_mapping(detector.names, dataset.names)
    if not mapping:
        raise DatasetError("the model's classes share no name with the dataset's; nothing to evaluate")
    issues = LabelIssues()
    images, annotations, results = [], [], []
    for path in progress(iter(dataset.images)):
        try:
            img = read_image(path)
        except SourceError as e:
            issues.unreadable_images.append(str(path))
            log.warning("skipping %s", e)
            continue
        h, w = img.shape[:2]
        image_id = len(images) + 1
        images.append({"id": image_id, "width": w, "height": h, "file_name": path.name})
        for cls, box in read_labels(dataset.label_path(path), w, h, issues):
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": cls, "bbox": box,
                 "area": box[2] * box[3], "iscrowd": 0}
            )
        det = detector.detect(img)
        for (x1, y1, x2, y2), s, c in zip(det.xyxy.tolist(), det.scores.tolist(), det.class_ids.tolist()):
            if c in mapping:
                results.append({"image_id": image_id, "category_id": mapping[c], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    if issues.malformed_lines:
        log.warning("%d malformed label line(s) skipped, first: %s", len(issues.malformed_lines), issues.malformed_lines[0])
    n_classes = max([len(dataset.names or [])] + [a["category_id"] + 1 for a in annotations] + [len(detector.names)])
    gt = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": (dataset.names or [])[i] if i < len(dataset.names or []) else str(i)} for i in range(n_classes)],
    }
    stats = coco_map(gt, results, evaluator)
    return DetectionScore(stats[0], stats[1], len(images), len(annotations), len(results), evaluator, issues)


def coco_map(gt: dict, results: list[dict], evaluator: str = "faster-coco-eval") -> tuple[float, float]:
    """(mAP50-95, mAP50) from a COCO ground-truth dict and a list of result dicts."""
    if not results:
        return 0.0, 0.0
    if evaluator == "faster-coco-eval":
        try:
            from faster_coco_eval import COCO, COCOeval_faster as COCOeval
        except ImportError:
            raise ZastavaError("models eval needs faster-coco-eval: pip install 'zastava[eval]'") from None
    elif evaluator == "pycocotools":
        try:
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
        except ImportError:
            raise ZastavaError("--evaluator pycocotools needs pycocotools: pip install pycocotools") from None
    else:
        raise ZastavaError(f"unknown evaluator {evaluator!r}: use faster-coco-eval or pycocotools")
    with contextlib.redirect_stdout(io.StringIO()):  # both evaluators print progress tables
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])
