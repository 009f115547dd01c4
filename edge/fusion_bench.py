"""What radar ingest and fusion add to a camera's per-frame time, measured side by side on a
real video in interleaved rounds (see edge.bench for why): the camera's loop (decode, detection,
tracker) without radar, then the same loop doing the radar work too, each on its own frames.

The scene (stated assumptions, all parameters): a camera on a 10 m mast at the post looking
north (60 degrees wide); `camera_tracks` people walking at 1.5 m/s on the ground it sees, each
detected every frame (their projected boxes replace the video's detections at the tracker, so
both loops track the same crowd); `radar_tracks` radar targets reporting at `radar_hz` as NMEA
TTM sentences, the first `camera_tracks` of them on the people (with 3 m of noise), the rest
spread over 2 km around the post. The radar work per frame: decoding the sentences that arrive
in one frame interval of a 25 fps camera into the track store (inline, though a node does it on
the feed's thread), stale-track expiry once a second (as a node's expiry thread does), the
fusion step (gating, assignment, hysteresis) with every target, the fused picture's update, and
the geo rules over the merged picture at 2 Hz (their zones lie where no target goes, so that no
alert's evidence picture is drawn in the measured steady state).

With `feed="udp"` (`bench --fusion --feed udp`) the sentences take a running node's way instead:
a sender process sends a frame's sentences, a datagram each, every frame period of the loop
(its own clock: the feed wakes wherever in the loop's frame that falls, as a radar's feed does on
a node), and the scene's RadarPicture reads them on its UDP feed thread (coalescing bursts for one
frame of the loop) and expires targets on its expiry thread. Those threads' CPU is reported per frame; their
wall-time cost is in `added`, as it is on a node, together with the sender's (which a node does
not pay: reported too).

Two figures: `added`, the measured growth of the loop's time per frame, and `cpu_share`, the
radar work's own time over the camera loop's, which assumes nothing overlaps it (an upper bound:
on a machine whose cores are all busy with inference the two come close).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edge.clock import SystemClock
from edge.errors import ZastavaError
from edge.radar.config import RadarFeedConfig
from edge.radar.picture import EXPIRE_EVERY_S

NODE = """
node: {{site: bench, id: fusion, lat: 45.815, lon: 15.9819, timezone: UTC}}
cameras:
  - id: cam
    source: bench
    detector: {{model: {model}}}
    geometry: {{height_m: 10, heading_deg: 0, pitch_deg: -12, hfov_deg: 60, image_size: [{w}, {h}]}}
radars:
  - {{id: arpa, format: nmea, transport: udp, host: 127.0.0.1, port: {port}, position: [45.815, 15.9819], stale_s: 10,
      coalesce_s: {coalesce}}}
# The zones lie where no target goes: the rules are evaluated on every object, and no alert's
# evidence picture (about 5 ms, once per event) is drawn in the measured steady state.
geo_zones:
  - {{id: shore, points: [[45.8400, 15.9790], [45.8400, 15.9850], [45.8430, 15.9850], [45.8430, 15.9790]]}}
  - {{id: sea, kind: maritime, points: [[45.7800, 15.9600], [45.7800, 16.0000], [45.7840, 16.0000], [45.7840, 15.9600]]}}
geo_rules:
  - {{id: confirmed, type: radar_confirmed, zone: shore, dwell_s: 2}}
  - {{id: guard, type: radar_only, zone: shore, dwell_s: 5}}
  - {{id: dark, type: dark_vessel, zone: sea, dwell_s: 5}}
