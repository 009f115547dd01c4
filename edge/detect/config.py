"""Detector settings, validated before a model is loaded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Settings a running session can take between two frames; any other change needs a new session.
LIVE_DETECTOR_FIELDS = frozenset({"conf", "iou", "classes", "min_box", "max_box", "max_det", "names"})

Provider = Literal["cpu", "cuda", "tensorrt", "openvino", "auto"]
LayoutName = Literal["auto", "yolox", "ultralytics", "yolov5", "end2end"]


class DetectorConfig(BaseModel):
    """How a camera's frames become detections."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("yolox-nano", description="Registry name, model file name or path to an .onnx file.")
    layout: LayoutName = Field("auto", description="Output layout; 'auto' reads it from the output shape and metadata.")
    input_size: tuple[int, int] | None = Field(
        None, description="Model input [height, width] for models with dynamic spatial axes; fixed models use their own."
    )
    conf: float = Field(0.35, ge=0.0, le=1.0, description="Minimum detection score.")
    iou: float = Field(0.45, ge=0.0, le=1.0, description="IoU above which NMS suppresses a box of the same class.")
    classes: list[str | int] | None = Field(None, description="Keep only these classes (names or indices); all when unset.")
    min_box: float = Field(0.0, ge=0.0, description="Drop boxes narrower or shorter than this, in source pixels.")
    max_box: float | None = Field(None, gt=0.0, description="Drop boxes wider or taller than this, in source pixels.")
    max_det: int = Field(300, ge=1, le=10_000, description="Most detections kept per frame, best first.")
    provider: Provider = Field("cpu", description="ONNX Runtime execution provider; falls back to CPU when absent.")
    threads: int = Field(0, ge=0, le=256, description="ONNX Runtime intra-op threads per run; 0: chosen with `runs`.")
    runs: int = Field(
        0, ge=0, le=64, description="Inference runs in flight on a stream (frames overlapped); 0: chosen from the cores."
    )
    names: list[str] | None = Field(None, description="Class names, overriding the model's metadata and the registry.")

    @field_validator("input_size")
    @classmethod
    def _input_multiple_of_32(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and (v[0] % 32 or v[1] % 32 or min(v) <= 0):
            raise ValueError("height and width must be positive multiples of 32")
        return v

    @model_validator(mode="after")
    def _box_bounds(self) -> DetectorConfig:
        if self.max_box is not None and self.max_box < self.min_box:
            raise ValueError(f"max_box ({self.max_box}) is below min_box ({self.min_box})")
        return self
