"""Plot extraction on full-size radar video, and what it costs the camera pipeline beside it.

Sweeps: `azimuths` x `cells` cells of 16-bit square-law video (Rayleigh noise, mean 32 counts)
with 200 point targets and a coast, made up front (four sweeps: the first teaches the clutter map,
the other three, with the targets elsewhere, are measured in turn). Extraction is what the node does per sweep: CA-CFAR, the clutter map, and
clustering into plots. Figures: seconds per sweep, cells per second, and the real-time factor
(rotation period / time per sweep), medians of `rounds`. Ingest is measured too: each sweep as
the CAT240 datagrams a radar sends (one zlib-compressed 16-bit radial per datagram, encoded up
front), decoded and assembled into the sweep as a node's feed does.

Side by side (as edge.bench, interleaved rounds): the camera's detection path on a real video
alone, then the same path while a thread ingests and extracts plots at the radar's own pace (one
sweep per rotation period): the drop is 1 - (frames/s with) / (frames/s without), per round; medians.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class VideoBenchResult:
    azimuths: int
    cells: int
    rotation_s: float
    rounds: int
    extract_s: float  # per sweep, median
    ingest_s: float  # CAT240 decode and sweep assembly per sweep, median
    cells_per_s: float
    realtime_factor: float  # rotation_s / extract_s
    plots_per_sweep: float
    camera_ms: float | None = None  # detection path per frame, alone
    camera_with_radar_ms: float | None = None
    camera_drop: float | None = None  # 1 - fps with / fps without, median of rounds
    beside_ingest: bool = True  # the thread beside the camera ingested the sweeps too

    def as_dict(self) -> dict:
        # Six significant figures, not decimal places: a small sweep's extraction takes a few
        # milliseconds, and five places of a second lost a tenth of a percent of it.
        return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in asdict(self).items()}


def sweep_datagrams(sweep, cell_m: float = 15.0) -> list[bytes]:
    """The sweep as CAT240 datagrams: one compressed 16-bit radial each, north first."""
    from edge.radar.cat240 import LIGHT_SPEED, VideoRadial, encode_video

    n = sweep.power.shape[0]
    width = 360.0 / n
    return [encode_video(VideoRadial(1, 2, i, i * width, (i + 1) * width, 0, 2 * cell_m / LIGHT_SPEED, row, bits=16,
                                     compressed=True, time_of_day=float(sweep.times[i]))) for i, row in enumerate(sweep.power)]


def make_sweeps(azimuths: int, cells: int, n: int = 2, seed: int = 0):
    from edge.radar.sweep import Sweep

    rng = np.random.default_rng(seed)
    sweeps = []
    for k in range(n):
        p = rng.exponential(32.0, (azimuths, cells))
        a = rng.integers(0, azimuths - 8, 200)
        r = rng.integers(40, cells - 40, 200)
        for d in range(6):
            p[a + d, r] += 32.0 * 300 * np.exp(-((d - 2.5) ** 2) / 3)
        p[azimuths // 3: azimuths // 2, int(cells * 0.9):] += 32.0 * 3000  # a coast
        power = np.minimum(np.rint(p), 65535).astype(np.uint16)
        sweeps.append(Sweep(k, power, np.linspace(0, 2.5, azimuths), np.ones(azimuths, bool), 15.0))
    return sweeps


def run_video_bench(*, azimuths: int = 4096, cells: int = 4096, rotation_s: float = 2.5, rounds: int = 5,
                    camera_source: str | None = None, model: str = "yolox-nano", frames_per_round: int = 60,
                    beside_ingest: bool = True,
                    on_round: Callable[[int, dict], None] | None = None) -> VideoBenchResult:
    """`beside_ingest`: the thread beside the camera ingests each sweep as well as extracting its
    plots (what a node with a CAT240 feed does); False: extraction only, from the decoded sweeps."""
    from edge.radar.video import CfarExtractor
    from edge.radar.video_config import RadarVideoSettings

    from edge.radar.cat240 import decode_block
    from edge.radar.sweep import SweepAssembler

    first, *sweeps = make_sweeps(azimuths, cells, n=4)
    extractor = CfarExtractor(RadarVideoSettings(clutter_map={"learn_scans": 1}))
    extractor.extract(first)  # the clutter map's first sweep (it learns, gives no plots); the targets move after it
    datagrams = [sweep_datagrams(s) for s in sweeps]
    assembler = SweepAssembler(azimuths, cells)
    counter = {"k": 0}

    def one_sweep() -> tuple[float, float, int]:
        """(ingest s, extraction s, plots) of the next sweep."""
        k = counter["k"] % len(sweeps)
        counter["k"] += 1
        t0 = time.perf_counter()
        for d in datagrams[k]:
            for radial in decode_block(d):
                assembler.add(radial, radial.time_of_day)
        sweep = assembler.flush()
        t1 = time.perf_counter()
        plots = extractor.extract(sweep)
        return t1 - t0, time.perf_counter() - t1, len(plots)

    detection_path = None
    if camera_source:
        from edge.bench import detection_path_timer
        from edge.detect import Detector, DetectorConfig

        detection_path = detection_path_timer(Detector(DetectorConfig(model=model)), camera_source, frames_per_round)
        detection_path()  # warm-up

    def with_radar() -> float:
        stop = threading.Event()

        def paced() -> None:
            while not stop.is_set():
                if beside_ingest:
                    ingest, extract, _ = one_sweep()
                else:
                    t = time.perf_counter()
                    extractor.extract(sweeps[counter["k"] % len(sweeps)])
                    counter["k"] += 1
                    ingest, extract = 0.0, time.perf_counter() - t
                stop.wait(max(0.0, rotation_s - ingest - extract))

        th = threading.Thread(target=paced, daemon=True)
        th.start()
        try:
            return detection_path()
        finally:
            stop.set()
            th.join()

    rows = []
    for i in range(rounds):
        ingest, spent, n = one_sweep()
        row = {"ingest_s": ingest, "extract_s": spent, "plots": n}
        if detection_path is not None:
            row["camera_ms"] = detection_path()
            row["camera_with_radar_ms"] = with_radar()
            row["drop"] = 1.0 - row["camera_ms"] / row["camera_with_radar_ms"]
        rows.append(row)
        if on_round:
            on_round(i, row)
    med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
    extract = med("extract_s")
    return VideoBenchResult(azimuths, cells, rotation_s, rounds, extract, med("ingest_s"), azimuths * cells / extract,
                            rotation_s / extract, med("plots"), med("camera_ms") if detection_path else None,
                            med("camera_with_radar_ms") if detection_path else None,
                            med("drop") if detection_path else None, beside_ingest)