"""


@dataclass(frozen=True)
class FusionBenchResult:
    source: str
    rounds: int
    frames_per_round: int
    camera_tracks: float  # mean confirmed camera tracks per frame
    radar_targets: float  # mean live radar targets per frame
    sentences_per_frame: float
    camera_ms: float  # the camera's loop per frame (decode, detection, tracker) without radar
    fused_ms: float  # the same loop with radar ingest, fusion, fused picture and geo rules
    fusion_ms: float  # the radar work's own time per frame (wall time on the loop's thread)
    links: float  # mean camera-radar links per frame
    added: float  # fused_ms / camera_ms - 1: what the radar adds to the per-frame time (median of rounds)
    added_low: float  # 95% confidence interval of `added` (bootstrap of the rounds' median): on shared
    added_high: float  # cores the rounds vary by several percent, so one median alone says little
    cpu_share: float  # (fusion_ms + feed_ms) / camera_ms: the radar work as if nothing overlapped it (median)
    # With `parts`: what the radar work's first parts alone add (median of rounds), each measured
    # as a variant of its own in the same rounds: ingest (and expiry); ingest and the fusion step.
    added_ingest: float | None = None
    added_step: float | None = None
    # With the live UDP feed (feed "udp"): sentences_per_frame counts those its thread took in;
    # feed_ms, its threads' CPU per frame (reader and expiry; in cpu_share too); sender_ms, the
    # bench's radar process's CPU per frame, which a node does not spend (it shares these cores).
    # added_sender: what the sender alone adds (a control in the same rounds: its datagrams to a
    # socket nobody reads), the bench's radar rather than the node's work.
    feed: str = "inline"
    added_sender: float | None = None
    coalesce_s: float | None = None
    feed_ms: float | None = None
    sender_ms: float | None = None

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _ttm(target: int, rng_m: float, bearing: float, speed: float, course: float, tod: float) -> bytes:
    from edge.evaluation.radar_scenario import sentence

    hh, rem = divmod(tod, 3600)
    mm, ss = divmod(rem, 60)
    body = (f"RATTM,{target:03d},{rng_m / 1852:.4f},{bearing % 360:.1f},T,{speed / 0.514444:.1f},{course % 360:.1f},T,"
            f",,N,,T,,{int(hh):02d}{int(mm):02d}{ss:05.2f},A")
    return sentence(body).encode()


def bench_config(model: str, width: int, height: int, *, port: int = 10110, coalesce_s: float = 0.04):
    from edge.config import parse_config

    return parse_config(NODE.format(model=model, w=width, h=height, port=port, coalesce=coalesce_s), "fusion bench")


def _send_frames(conn, sentences: list[list[bytes]], port: int) -> None:
    """The bench's radar (a process of its own). Told ("go", frame, frames, period), it sends the
    sentences of that many frames from that one, a frame's every period, a datagram each as an
    ARPA radar sends them, on its own clock: the feed's wake-ups fall where they fall in the loop's
    frame, as a radar's do on a node, not in step with it (behind, it catches up at once).
    ("pause",) sends what is left of them at once and answers how many it has sent in all;
    ("end",), the process's CPU seconds since the first "go" (not its start-up)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to = ("127.0.0.1", port)
    started, sent, k, last, period, due = None, 0, 0, 0, 0.0, 0.0

    def send(frame: int) -> int:
        lines = sentences[frame % len(sentences)]
        for line in lines:
            sock.sendto(line, to)
        return len(lines)

    while True:
        if k >= last or conn.poll(max(0.0, due - time.monotonic())):
            message = conn.recv()
            if message[0] == "go":
                _, k, frames, period = message
                last, due = k + frames, time.monotonic()
                started = time.process_time() if started is None else started
            elif message[0] == "pause":
                while k < last:
                    sent += send(k)
                    k += 1
                conn.send(sent)
            else:
                conn.send(time.process_time() - started if started is not None else 0.0)
                return
            continue
        sent += send(k)
        k += 1
        due += period


class LiveFeed:
    """The scene's sentences through a node's own UDP feed: a sender process sends a frame's
    sentences every frame period while a round runs, starting at the round's first frame, and the
    scene's RadarPicture reads them on its feed thread and expires targets on its expiry thread
    (RadarPicture.start), as a running node does."""

    def __init__(self, sentences: list[list[bytes]], port: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # not fork: the detector's thread pools are running
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_send_frames, args=(child, sentences, port), daemon=True,
                                   name="bench-radar")
        self.process.start()
        child.close()
        self.sent = 0
        self.rounds_s = 0.0  # how long it has been sending
        self.period_s = 1.0  # its last period
        self._since = 0.0

    def go(self, k: int, frames: int, period_s: float) -> None:
        """Send frame k's sentences now and the next frames' one period apart each."""
        self.conn.send(("go", k, frames, period_s))
        self.period_s = period_s
        self._since = time.monotonic()

    def pause(self) -> int:
        """Send the rest of the frames at once; how many sentences it has sent in all."""
        self.conn.send(("pause",))
        self.sent = self.conn.recv()
        self.rounds_s += time.monotonic() - self._since
        return self.sent

    def close(self) -> float:
        """Stop the sender; its CPU seconds per frame period (its last) it sent for."""
        self.conn.send(("end",))
        cpu = self.conn.recv() if self.conn.poll(10) else math.nan
        self.process.join(10)
        return cpu / max(self.rounds_s / self.period_s, 1.0)


