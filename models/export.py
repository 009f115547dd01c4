"""Ultralytics -> ONNX export with the settings Zastava's detector expects.

Needs the `export` extra (ultralytics, torch, onnx, onnxslim). Nothing in the edge runtime
imports this module; `zastava-edge models export` loads it on demand.

The exported file keeps Ultralytics' metadata (names, imgsz, stride, end2end), which the
detector reads to pick the layout and the class names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from edge.errors import ModelError, ZastavaError
from models.registry import download_dir


def export_ultralytics(
    weights: str,
    *,
    imgsz: tuple[int, int] = (640, 640),
    dynamic: bool = False,
    end2end: bool = False,
    opset: int | None = None,
    out: Path | None = None,
) -> Path:
    """Export `weights` (.pt, or a model .yaml for random weights) and return the .onnx path."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or analytics from the field
    try:
        from ultralytics import YOLO
    except ImportError as e:
        raise ZastavaError(
            "models export needs the export extra: pip install torch==2.14.1 torchvision==0.29.1 && "
            f"pip install 'zastava[export]' ({e})"
        ) from None

    src = Path(weights)
    is_yaml = src.suffix in (".yaml", ".yml")
    if src.suffix == ".pt" and not src.is_file():
        raise ModelError(
            f"{weights}: no such weights file (this machine cannot download Ultralytics weights; copy the .pt here)"
        )
    out = Path(out) if out else download_dir() / f"{src.stem}.onnx"
    if out.suffix != ".onnx":
        raise ZastavaError(f"{out}: the export output must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)

    # Ultralytics writes next to the weights (or into the working folder for a yaml); do that
    # in a scratch folder and move only the finished file into place.
    with tempfile.TemporaryDirectory(prefix="zastava-export-") as tmp:
        work = Path(tmp)
        source = str(src.resolve()) if src.is_file() else weights
        if src.is_file() and not is_yaml:
            source = str(shutil.copy2(src, work / src.name))
        kwargs = {"format": "onnx", "imgsz": list(imgsz), "dynamic": dynamic, "simplify": True, "nms": False}
        if end2end:
            kwargs["end2end"] = True
        if opset:
            kwargs["opset"] = opset
        cwd = os.getcwd()
        try:
            os.chdir(work)
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result path
                model = YOLO(source)
                produced = Path(model.export(**kwargs))
        except (FileNotFoundError, ValueError, TypeError, RuntimeError, SyntaxError, KeyError) as e:
            raise ModelError(f"{weights}: Ultralytics export failed: {type(e).__name__}: {e}") from None
        finally:
            os.chdir(cwd)
        if not produced.is_absolute():
            produced = work / produced
        shutil.move(str(produced), out)
    return out
