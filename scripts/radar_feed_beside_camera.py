"""What a live radar feed costs beside the camera's loop, ingested as a node ingests it.

An experiment beside `zastava-edge bench --fusion` (which decodes each frame's TTM sentences
inline, back to back): here a node's radar picture runs its UDP feed thread (RadarPicture.start),
and a sender process sends it TTM sentences of 200 targets at 1 Hz (200 datagrams a second,
one sentence each, as an ARPA radar sends them), while the main thread runs the camera's loop
on the real video (decode, detection, tracker). Interleaved rounds (as edge.bench): the camera
alone, then with the feed read one datagram at a time (`coalesce_s: 0`), then with bursts
coalesced (`coalesce_s` at its default); the sender sends only during a feed's own rounds.
Per variant: the camera's ms/frame (median of rounds), what the feed adds to it, and the feed
thread's CPU per sentence (from /proc: Linux only), which includes the socket reads and the
thread's wake-ups, not only the decoding.

    .venv/bin/python scripts/radar_feed_beside_camera.py $ZASTAVA_DATA/video/vtest.avi --rounds 40
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.bench import _cycle, _take, median_interval  # noqa: E402
from edge.config import parse_config  # noqa: E402
from edge.detect.detector import Detector  # noqa: E402
from edge.detect.stream import DetectionStream  # noqa: E402
from edge.fusion_bench import _free_udp_port, _thread_cpu, _ttm, bench_config  # noqa: E402
from edge.radar.config import RadarFeedConfig  # noqa: E402
from edge.radar.picture import RadarPicture  # noqa: E402
from edge.sources import open_source  # noqa: E402
from edge.track import Tracker  # noqa: E402

RATE = 200  # sentences a second: 200 targets at 1 Hz
DEFAULT_COALESCE = RadarFeedConfig.model_fields["coalesce_s"].default


def send(port, stop) -> None:
    """200 targets' TTMs at 1 Hz, dated now, to the port in `port` (0: paused)."""
    import numpy as np

    rng = np.random.default_rng(0)
    pos = rng.uniform(-2000, 2000, (200, 2))
    vel = rng.normal(0, 3, (200, 2))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t0, k = time.monotonic(), 0
    while not stop.is_set():
        k += 1
        wait = t0 + k / RATE - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.1:  # starved of CPU for a while: go on at the rate, no burst to catch up
            t0, k = time.monotonic(), 0
        to = port.value  # read once: the main process changes it between rounds
        if to:
            i, now = k % 200, time.time()
            e, n = pos[i] + vel[i] * (now % 3600)
            line = _ttm(i + 1, float(np.hypot(e, n)), float(np.degrees(np.arctan2(e, n))), float(np.hypot(*vel[i])),
                        float(np.degrees(np.arctan2(vel[i][0], vel[i][1]))), now % 86400)
            sock.sendto(line, ("127.0.0.1", to))


def picture(coalesce: float) -> tuple[RadarPicture, int, int]:
    """A node's radar picture reading a UDP feed on a free port: (picture, port, feed thread's id)."""
    port = _free_udp_port()
    pic = RadarPicture(parse_config(f"""
node: {{site: bench, id: feed, lat: 45.815, lon: 15.9819, timezone: UTC}}
cameras: [{{id: c, source: x.mp4, detector: {{model: yolox-nano}}}}]
radars: [{{id: arpa, format: nmea, transport: udp, host: 127.0.0.1, port: {port}, position: [45.815, 15.9819],
          stale_s: 10, coalesce_s: {coalesce}}}]
""", "feed bench"))
    pic.start()
    return pic, port, pic.thread_ids()["radar:arpa"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--frames", type=int, default=25)
    args = ap.parse_args()
    first = next(iter(open_source(args.source)))
    detector = Detector(bench_config("yolox-nano", first.width, first.height).cameras[0].detector)
    cycle = _cycle(args.source)
    port, stop = mp.Value("i", 0), mp.Event()
    sender = mp.Process(target=send, args=(port, stop), daemon=True)
    sender.start()
    variants = {"camera": None, "one at a time": picture(0.0), f"coalesced {DEFAULT_COALESCE} s": picture(DEFAULT_COALESCE)}
    trackers = {v: Tracker(bench_config("yolox-nano", first.width, first.height).cameras[0].tracker) for v in variants}
    counts = {v: 0 for v in variants}

    def loop(variant: str) -> tuple[float, float, int]:
        """(camera ms/frame, feed thread CPU s, sentences) of one round."""
        feed = variants[variant]
        port.value = feed[1] if feed else 0
        if feed:
            time.sleep(0.2)  # the feed's thread is reading before the round starts
        cpu0 = _thread_cpu(feed[2]) if feed else 0.0
        n0 = feed[0].decoders["arpa"].stats.messages if feed else 0
        started, n = time.perf_counter(), 0
        for _frame, det in DetectionStream(detector, _take(cycle, args.frames)):
            counts[variant] += 1
            trackers[variant].update(det, counts[variant] / 25)
            n += 1
        ms = (time.perf_counter() - started) / n * 1000
        port.value = 0
        if not feed:
            return ms, 0.0, 0
        return ms, _thread_cpu(feed[2]) - cpu0, feed[0].decoders["arpa"].stats.messages - n0

    for v in variants:  # warm-up: sessions, the feeds' first reports (the general path), numba's cache
        for _ in range(4):
            loop(v)
    for v, feed in variants.items():
        if feed and not feed[0].decoders["arpa"].stats.messages:
            sys.exit(f"the {v} feed received nothing in its warm-up rounds: {feed[0].stats(time.time())}")
    rows = []
    order = list(variants)
    for i in range(args.rounds):
        row = {v: loop(v) for v in (order if i % 2 == 0 else [order[0], *order[:0:-1]])}
        rows.append(row)
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{v} {r[0]:.2f} ms" for v, r in row.items()), file=sys.stderr)
    stop.set()
    camera = statistics.median(r["camera"][0] for r in rows)
    print(f"camera loop alone: {camera:.2f} ms/frame (median of {args.rounds} rounds)")
    for v in order[1:]:
        added = [r[v][0] / r["camera"][0] - 1 for r in rows]
        low, high = median_interval(added)
        cpu, lines = sum(r[v][1] for r in rows), sum(r[v][2] for r in rows)
        print(f"feed {v:>16}: adds {statistics.median(added) * 100:.1f} % ({low * 100:.1f}-{high * 100:.1f}); "
              f"feed thread {cpu / max(lines, 1) * 1e6:.1f} us CPU a sentence ({lines} sentences)")
    for pic, _, _ in filter(None, variants.values()):
        pic.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