class SceneClock(SystemClock):
    """The system's clock but for now(): the scene's time, which the loop sets frame by frame."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def now(self) -> float:
        return self.t


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _thread_cpu(native_id: int | None) -> float | None:
    """A thread's CPU seconds (Linux's schedstat), None where that cannot be read."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class FusionScene:
    """The bench's scene and the radar work per frame, without the camera's loop: the bench
    times it inside that loop; a profiler (or a test) can run it on its own.

    `names`: the detector's class names; `first`: the video's first frame (size and picture)."""

    def __init__(self, first, names: list[str], *, model: str = "yolox-nano", camera_tracks: int = 50,
                 radar_tracks: int = 200, radar_hz: float = 1.0, fps: float = 25.0, frames: int = 780, seed: int = 0,
                 feed_coalesce_s: float | None = None):
        """feed_coalesce_s: the sentences reach the store through a node's live UDP feed (LiveFeed)
        that coalesces bursts for this long, instead of being decoded inline; close() ends it."""
        import datetime as dt

        from edge.camera_model import CameraModel
        from edge.detect.detector import Detections
        from edge.fused_picture import FusedPicture
        from edge.fusion import Fusion
        from edge.radar.picture import RadarPicture

        live = feed_coalesce_s is not None
        port = _free_udp_port() if live else 10110
        self.config = config = bench_config(model, first.width, first.height, port=port,
                                            coalesce_s=feed_coalesce_s if live else 0.04)
        self.camera = camera = config.cameras[0]
        self.clock = SceneClock()  # the scene's time: the live feed's clock
        self.picture = picture = RadarPicture(config, clock=self.clock)
        self.cam_model = cam_model = CameraModel.from_config(camera.geometry, picture.frame)
        self.fusion = Fusion(camera.id, cam_model, picture.store, camera.fusion)
        self.fused = FusedPicture(config, picture)
        self.image = first.image
        rng = np.random.default_rng(seed)

        # People on the ground the camera sees (20-60 m out, within the view), walking east or west.
        n_people = camera_tracks
        people = np.c_[rng.uniform(-12, 12, n_people), rng.uniform(25, 60, n_people)]
        heading = rng.choice([-1.0, 1.0], n_people)
        others = np.c_[rng.uniform(-2000, 2000, radar_tracks - n_people), rng.uniform(-2000, 2000, radar_tracks - n_people)]
        other_vel = rng.normal(0, 3, (radar_tracks - n_people, 2))
        person = names.index("person") if "person" in names else 0
        self.t0 = t0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc).timestamp()
        self.dt_frame = dt_frame = 1.0 / fps
        next_scan = 0.0

        def scene_at(k: int):
            t = k * dt_frame
            p = people + np.c_[heading * 1.5 * t, np.zeros(n_people)]
            p[:, 0] = (p[:, 0] + 12) % 24 - 12  # keep them in view: they walk back in on the other side
            return t, p

        def boxes(p: np.ndarray) -> Detections:
            feet = np.c_[p, np.zeros(len(p))]
            heads = np.c_[p, np.full(len(p), 1.7)]
            (pf, _), (ph, _) = cam_model.world_to_pixel(feet), cam_model.world_to_pixel(heads)
            hgt = pf[:, 1] - ph[:, 1]
            xyxy = np.c_[pf[:, 0] - hgt / 5, ph[:, 1], pf[:, 0] + hgt / 5, pf[:, 1]].astype(np.float32)
            return Detections(xyxy, np.full(len(p), 0.8, np.float32), np.full(len(p), person, np.int64), names)

        def scan(t: float, p: np.ndarray) -> list[bytes]:
            """One radar scan: every target's TTM at time t."""
            o = others + other_vel * t
            pts = np.r_[p + rng.normal(0, 3.0, p.shape), o]
            vel = np.r_[np.c_[heading * 1.5, np.zeros(n_people)], other_vel]
            tod = (t0 + t) % 86400
            out = []
            for i, ((e, n), (ve, vn)) in enumerate(zip(pts, vel)):
                out.append(_ttm(i + 1, math.hypot(e, n), math.degrees(math.atan2(e, n)), math.hypot(ve, vn),
                                math.degrees(math.atan2(ve, vn)), tod))
            return out

        # Sentences and detections for every frame are made up front: only the node's work is timed.
        self.total = frames
        self.sentences: list[list[bytes]] = []
        self.detections: list[Detections] = []
        pending: list[bytes] = []
        for k in range(frames):
            t, p = scene_at(k)
            while next_scan <= t:
                pending += scan(next_scan, p)
                next_scan += 1.0 / radar_hz
            # A scan's sentences arrive spread over the scan: this frame takes its share of them.
            share = int(math.ceil(radar_tracks * radar_hz * dt_frame))
            self.sentences.append(pending[:share])
            pending = pending[share:]
            self.detections.append(boxes(p))
        self.counts: dict[str, list] = {"tracks": [], "targets": [], "links": [], "sentences": []}
        self._geo_due = 0.0
        self._expiry_due = 0.0
        self.clock.t = t0
        self.feed: LiveFeed | None = None
        if live:
            self.feed = LiveFeed(self.sentences, port)
            picture.start()

    def radar_threads_cpu(self) -> float | None:
        """The live feed's threads' CPU seconds so far (reader and expiry), None without them."""
        cpu = [_thread_cpu(tid) for tid in self.picture.thread_ids().values()]
        return None if not cpu or None in cpu else sum(cpu)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until the live feed has taken in every sentence sent (outside the timed frames)."""
        decoder = self.picture.decoders["arpa"]
        deadline = time.monotonic() + timeout
        while self.feed is not None and decoder.stats.messages < self.feed.sent:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def close(self) -> float | None:
        """End the live feed; the sender process's CPU seconds per frame, None without a feed."""
        if self.feed is None:
            return None
        self.picture.stop()
        return self.feed.close()

    def radar_work(self, k: int, tracks, upto: str = "all") -> float:
        """Radar ingest, fusion, the fused picture's update and the geo rules (2 Hz) for frame k;
        returns the seconds it took. `upto` stops early, to see what each part adds: "ingest"
        (decoding into the store and expiry), "step" (and the fusion step); the counts are kept
        for whole frames only."""
        from edge.pipeline import FrameResult
        from edge.sources import Frame

        t = k * self.dt_frame
        wall = self.t0 + t
        start = time.perf_counter()
        self.clock.t = wall
        if self.feed is None:  # else the node's feed thread decodes them, its expiry thread expires
            for line in self.sentences[k]:
                self.picture.ingest("arpa", line, wall)
            if t >= self._expiry_due:  # as a node's expiry thread does (edge.radar.picture)
                self.picture.store.expire(wall)
                self._expiry_due = t + EXPIRE_EVERY_S
        if upto == "ingest":
            return time.perf_counter() - start
        result = self.fusion.step(tracks, wall)
        if upto == "step":
            return time.perf_counter() - start
        self.fused.update(self.camera.id, FrameResult(Frame(self.image, k, t, "bench"), self.detections[k], tracks, [], [],
                                                      result, wall), self.cam_model)
        if t >= self._geo_due:
            self.fused.evaluate(wall)
            self._geo_due = t + 0.5
        spent = time.perf_counter() - start
        self.counts["tracks"].append(len(tracks))
        self.counts["targets"].append(len(result.radar) if result.radar is not None else 0)  # live radar targets
        self.counts["links"].append(len(result.links))
        self.counts["sentences"].append(len(self.sentences[k]))
        return spent


