"""Throughput of the detection path against raw ONNX Runtime inference, measured side by side.

The machines this runs on share their CPUs, and their speed drifts by a factor of two within
seconds. So every figure comes from interleaved rounds: in each round the raw inference loops
and the full path run one after another on the same number of frames, each round yields its
own ratios, and the report gives medians over the rounds.

Raw inference is measured two ways, both on a blob prepared once from the source's first frame:
- single: one run at a time with ONNX Runtime's threads over all cores (the usual loop);
- parallel: the detector's own layout (`runs` in flight x `threads` each), what the path uses.
The headline ratio divides the full path by the faster of the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from edge.detect.config import DetectorConfig
from edge.detect.detector import Detector
from edge.detect.stream import DetectionStream
from edge.errors import SourceError
from edge.sources import Frame, open_source


def median_interval(values: list[float], level: float = 0.95, resamples: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of `values` (scipy's bootstrap)."""
    from scipy.stats import bootstrap  # only the benches need it; scipy.stats is slow to import

    ci = bootstrap((np.asarray(values, dtype=float),), np.median, n_resamples=resamples, confidence_level=level,
                   method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class BenchResult:
    model: str
    source: str
    provider: str
    input_size: str
    frames_per_round: int
    rounds: int
    runs: int
    threads: int
    raw_single_fps: float
    raw_parallel_fps: float
    raw_best_fps: float
    full_fps: float
    ratio: float  # full path / best raw, median of per-round ratios
    ratio_vs_single: float  # full path / single-run raw, median of per-round ratios
    latency_p50_ms: float
    latency_p99_ms: float
    decode_ms: float
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _cycle(spec: str) -> Iterator[Frame]:
    """Frames of a file source for ever (reopened at its end); a live source as it comes."""
    while True:
        source = open_source(spec)
        n = 0
        for frame in source:
            n += 1
            yield frame
        source.close()
        if n == 0 or source.is_live:
            raise SourceError(f"{spec}: source ended during the benchmark")


def _take(it: Iterator[Frame], n: int) -> Iterator[Frame]:
    for _ in range(n):
        yield next(it)


def _stage_times(detector: Detector, frames: Iterator[Frame], n: int = 30) -> tuple[float, float, float, float]:
    """Median ms of decode, preprocess, infer and postprocess, one frame at a time."""
    dec, pre, inf, post = [], [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        frame = next(frames)
        t1 = time.perf_counter()
        blob, boxes = detector.preprocess([frame.image])
        t2 = time.perf_counter()
        out = detector.infer(blob)
        t3 = time.perf_counter()
        detector.postprocess(out, boxes)
        t4 = time.perf_counter()
        dec.append(t1 - t0), pre.append(t2 - t1), inf.append(t3 - t2), post.append(t4 - t3)
    return tuple(statistics.median(x) * 1000 for x in (dec, pre, inf, post))  # type: ignore[return-value]


def run_bench(
    config: DetectorConfig,
    source: str,
    *,
    frames_per_round: int = 60,
    rounds: int = 12,
    on_round: Callable[[int, dict], None] | None = None,
) -> BenchResult:
    detector = Detector(config)
    single = Detector(config.model_copy(update={"threads": 0, "runs": 1}), model_path=detector.model_path)
    frames = _cycle(source)
    first = next(frames)
    blob, _ = detector.preprocess([first.image])
    pool = ThreadPoolExecutor(detector.parallel_runs)

    def raw_single() -> float:
        t = time.perf_counter()
        for _ in range(frames_per_round):
            single.infer(blob)
        return frames_per_round / (time.perf_counter() - t)

    def raw_parallel() -> float:
        t = time.perf_counter()
        list(pool.map(lambda _: detector.infer(blob), range(frames_per_round)))
        return frames_per_round / (time.perf_counter() - t)

    latencies: list[float] = []

    def full() -> float:
        stream = DetectionStream(detector, _take(frames, frames_per_round))
        t = time.perf_counter()
        n = sum(1 for _ in stream)
        fps = n / (time.perf_counter() - t)
        latencies.extend(stream.latencies)
        return fps

    raw_single(), raw_parallel(), full()  # warm-up: allocator, thread pools, decoder
    latencies.clear()
    rows = []
    try:
        for i in range(rounds):
            row = {"raw_single": raw_single(), "raw_parallel": raw_parallel(), "full": full()}
            row["ratio"] = row["full"] / max(row["raw_single"], row["raw_parallel"])
            row["ratio_vs_single"] = row["full"] / row["raw_single"]
            rows.append(row)
            if on_round:
                on_round(i, row)
        stages = _stage_times(detector, frames)
    finally:
        pool.shutdown()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lat = np.array(latencies) * 1000
    return BenchResult(
        model=detector.model_path.name,
        source=source,
        provider=detector.provider,
        input_size=f"{detector.input_hw[0]}x{detector.input_hw[1]}",
        frames_per_round=frames_per_round,
        rounds=rounds,
        runs=detector.parallel_runs,
        threads=detector.threads,
        raw_single_fps=med("raw_single"),
        raw_parallel_fps=med("raw_parallel"),
        raw_best_fps=max(med("raw_single"), med("raw_parallel")),
        full_fps=med("full"),
        ratio=med("ratio"),
        ratio_vs_single=med("ratio_vs_single"),
        latency_p50_ms=float(np.percentile(lat, 50)),
        latency_p99_ms=float(np.percentile(lat, 99)),
        decode_ms=stages[0],
        preprocess_ms=stages[1],
        infer_ms=stages[2],
        postprocess_ms=stages[3],
    )


@dataclass(frozen=True)
class PipelineBenchResult:
    source: str
    rounds: int
    frames_per_round: int
    tiles: int
    objects_mean: float  # confirmed tracks per frame
    detections_mean: float
    detection_ms: float  # the detection path's time per frame (1 / its throughput)
    track_rules_ms: float  # tracker update + rule evaluation per frame
    share: float  # track_rules_ms / detection_ms, median of per-round ratios

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def crowd_scene(per_frame: list, width: int, tiles: int, shift: int) -> list:
    """A scene with `tiles` times the objects, built from real detections: tile k holds the
    detections of frame i + k*shift (cyclically), moved k*width to the right. Assumption: people
    of one recording at other moments walk like a crowd beside it would; each tile keeps real
    motion, real score distributions and real box sizes."""
    from edge.detect.detector import Detections

    n = len(per_frame)
    scene = []
    for i in range(n):
        parts = [per_frame[(i + k * shift) % n] for k in range(tiles)]
        xyxy = np.concatenate([d.xyxy + np.array([k * width, 0, k * width, 0], np.float32) for k, d in enumerate(parts)])
        scene.append(Detections(xyxy, np.concatenate([d.scores for d in parts]),
                                np.concatenate([d.class_ids for d in parts]), parts[0].names))
    return scene


def detection_path_timer(detector: Detector, source: str, frames: int) -> Callable[[], float]:
    """A function that runs the full detection path over the next `frames` frames of `source`
    (looping) and returns its time per frame in ms."""
    cycle = _cycle(source)

    def detection_path() -> float:
        stream = DetectionStream(detector, _take(cycle, frames))
        t = time.perf_counter()
        n = sum(1 for _ in stream)
        return (time.perf_counter() - t) / n * 1000

    return detection_path


def interleaved_shares(detection_path: Callable[[], float], extra: Callable[[], float], key: str, rounds: int,
                       on_round: Callable[[int, dict], None] | None, after_warmup: Callable[[], None]) -> list[dict]:
    """A warm-up, then `rounds` rounds of the detection path and an extra stage one after the
    other; each row holds both times (ms/frame) and their ratio, `share`."""
    detection_path(), extra()
    after_warmup()
    rows = []
    for i in range(rounds):
        row = {"detection_ms": detection_path(), key: extra()}
        row["share"] = row[key] / row["detection_ms"]
        rows.append(row)
        if on_round:
            on_round(i, row)
    return rows


def run_pipeline_bench(
    config,
    camera_id: str,
    source: str,
    *,
    objects: int = 50,
    frames_per_round: int = 60,
    rounds: int = 12,
    on_round: Callable[[int, dict], None] | None = None,
) -> PipelineBenchResult:
    """Tracker + rules time per frame with `objects` tracks in view, against the detection path."""
    import datetime as dt

    from edge.rules import RuleEngine
    from edge.track import Tracker

    camera = config.camera(camera_id)
    detector = Detector(camera.detector)
    frames = list(open_source(source))
    stamps = [f.timestamp for f in frames]
    width, height = frames[0].width, frames[0].height
    per_frame = [d for _, d in DetectionStream(detector, iter(frames))]
    del frames
    # Enough tiles that the confirmed tracks per frame reach `objects` on average.
    probe = Tracker(camera.tracker)
    counts = [len(probe.update(d, t)) for d, t in zip(per_frame, stamps)]
    per_tile = max(1.0, float(np.mean(counts[len(counts) // 4 :])))
    tiles = max(1, int(np.ceil(objects / per_tile)))
    scene = crowd_scene(per_frame, width, tiles, shift=len(per_frame) // max(tiles, 1) or 1)
    size = (width * tiles, height)
    wall = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    detection_path = detection_path_timer(detector, source, frames_per_round)

    tracker, rules = Tracker(camera.tracker), RuleEngine(camera)
    step = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.04
    clock = {"t": 0.0, "i": 0}
    tracked: list[int] = []

    def track_rules() -> float:
        # One tracker for the whole run on an advancing clock, cycling through the scene, so
        # every round meets a scene in full flow (the wrap-around is one jump per cycle).
        t0 = time.perf_counter()
        for _ in range(frames_per_round):
            clock["t"] += step
            clock["i"] = (clock["i"] + 1) % len(scene)
            tracks = tracker.update(scene[clock["i"]], clock["t"])
            rules.evaluate(tracks, clock["t"], wall, size)
            tracked.append(len(tracks))
        return (time.perf_counter() - t0) / frames_per_round * 1000

    rows = interleaved_shares(detection_path, track_rules, "track_rules_ms", rounds, on_round, tracked.clear)
    return PipelineBenchResult(
        source=source,
        rounds=rounds,
        frames_per_round=frames_per_round,
        tiles=tiles,
        objects_mean=float(np.mean(tracked)),
        detections_mean=float(np.mean([len(d) for d in scene])),
        detection_ms=statistics.median(r["detection_ms"] for r in rows),
        track_rules_ms=statistics.median(r["track_rules_ms"] for r in rows),
        share=statistics.median(r["share"] for r in rows),
    )
