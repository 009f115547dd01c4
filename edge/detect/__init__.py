"""ONNX detection: a Runtime session plus one adapter per output layout."""

from edge.detect.config import DetectorConfig
from edge.detect.detector import Detections, Detector
from edge.detect.layouts import Layout

__all__ = ["DetectorConfig", "Detections", "Detector", "Layout"]