def run_fusion_bench(
    source: str,
    *,
    model: str = "yolox-nano",
    camera_tracks: int = 50,
    radar_tracks: int = 200,
    radar_hz: float = 1.0,
    fps: float = 25.0,
    frames_per_round: int = 60,
    rounds: int = 12,
    seed: int = 0,
    parts: bool = False,
    feed: str = "inline",
    on_round: Callable[[int, dict], None] | None = None,
) -> FusionBenchResult:
    """feed: "inline", each frame's sentences decoded on the loop's thread; "udp", sent by a process
    of their own to a node's UDP feed, read on its thread (LiveFeed), coalescing bursts for as long
    as one frame of the camera loop alone (warm-up), as the default 40 ms is one frame at 25 fps."""
    from edge.bench import _cycle, _take
    from edge.detect.detector import Detector
    from edge.detect.stream import DetectionStream
    from edge.sources import open_source
    from edge.track import Tracker

    if feed not in ("inline", "udp"):
        raise ZastavaError(f"the fusion bench's radar feed is inline or udp, not {feed!r}")
    if rounds < 2:
        raise ZastavaError(f"the fusion bench needs --rounds 2 or more (got {rounds}): it reports an interval of the "
                           "rounds' median")
    first = next(iter(open_source(source)))
    total = frames_per_round * (rounds + 1)
    detector = Detector(bench_config(model, first.width, first.height).cameras[0].detector)

    def new_scene(coalesce_s: float | None = None) -> FusionScene:  # the same scene every time (one seed)
        return FusionScene(first, detector.names, model=model, camera_tracks=camera_tracks, radar_tracks=radar_tracks,
                           radar_hz=radar_hz, fps=fps, frames=total, seed=seed, feed_coalesce_s=coalesce_s)

    base = new_scene()  # the frames' detections, and the scene when decoding inline
    camera = base.camera
    cycle = _cycle(source)
    camera_only = {"i": 0, "tracker": Tracker(camera.tracker)}

    def pipeline(state: dict) -> tuple[float, float]:
        """The camera's loop on the real video (decode, inference, tracker on the scene's people),
        with the radar work (or its first parts) when the state has a scene; (wall ms per frame,
        radar work ms per frame)."""
        stream = DetectionStream(detector, _take(cycle, frames_per_round))
        work = state.get("scene")
        spent, n = 0.0, 0
        started = time.perf_counter()
        for _frame, _detections in stream:
            k = state["i"] % total
            state["i"] += 1
            tracks = state["tracker"].update(base.detections[k], k * base.dt_frame)
            if work is not None:
                spent += work.radar_work(k, tracks, state["upto"])
            n += 1
        return (time.perf_counter() - started) / n * 1000, spent / n * 1000

    def measured(state: dict) -> tuple[float, float, float | None]:
        """pipeline(state) with its radar sending, when it has one, and the live feed's threads'
        CPU ms per frame (None without them): what they did in the round and, once it is timed,
        with its last sentences."""
        work, radar = state.get("scene"), state.get("feed")
        if radar is None:
            return (*pipeline(state), None)
        cpu0 = work.radar_threads_cpu() if work is not None else None
        # The radar sends a frame's sentences every frame period of this loop (its last round's).
        radar.go(state["i"] % total, frames_per_round, state["period_s"])
        wall_ms, work_ms = pipeline(state)
        radar.pause()
        state["period_s"] = wall_ms / 1000
        if work is None:  # the sender alone: nobody reads what it sends
            return wall_ms, work_ms, None
        if not work.drain():
            raise ZastavaError("the fusion bench's live radar feed lost sentences (its UDP socket's buffer?)")
        return wall_ms, work_ms, (work.radar_threads_cpu() - cpu0) / frames_per_round * 1000

    # A warm-up of each (sessions, caches, the trackers' tracks, the store), then interleaved rounds.
    pipeline(camera_only)  # the sessions' first runs
    camera_warm_ms, _ = pipeline(camera_only)
    coalesce_s = None
    if feed == "udp":  # one frame of this loop, as the default is one frame at 25 fps
        coalesce_s = RadarFeedConfig.model_fields["coalesce_s"].default * fps * camera_warm_ms / 1000
    scene = base if coalesce_s is None else new_scene(coalesce_s)
    counts = scene.counts

    def state_of(sc: FusionScene | None, upto: str, radar: LiveFeed | None = None) -> dict:
        radar = radar or (sc.feed if sc is not None else None)
        return {"i": 0, "tracker": Tracker(camera.tracker), "scene": sc, "upto": upto, "feed": radar,
                "period_s": camera_warm_ms / 1000}

    fused_state = state_of(scene, "all")
    # Each part measured has its own scene (store, fusion, live feed) and tracker, on the same frames.
    part_states = {upto: state_of(new_scene(coalesce_s), upto) for upto in (("ingest", "step") if parts else ())}
    scenes = [scene, *(st["scene"] for st in part_states.values())]
    sink = None
    try:
        if coalesce_s is not None:
            # A control: the sender alone, its datagrams to a socket nobody reads. What it adds is
            # the bench's radar, not the node's work.
            import socket

            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink.bind(("127.0.0.1", 0))
            part_states["sender"] = state_of(None, "sender", LiveFeed(base.sentences, sink.getsockname()[1]))
        for state in (fused_state, *part_states.values()):
            measured(state)
        for v in counts.values():
            v.clear()
        ingested0 = scene.picture.decoders["arpa"].stats.messages
        rows = _rounds(rounds, camera_only, fused_state, part_states, measured, on_round)
        ingested = scene.picture.decoders["arpa"].stats.messages - ingested0
    finally:
        sender = [sc.close() for sc in scenes]
        if "sender" in part_states:
            part_states["sender"]["feed"].close()
        if sink is not None:
            sink.close()
    return _result(source, rounds, frames_per_round, counts, rows, parts, feed, coalesce_s, sender[0],
                   ingested / max(len(counts["sentences"]), 1) if coalesce_s is not None else None)


