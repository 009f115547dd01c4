"""Zastava edge node: frame sources, ONNX detection and (later) tracking, rules and alerts."""

__version__ = "0.1.0"
