"""`zastava-edge models list|pull|export|eval`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.common import add_detector_options, detector_config, input_size, progress
from edge.errors import ModelError, ZastavaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, export and evaluate models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", parser_class=type(p))
    msub.required = True

    ls = msub.add_parser("list", help="known models and whether their files are here")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=run_list)

    pull = msub.add_parser("pull", help="download a model and verify its sha256")
    pull.add_argument("name")
    pull.add_argument("--dest", type=Path, help="folder to write to (default: $ZASTAVA_MODELS, else models/)")
    pull.add_argument("--url", help="download from this mirror instead; the registry's sha256 is still checked")
    pull.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up")
    pull.set_defaults(run=run_pull)

    exp = msub.add_parser("export", help="export an Ultralytics model (.pt weights or .yaml) to ONNX (export extra)")
    exp.add_argument("weights", help="Ultralytics weights (.pt) or model yaml (e.g. yolov8n.yaml: random weights)")
    exp.add_argument("--imgsz", type=input_size, default=(640, 640), help="input size (default 640)")
    exp.add_argument("--dynamic", action="store_true", help="dynamic batch and input size (for batch inference)")
    exp.add_argument("--end2end", action="store_true", help="NMS-free [B,K,6] output (YOLO26 / YOLOv10 heads)")
    exp.add_argument("--opset", type=int, help="ONNX opset (default: Ultralytics' choice)")
    exp.add_argument("--out", type=Path, help="output .onnx path (default: models folder / <name>.onnx)")
    exp.set_defaults(run=run_export)

    ev = msub.add_parser("eval", help="mAP of the detection path on a YOLO-format dataset")
    ev.add_argument("--data", required=True, type=Path, help="dataset folder (the layout of coco128)")
    ev.add_argument("--split", default="val", help="dataset yaml key naming the images (default val, else train)")
    ev.add_argument("--evaluator", choices=["faster-coco-eval", "pycocotools"], default="faster-coco-eval")
    ev.add_argument("--json", action="store_true", help="last line: JSON with map50_95 and map50")
    # COCO evaluation convention: keep low-score boxes, they only add to the precision-recall curve.
    add_detector_options(ev, conf=0.001, iou=0.65)
    ev.set_defaults(run=run_eval)


def run_list(args: argparse.Namespace) -> int:
    from models.registry import load_registry, resolve_model

    reg = load_registry()
    rows = []
    for e in reg.entries.values():
        try:
            where = str(resolve_model(e.name, reg).path)
        except ModelError:
            where = None
        rows.append(
            {
                "name": e.name,
                "default": e.name == reg.default,
                "layout": e.layout,
                "input": f"{e.input_size[0]}x{e.input_size[1]}",
                "license": e.license,
                "file": e.file,
                "path": where,
                "source": "download" if e.url else f"export {e.export}" if e.export else "-",
                "description": e.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'NAME':<12} {'LAYOUT':<12} {'INPUT':<8} {'LICENSE':<11} {'GET BY':<22} HERE"
    print(header)
    for r in rows:
        name = r["name"] + (" *" if r["default"] else "")
        print(f"{name:<12} {r['layout']:<12} {r['input']:<8} {r['license']:<11} {r['source']:<22} {r['path'] or 'no'}")
    print("* default model", file=sys.stderr)
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from models.registry import load_registry, pull

    entry = load_registry().get(args.name)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=entry.size_bytes, unit="B", unit_scale=True, desc=entry.name, file=sys.stderr, leave=False)

    def on_progress(received: int, total: int | None) -> None:
        if bar is not None:
            bar.total = total
            bar.n = received
            bar.refresh()

    try:
        path = pull(entry, args.dest, timeout_s=args.timeout, progress=on_progress, url=args.url)
    finally:
        if bar is not None:
            bar.close()
    print(path)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from models.export import export_ultralytics

    path = export_ultralytics(
        args.weights, imgsz=args.imgsz, dynamic=args.dynamic, end2end=args.end2end, opset=args.opset, out=args.out
    )
    print(path)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from edge.detect import Detector
    from edge.evaluation.detection import evaluate_detector, load_dataset

    dataset = load_dataset(args.data, args.split)
    detector = Detector(detector_config(args))
    score = evaluate_detector(
        detector,
        dataset,
        evaluator=args.evaluator,
        progress=lambda it: progress(it, total=len(dataset.images), desc="eval", unit="image"),
    )
    if score.images == 0:
        raise ZastavaError(f"{args.data}: no image could be read")
    print(
        f"mAP50-95 {score.map50_95:.4f}  mAP50 {score.map50:.4f}  "
        f"({score.images} images, {score.labelled_boxes} labelled boxes, {score.detections} detections, "
        f"{detector.model_path.name} at {detector.input_hw[0]}x{detector.input_hw[1]}, {score.evaluator})"
    )
    if score.issues.malformed_lines or score.issues.unreadable_images:
        print(
            f"skipped {len(score.issues.malformed_lines)} malformed label line(s) and "
            f"{len(score.issues.unreadable_images)} unreadable image(s)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(score.as_dict()))
    return 0