def _rounds(rounds: int, camera_only: dict, fused_state: dict, part_states: dict, measured, on_round) -> list[dict]:
    rows = []
    for i in range(rounds):
        camera_ms, _, _ = measured(camera_only)
        # The parts in alternating order, so that none always runs right after the camera alone.
        order = [("all", fused_state), *part_states.items()]
        got = dict((upto, measured(state)) for upto, state in (order if i % 2 == 0 else order[::-1]))
        fused_ms, work_ms, feed_ms = got.pop("all")
        row = {"camera_ms": camera_ms, "fused_ms": fused_ms, "fusion_ms": work_ms,
               "added": fused_ms / camera_ms - 1.0, "cpu_share": (work_ms + (feed_ms or 0.0)) / camera_ms}
        if feed_ms is not None:
            row["feed_ms"] = feed_ms
        row.update({f"added_{upto}": ms / camera_ms - 1.0 for upto, (ms, _, _) in got.items()})
        rows.append(row)
        if on_round:
            on_round(i, row)
    return rows


def _result(source: str, rounds: int, frames_per_round: int, counts: dict, rows: list[dict], parts: bool, feed: str,
            coalesce_s: float | None, sender_s: float | None, ingested_per_frame: float | None) -> FusionBenchResult:
    from edge.bench import median_interval

    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    ci = median_interval([r["added"] for r in rows])
    return FusionBenchResult(
        source=source,
        rounds=rounds,
        frames_per_round=frames_per_round,
        camera_tracks=float(np.mean(counts["tracks"])),
        radar_targets=float(np.mean(counts["targets"])),
        sentences_per_frame=float(ingested_per_frame if ingested_per_frame is not None else np.mean(counts["sentences"])),
        camera_ms=med("camera_ms"),
        fused_ms=med("fused_ms"),
        fusion_ms=med("fusion_ms"),
        links=float(np.mean(counts["links"])),
        added=med("added"),
        added_low=ci[0],
        added_high=ci[1],
        cpu_share=med("cpu_share"),
        added_ingest=med("added_ingest") if parts else None,
        added_step=med("added_step") if parts else None,
        added_sender=med("added_sender") if coalesce_s is not None else None,
        feed=feed,
        coalesce_s=coalesce_s,
        feed_ms=med("feed_ms") if coalesce_s is not None else None,
        sender_ms=sender_s * 1000 if sender_s is not None else None,
    )
