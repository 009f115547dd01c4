"""The detector: an ONNX Runtime session plus the adapter for its output layout.

    >>> det = Detector(DetectorConfig(model="yolox-nano", conf=0.35))   # doctest: +SKIP
    >>> d = det.detect(cv2.imread("dog.jpg"))                           # doctest: +SKIP
    >>> d.class_names(), d.scores                                       # doctest: +SKIP
    (['dog', 'bicycle', 'car'], array([0.86, 0.80, 0.80], dtype=float32))
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edge.detect.config import LIVE_DETECTOR_FIELDS, DetectorConfig
from edge.detect.layouts import CONVENTIONS, NEEDS_NMS, Candidates, Layout, decode, infer_layout, num_classes
from edge.detect.letterbox import Letterbox, letterbox_into
from edge.detect.providers import choose_providers, parallelism
from edge.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_INPUT = (640, 640)
MAX_NMS = 30_000  # candidates entering NMS, best first (as Ultralytics does)


@dataclass(frozen=True, slots=True)
class Detections:
    """Detections of one frame in source pixels: boxes (x1, y1, x2, y2), scores, class ids."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.scores)

    def class_name(self, class_id: int) -> str:
        return self.names[class_id] if 0 <= class_id < len(self.names) else f"class_{class_id}"

    def class_names(self) -> list[str]:
        return [self.class_name(int(c)) for c in self.class_ids]

    def records(self) -> list[dict]:
        """JSON-ready list of {box, class, class_id, score}."""
        return [
            {
                "box": [round(float(v), 2) for v in box],
                "class": self.class_name(int(c)),
                "class_id": int(c),
                "score": round(float(s), 4),
            }
            for box, s, c in zip(self.xyxy, self.scores, self.class_ids)
        ]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1][:300] if text else type(e).__name__


def _metadata_names(meta: dict[str, str]) -> list[str] | None:
    """Ultralytics stores names as a Python dict literal: "{0: 'person', 1: 'bicycle', ...}"."""
    raw = meta.get("names")
    if not raw:
        return None
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(parsed, dict):
        try:
            return [str(parsed[i]) for i in range(len(parsed))]
        except KeyError:
            return None
    if isinstance(parsed, (list, tuple)):
        return [str(n) for n in parsed]
    return None


