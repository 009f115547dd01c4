"""Choosing ONNX Runtime execution providers, with an honest fallback to the CPU."""

from __future__ import annotations

ORT_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
# What each request tries, best first; CPU always closes the list so a session can be built.
PREFERENCE = {
    "cpu": ["cpu"],
    "cuda": ["cuda", "cpu"],
    "tensorrt": ["tensorrt", "cuda", "cpu"],
    "openvino": ["openvino", "cpu"],
    # TensorRT is left out of auto: building its engine takes minutes on first start.
    "auto": ["cuda", "openvino", "cpu"],
}


def choose_providers(requested: str, available: list[str]) -> tuple[list[str], str | None]:
    """ORT provider names to pass to a session, and a warning when the request cannot be met."""
    wanted = [ORT_NAMES[p] for p in PREFERENCE[requested]]
    chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
    warning = None
    if requested not in ("auto", "cpu") and chosen[0] != wanted[0]:
        warning = (
            f"execution provider {requested!r} ({wanted[0]}) is not in this onnxruntime build "
            f"(available: {', '.join(available)}); falling back to {chosen[0]}"
        )
    return chosen, warning


def parallelism(threads: int, runs: int, provider: str, cores: int) -> tuple[int, int]:
    """(intra-op threads per run, runs in flight) for `cores` CPU cores; 0 means choose.

    On CPU, whole frames in parallel beat threads within one frame (measured on 2 cores:
    2 runs x 1 thread gave 116 inferences/s, 1 run x 2 threads 91), so auto fills the cores
    with single-threaded runs, at most 4 at once to bound memory and latency.
    """
    cores = max(1, cores)
    if provider != "cpu" and not threads and not runs:
        return 0, 2  # an accelerator: let ORT pick CPU threads, keep one run queued behind another
    if not runs:
        runs = min(4, cores) if not threads else max(1, cores // threads)
    if not threads:
        threads = max(1, cores // runs)
    return threads, runs