def _metadata_imgsz(meta: dict[str, str]) -> tuple[int, int] | None:
    try:
        v = ast.literal_eval(meta.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return (int(v[0]), int(v[1]))
    return None


class Detector:
    """Runs one ONNX model on frames and returns Detections in source pixels.

    Thread safety: `infer` may be called from one thread while another preprocesses; ONNX
    Runtime sessions accept concurrent runs.
    """

    def __init__(self, config: DetectorConfig | None = None, *, model_path: Path | None = None):
        from models.registry import load_registry, resolve_model

        self.config = config = config or DetectorConfig()
        registry = load_registry()
        if model_path is None:
            resolved = resolve_model(config.model, registry)
            model_path, entry = resolved.path, resolved.entry
        else:
            entry = registry.by_file(Path(model_path).name)
        self.model_path = Path(model_path)
        self.threads, self.parallel_runs = parallelism(
            config.threads, config.runs, config.provider, len(os.sched_getaffinity(0))
        )
        self._session = self._open_session(self.model_path, config, self.threads)
        self.provider = self._session.get_providers()[0]

        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [list(i.shape) for i in inputs]
            raise ModelError(f"{self.model_path}: expected one image input [B,3,H,W], found inputs {shapes}")
        inp = inputs[0]
        self._input_name = inp.name
        self._output_name = outputs[0].name
        self._input_dtype = np.float16 if "float16" in inp.type else np.float32
        meta = self._session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)

        b, c, h, w = inp.shape
        if isinstance(c, int) and c != 3:
            raise ModelError(f"{self.model_path}: expected 3 input channels, found input shape {list(inp.shape)}")
        self.fixed_batch = b if isinstance(b, int) and b > 0 else None
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            self.input_hw = (h, w)
            if config.input_size and tuple(config.input_size) != self.input_hw:
                log.warning("%s: input fixed at %dx%d; ignoring input_size %s", self.model_path.name, h, w, config.input_size)
        else:
            self.input_hw = tuple(
                config.input_size or _metadata_imgsz(meta) or (entry.input_size if entry else None) or DEFAULT_INPUT
            )

        probe = self._run(np.zeros((self.fixed_batch or 1, 3, *self.input_hw), self._input_dtype))
        self.output_shape = tuple(probe.shape)
        detected = infer_layout(self.output_shape, self.input_hw, meta) if config.layout == "auto" else None
        self.layout = Layout(config.layout) if config.layout != "auto" else detected
        self._check_layout_fits()
        self.convention = CONVENTIONS[self.layout]

        metadata_names = _metadata_names(meta)
        names = config.names or metadata_names or (entry.class_names() if entry else None)
        nc = num_classes(self.layout, self.output_shape, len(metadata_names) if metadata_names else None)
        if names is None and nc == 80:
            from models.registry import LABELS_DIR

            names = (LABELS_DIR / "coco80.txt").read_text().split("\n")[:80]
        self.num_classes = nc
        self.names: tuple[str, ...] = tuple(names or (f"class_{i}" for i in range(nc or 0)))
        self.class_filter = self._class_filter(config.classes)
        log.info(
            "detector %s: layout %s, input %dx%d, batch %s, %d classes, provider %s, %d run(s) x %s thread(s)",
            self.model_path.name,
            self.layout.value,
            *self.input_hw,
            self.fixed_batch or "dynamic",
            len(self.names),
            self.provider,
            self.parallel_runs,
            self.threads or "auto",
        )

    # -- loading ---------------------------------------------------------------------------

    @staticmethod
    def _open_session(path: Path, config: DetectorConfig, threads: int) -> ort.InferenceSession:
        providers, warning = choose_providers(config.provider, ort.get_available_providers())
        if warning:
            log.warning(warning)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.inter_op_num_threads = 1
        if threads:
            so.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as e:  # ORT raises its own pybind exception types for bad files
            raise ModelError(f"{path}: not a loadable ONNX model: {_first_line(e)}") from None
        running = session.get_providers()[0]
        if running != providers[0]:
            log.warning("execution provider %s could not start; running on %s", providers[0], running)
        else:
            log.info("execution provider: %s", running)
        return session

    def _check_layout_fits(self) -> None:
        shape = self.output_shape
        ok = len(shape) == 3 and (
            (self.layout in (Layout.YOLOX, Layout.YOLOV5) and shape[2] >= 6)
            or (self.layout is Layout.ULTRALYTICS and shape[1] >= 5)
            or (self.layout is Layout.END2END and shape[2] >= 6)
        )
        if not ok:
            raise ModelError(f"{self.model_path}: layout {self.layout.value!r} does not fit output shape {list(shape)}")

    def _class_filter(self, classes: list[str | int] | None) -> np.ndarray | None:
        if not classes:
            return None
        ids = []
        for c in classes:
            if isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
                ids.append(int(c))
            elif c in self.names:
                ids.append(self.names.index(c))
            else:
                raise ModelError(f"classes: {c!r} is not a class of {self.model_path.name} (e.g. {', '.join(self.names[:8])})")
        return np.array(sorted(set(ids)), dtype=np.int64)

    def apply_live_settings(self, config: DetectorConfig) -> None:
        """Take new post-processing settings (thresholds, classes, box limits) on the running
        session; anything that needs a new session (model, layout, provider...) is refused."""
        old, new = self.config.model_dump(), config.model_dump()
        fixed = [k for k in old if k not in LIVE_DETECTOR_FIELDS and old[k] != new[k]]
        if fixed:
            raise ModelError(f"detector.{fixed[0]} cannot change on a running detector; restart the camera")
        class_filter = self._class_filter(config.classes)
        if config.names:
            self.names = tuple(config.names)
        self.config, self.class_filter = config, class_filter

    @property
    def dynamic_batch(self) -> bool:
        return self.fixed_batch is None

    # -- the detection path ------------------------------------------------------------------

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """Letterbox frames into one NCHW blob in the model family's pixel convention."""
        conv = self.convention
        canvas = np.empty((len(images), *self.input_hw, 3), dtype=np.uint8)
        boxes = [letterbox_into(img, canvas[i], conv.centred) for i, img in enumerate(images)]
        if conv.rgb:
            canvas = canvas[..., ::-1]
        blob = np.empty((len(images), 3, *self.input_hw), dtype=self._input_dtype)
        np.copyto(blob, canvas.transpose(0, 3, 1, 2), casting="unsafe")
        if conv.scale != 1.0:
            blob *= self._input_dtype(conv.scale)
        return blob, boxes

    def _run(self, blob: np.ndarray) -> np.ndarray:
        try:
            return self._session.run([self._output_name], {self._input_name: blob})[0]
        except Exception as e:
            raise ModelError(f"{self.model_path}: inference failed on input {list(blob.shape)}: {_first_line(e)}") from None

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """One session run; a fixed-batch model gets its batch padded with empty frames."""
        n = blob.shape[0]
        if self.fixed_batch and n != self.fixed_batch:
            if n > self.fixed_batch:
                return np.concatenate([self.infer(blob[i : i + self.fixed_batch]) for i in range(0, n, self.fixed_batch)])
            pad = np.zeros((self.fixed_batch - n, *blob.shape[1:]), blob.dtype)
            return self._run(np.concatenate([blob, pad]))[:n]
        return self._run(blob)

    def postprocess(self, output: np.ndarray, boxes: Sequence[Letterbox]) -> list[Detections]:
        cfg = self.config
        out = output.astype(np.float32, copy=False)
        candidates = decode(self.layout, out, self.input_hw, cfg.conf, self.num_classes)
        return [self._select(c, lb) for c, lb in zip(candidates, boxes)]

    def _select(self, c: Candidates, lb: Letterbox) -> Detections:
        cfg = self.config
        xyxy, scores, ids = c.xyxy, c.scores, c.class_ids
        if self.class_filter is not None and len(ids):
            keep = np.isin(ids, self.class_filter)
            xyxy, scores, ids = xyxy[keep], scores[keep], ids[keep]
        if len(scores):
            if NEEDS_NMS[self.layout]:
                keep = nms(xyxy, scores, ids, cfg.iou)
            else:
                keep = np.argsort(-scores, kind="stable")
            keep = keep[: cfg.max_det]
            xyxy, scores, ids = lb.to_source(xyxy[keep]), scores[keep], ids[keep]
            if cfg.min_box > 0 or cfg.max_box is not None:
                wh = xyxy[:, 2:4] - xyxy[:, 0:2]
                ok = wh.min(1) >= cfg.min_box
                if cfg.max_box is not None:
                    ok &= wh.max(1) <= cfg.max_box
                xyxy, scores, ids = xyxy[ok], scores[ok], ids[ok]
        else:
            xyxy = np.zeros((0, 4), np.float32)
        return Detections(xyxy.astype(np.float32), scores.astype(np.float32), ids.astype(np.int64), self.names)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect on several frames; one session run when the model's batch axis allows."""
        if not images:
            return []
        blob, boxes = self.preprocess(images)
        return self.postprocess(self.infer(blob), boxes)  # infer() pads or chunks a fixed batch

    def detect(self, image: np.ndarray) -> Detections:
        return self.detect_batch([image])[0]


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> np.ndarray:
    """Class-aware greedy NMS; indices of kept boxes, best score first.

    Keeps the same boxes in the same order as torchvision's batched_nms (what Ultralytics and
    YOLOv5 use). One difference needs care: for zero-area boxes OpenCV's IoU is 0/0 = NaN,
    which OpenCV treats as overlapping and torchvision as not; such boxes overlap nothing, so
    they bypass OpenCV and are all kept, as torchvision keeps them.
    """
    order = np.argsort(-scores, kind="stable")[:MAX_NMS]
    boxes = xyxy[order]
    wh = boxes[:, 2:4] - boxes[:, :2]
    solid = (wh > 0).all(1)
    kept = order[~solid]
    if solid.any():
        xywh = np.concatenate([boxes[solid, :2], wh[solid]], 1)
        idx = cv2.dnn.NMSBoxesBatched(xywh, scores[order][solid], class_ids[order][solid].astype(np.int32), -1.0, iou)
        kept = np.concatenate([order[solid][np.asarray(idx, dtype=np.int64).reshape(-1)], kept])
    return kept[np.argsort(-scores[kept], kind="stable")]
