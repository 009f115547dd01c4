"""Radar video evaluation: a documented CAT240 generator, and `eval radar` against its truth.

No public CAT240 recording is at hand, so `generate` writes one (a pcap of CAT240 datagrams) from
a stated scenario, and a truth file (JSON) of what it put where. Every assumption:

- Radar: a surveillance radar at a fixed post, by default the ship's first GPS fix in the ARPA log
  (58.2124 N, 11.5475 E); it turns once every `rotation_s` (2.5 s) clockwise from north, sending
  one radial per azimuth bin (`azimuths`, 1024) of `range_cells` cells of `cell_m` (15 m: a
  100.07 ns cell duration, I240/041 femtoseconds), amplitude `bits` (16) per cell, zlib-compressed,
  I240/140 time of day on every radial; one CAT240 block per UDP datagram to 239.0.0.240:4000.
  The sweep starts at north at T0 + k x rotation_s; the radial of bin a is sent at
  T0 + (k + (a + 0.5) / azimuths) x rotation_s.
- Video: square-law (power) cells, linear in power: counts = power x `noise_counts` (noise mean
  32 counts), rounded, saturating at the largest value `bits` hold.
- Noise: complex Gaussian receiver noise, so each cell's power is exponential (Rayleigh amplitude),
  independent from cell to cell and scan to scan.
- Sea clutter (`clutter: k`): compound K-distribution: a gamma texture (shape `k_shape`, mean
  `cnr_db` over the noise) times exponential speckle; the texture is constant over patches of
  `texture_cells` range cells x `texture_azimuths` bins and drawn anew every scan (sea texture
  decorrelates within a rotation); speckle is independent per cell. Clutter covers the whole
  picture at one mean level (no range dependence).
- Targets are points: all their echo falls in the range cell nearest them (no straddle between
  cells), over azimuth bins within 1.5 beamwidths of them, weighted by a Gaussian two-way antenna
  pattern with `beamwidth_deg` (1.2 degrees) between its half-power points. A target's SNR is its
  peak power over the mean of noise plus clutter. Swerling 0: steady; Swerling 1: the power is
  exponential around the mean, drawn once per scan (constant over the beam's dwell), independent
  scan to scan. The echo adds to the interference as complex amplitudes with a random phase.
- Trajectories (`kind: tracks`): the four ARPA targets of the real log RadarLogs.txt, their $RATLL
  positions (read by edge.radar.nmea). The ARPA lost and re-acquired its targets: each target's
  series is cut where reports stop for more than 10 s or jump faster than 25 m/s, pieces under
  60 s are left out, and each piece's positions are smoothed with a centred 5-report moving
  average (an ARPA's position jitter is its estimate, not the vessel's motion). Between reports
  a target moves on a straight line; it is where the antenna sees it at the moment it does. The
  radar runs `preroll_s` (60 s) before the scenario's start (`start_s` into the log), so its
  clutter map knows the fixed returns by then; at the log's start and at 1950 s no target is on
  the air in the preroll (a radar is on before the ARPA acquires anything). `start_at` moves every
  time (a live run plays the log now).
- Fixed returns (`fixed_returns`): a stretch of coast (steady, 35 dB over noise: cells 225-250,
  azimuths 120-170 degrees) and five buildings (steady points, 30 dB) at stated places, for the
  clutter map to learn.
- Detection-probability grid (`kind: pd`): steady and Swerling 1 targets on a grid (every 16th
  azimuth bin, every 40th range cell from 40), each bin/cell's target at one of `pd_snr_db`,
  centred on its bin, in noise only: every target, every scan is one trial of its cell.

`evaluate` runs the real path on the pcap (file feed, CAT240 decoding, sweep assembly, CFAR,
clutter map, plots, tracker) and measures: per SNR and Swerling case the share of trials whose
cell the CFAR detected against the theory of edge.radar.cfar; the false-alarm rate per cell over
the cells with no target echo in their window and no fixed return (before the clutter map);
and per truth track (a continuous piece of one of the log's targets) whether a confirmed track
followed it (its reports within `match_m`, 4 range cells, of the truth at their times), the share
of its scans they cover, the position RMS error of those reports, and the confirmed tracks that
followed nothing (half their reports or more near no truth: false tracks, per simulated hour).
A report near two truth tracks counts for both: from 548 s to 965 s the log's ARPA has one vessel
under two target numbers (01 and 02, within 10 m of each other), and the generator puts both
echoes on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import socket
import struct
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import dpkt
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.errors import DatasetError
from edge.geo import LocalFrame
from edge.radar.cat240 import LIGHT_SPEED, VideoRadial, VideoSummary, encode_summary, encode_video
from edge.radar.cfar import pd_swerling0, pd_swerling1

RADAR_LAT, RADAR_LON = 58.2124, 11.5475  # the ARPA ship's first GPS fix
GROUP, PORT = "239.0.0.240", 4000
THEORY = ("CA-CFAR, square-law detector, N reference cells, alpha = Pfa^(-1/N) - 1 on their sum; "
          "Swerling 1: Pd = (1 + alpha/(1+SNR))^-N; Swerling 0: Pd = E_Z[Q1(sqrt(2 SNR), sqrt(2 alpha Z))], "
          "Z ~ Gamma(N, 1), computed numerically")
BUILDINGS = [(2800.0, 210.0), (3100.0, 300.0), (1900.0, 135.0), (3500.0, 20.0), (2300.0, 250.0)]  # range m, az deg


class Scenario(BaseModel):
    """What the generator simulates (every field is written to the truth file)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["tracks", "pd"] = "tracks"
    seed: int = 7
    rotation_s: float = Field(2.5, gt=0)
    azimuths: int = Field(1024, ge=64, le=8192)
    range_cells: int = Field(256, ge=64, le=8192)
    cell_m: float = Field(15.0, gt=0)
    beamwidth_deg: float = Field(1.2, gt=0, le=20)
    bits: Literal[8, 16, 32] = 16
    compress: bool = True
    noise_counts: float = Field(32.0, gt=0)
    clutter: Literal["none", "k"] = "none"
    k_shape: float = Field(2.0, gt=0)
    cnr_db: float = 10.0
    texture_cells: int = Field(16, ge=1)
    texture_azimuths: int = Field(8, ge=1)
    swerling: Literal[0, 1] = 1
    snr_db: float = 20.0
    fixed_returns: bool = True
    start_s: float = Field(0.0, ge=0, description="Seconds into the ARPA log where the scenario starts.")
    preroll_s: float = Field(60.0, ge=0, description="The radar runs this long before that, with no target yet.")
    duration_s: float | None = Field(None, gt=0, description="Length; default: to the log's last target report.")
    sweeps: int = Field(60, ge=1, description="pd: scans simulated.")
    pd_snr_db: list[float] = Field(default_factory=lambda: [6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0])
    radar: tuple[float, float] = (RADAR_LAT, RADAR_LON)
    start_at: float | None = Field(None, description="Epoch seconds to stamp the first sweep with (a live run plays "
                                                     "the log's tracks now); default: the log's own times.")
    t0: float | None = None  # epoch seconds of the first sweep (set by the generator)

    @property
    def cell_duration_s(self) -> float:
        return 2.0 * self.cell_m / LIGHT_SPEED


# --- the real trajectories ----------------------------------------------------------------------


def arpa_trajectories(log: Path, frame: LocalFrame, *, max_gap_s: float = 10.0, max_speed: float = 25.0,
                      min_len_s: float = 60.0, smooth: int = 5) -> list[dict]:
    """The ARPA log's TLL positions as continuous pieces: [{id, t, east, north}] in `frame`."""
    from edge.radar.nmea import NmeaDecoder

    dec = NmeaDecoder("arpa")
    rows: dict[str, list] = defaultdict(list)
    try:
        data = log.read_bytes()
    except OSError as e:
        raise DatasetError(f"{log}: cannot read the ARPA log ({e.strerror or e})") from None
    for line in data.splitlines():
        for r in dec.feed(line, 0.0):
            if r.extra.get("sentence") == "TLL" and r.lat is not None:
                rows[r.target].append((r.time, r.lat, r.lon))
    if not rows:
        raise DatasetError(f"{log}: no $RATLL target positions in it")
    out = []
    for target, pts in sorted(rows.items()):
        a = np.array(sorted(pts))
        e, n = frame.to_local(a[:, 1], a[:, 2])
        t = a[:, 0]
        step = np.hypot(np.diff(e), np.diff(n))
        dt_ = np.maximum(np.diff(t), 1e-9)
        cuts = np.flatnonzero((np.diff(t) > max_gap_s) | (step / dt_ > max_speed)) + 1
        for k, (lo, hi) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(t)])):
            if hi - lo < smooth or t[hi - 1] - t[lo] < min_len_s:
                continue
            kernel = np.ones(smooth) / smooth
            es = np.convolve(e[lo:hi], kernel, mode="valid")
            ns = np.convolve(n[lo:hi], kernel, mode="valid")
            ts = t[lo + smooth // 2: hi - (smooth - 1 - smooth // 2)]
            out.append({"id": f"{target}-{k}", "target": target, "t": ts, "east": es, "north": ns})
    return out


# --- the generator ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Point:
    range_m: float
    az_deg: float
    snr: float  # linear, over the mean interference
    swerling: int


def _interference(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(power of noise + clutter per cell, its local mean) for one scan, in noise units."""
    shape = (sc.azimuths, sc.range_cells)
    mean = np.ones(shape, np.float32)
    if sc.clutter == "k":
        pa = -(-sc.azimuths // sc.texture_azimuths)
        pr = -(-sc.range_cells // sc.texture_cells)
        texture = rng.gamma(sc.k_shape, 1.0 / sc.k_shape, (pa, pr)).astype(np.float32)
        texture = np.repeat(np.repeat(texture, sc.texture_azimuths, 0), sc.texture_cells, 1)[:shape[0], :shape[1]]
        mean += np.float32(10 ** (sc.cnr_db / 10)) * texture
    power = rng.exponential(1.0, shape).astype(np.float32) * mean
    return power, mean


def _add_targets(power: np.ndarray, mean: np.ndarray, points: list[_Point], sc: Scenario,
                 rng: np.random.Generator) -> None:
    """Echoes of point targets added to the interference as complex amplitudes (see the docstring)."""
    width = 360.0 / sc.azimuths
    mean_interference = 1.0 + (10 ** (sc.cnr_db / 10) if sc.clutter == "k" else 0.0)
    span = int(math.ceil(1.5 * sc.beamwidth_deg / width))
    for p in points:
        k = int(round(p.range_m / sc.cell_m))
        if not 0 <= k < sc.range_cells:
            continue
        s = p.snr * mean_interference
        if p.swerling == 1:
            s = rng.exponential(s)
        centre = p.az_deg / width - 0.5
        bins = np.arange(int(math.floor(centre)) - span, int(math.ceil(centre)) + span + 1)
        off = (bins - centre) * width
        gain = np.exp(-4.0 * math.log(2.0) * off ** 2 / sc.beamwidth_deg ** 2)
        rows = bins % sc.azimuths
        amp = np.sqrt(s * gain) * np.exp(1j * rng.uniform(0, 2 * math.pi, len(bins)))
        noise = np.sqrt(mean[rows, k] / 2.0) * (rng.normal(size=len(bins)) + 1j * rng.normal(size=len(bins)))
        power[rows, k] = np.abs(amp + noise) ** 2


def _fixed(sc: Scenario) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Steady fixed returns (power per cell, 0 where none) and their regions (a0, a1, k0, k1) inclusive."""
    fixed = np.zeros((sc.azimuths, sc.range_cells), np.float32)
    regions = []
    if not sc.fixed_returns or sc.kind != "tracks":
        return fixed, regions
    a0, a1 = int(120 / 360 * sc.azimuths), int(170 / 360 * sc.azimuths)
    k0, k1 = int(sc.range_cells * 225 / 256), int(sc.range_cells * 250 / 256)
    fixed[a0:a1 + 1, k0:k1 + 1] = 10 ** 3.5
    regions.append((a0, a1, k0, k1))
    for rng_m, az in BUILDINGS:
        k = int(round(rng_m / sc.cell_m))
        if k >= sc.range_cells:
            continue
        a = int(az / 360 * sc.azimuths)
        fixed[a - 1:a + 2, k] = 10 ** 3.0
        regions.append((a - 1, a + 1, k, k))
    return fixed, regions


def pd_grid(sc: Scenario) -> list[dict]:
    """The detection-probability targets: bin, cell, SNR and Swerling case of each."""
    out = []
    combos = [(s, w) for w in (0, 1) for s in sc.pd_snr_db]
    i = 0
    for a in range(8, sc.azimuths, 16):
        for k in range(40, sc.range_cells - 20, 40):
            snr, sw = combos[i % len(combos)]
            out.append({"azimuth_bin": a, "range_cell": k, "snr_db": snr, "swerling": sw})
            i += 1
    return out


def _position_at(track: dict, t: float) -> tuple[float, float] | None:
    tt = track["t"]
    if t < tt[0] or t > tt[-1]:
        return None
    return float(np.interp(t, tt, track["east"])), float(np.interp(t, tt, track["north"]))


_ETH = b"\x01\x00\x5e\x00\x00\xf0" + b"\x02\x00\x00\x00\x00\xf0" + b"\x08\x00"  # to the group's MAC, IPv4
_IP_SRC, _IP_DST = socket.inet_aton("10.0.0.240"), socket.inet_aton(GROUP)


@functools.lru_cache(maxsize=4096)
def _ip_udp_header(payload_len: int) -> bytes:
    """IPv4 + UDP headers for a payload length (the only field that varies; UDP checksum 0: none)."""
    total = 20 + 8 + payload_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 8, 17, 0, _IP_SRC, _IP_DST)
    words = sum(struct.unpack("!10H", ip))
    words = (words & 0xFFFF) + (words >> 16)
    words = (words & 0xFFFF) + (words >> 16)
    ip = ip[:10] + struct.pack("!H", ~words & 0xFFFF) + ip[12:]
    return ip + struct.pack("!HHHH", 40000, PORT, 8 + payload_len, 0)


def _udp_frame(payload: bytes) -> bytes:
    # a fixed header template, not dpkt's packet objects: 50x cheaper, and a scenario has millions
    return _ETH + _ip_udp_header(len(payload)) + payload


class Simulation:
    """One scenario's radar: its plan (start, sweeps, trajectories, fixed returns), its video sweep
    by sweep, its CAT240 datagrams, and the truth of where every target was when it was seen.

    >>> sim = Simulation(Scenario(kind="pd", sweeps=2, azimuths=64, range_cells=128))
    >>> [(k, counts.shape) for k, t, counts in sim.sweeps()]
    [(0, (64, 128)), (1, (64, 128))]
    """

    def __init__(self, sc: Scenario, log: Path | None = None):
        frame = LocalFrame(*sc.radar)
        tracks: list[dict] = []
        if sc.kind == "tracks":
            if log is None:
                raise DatasetError("a tracks scenario needs the ARPA log (RadarLogs.txt)")
            pieces = arpa_trajectories(log, frame)
            first = min(float(p["t"][0]) for p in pieces)
            last = max(float(p["t"][-1]) for p in pieces)
            t0 = math.floor(first + sc.start_s - sc.preroll_s)
            end = t0 + sc.preroll_s + sc.duration_s if sc.duration_s else last
            sweeps = int((end - t0) // sc.rotation_s)
            shift = 0.0 if sc.start_at is None else sc.start_at - t0
            for p in pieces:
                keep = (p["t"] >= t0) & (p["t"] <= t0 + sweeps * sc.rotation_s)
                if keep.sum() >= 2:
                    tr = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in p.items()}
                    tr["t"] = tr["t"] + shift
                    tracks.append(tr)
            t0 += shift
        else:
            t0 = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc).timestamp() if sc.start_at is None else sc.start_at
            sweeps = sc.sweeps
        self.scenario = sc = sc.model_copy(update={"t0": float(t0)})
        self.n_sweeps = sweeps
        self.tracks = tracks
        self.grid = pd_grid(sc) if sc.kind == "pd" else []
        self.fixed, self.regions = _fixed(sc)
        self.positions: dict[str, list] = {tr["id"]: [] for tr in tracks}  # truth: (time seen, east, north)

    def sweeps(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(sweep number, start time at north, cell counts (azimuths x range cells)) of every sweep."""
        sc = self.scenario
        rng = np.random.default_rng(sc.seed)
        width = 360.0 / sc.azimuths
        max_count = (1 << sc.bits) - 1
        dtype = np.uint32 if sc.bits == 32 else np.uint16 if sc.bits == 16 else np.uint8
        for k in range(self.n_sweeps):
            ts = sc.t0 + k * sc.rotation_s
            power, mean = _interference(sc, rng)
            points = []
            for tr in self.tracks:
                pos = _position_at(tr, ts)
                if pos is None:
                    continue
                az = math.degrees(math.atan2(*pos)) % 360
                t_seen = ts + az / 360.0 * sc.rotation_s  # the antenna reaches it later in the turn
                pos = _position_at(tr, t_seen) or pos
                az = math.degrees(math.atan2(*pos)) % 360
                t_seen = ts + az / 360.0 * sc.rotation_s
                self.positions[tr["id"]].append((t_seen, pos[0], pos[1]))
                points.append(_Point(math.hypot(*pos), az, 10 ** (sc.snr_db / 10), sc.swerling))
            for g in self.grid:
                points.append(_Point(g["range_cell"] * sc.cell_m, (g["azimuth_bin"] + 0.5) * width,
                                     10 ** (g["snr_db"] / 10), g["swerling"]))
            _add_targets(power, mean, points, sc, rng)
            if self.regions:
                power += self.fixed  # steady: land and buildings do not fluctuate
            yield k, ts, np.minimum(np.rint(power * sc.noise_counts), max_count).astype(dtype)

    def blocks(self, progress: Callable[[int, int], None] = lambda i, n: None) -> Iterator[tuple[bytes, float]]:
        """(CAT240 data block, time sent): a video summary, then one video message per radial."""
        sc = self.scenario
        width = 360.0 / sc.azimuths
        yield encode_summary(VideoSummary(0, 240, f"zastava scenario {sc.kind} seed {sc.seed}", 0.0)), sc.t0
        index = 0
        for k, ts, counts in self.sweeps():
            for a in range(sc.azimuths):
                t_radial = ts + (a + 0.5) / sc.azimuths * sc.rotation_s
                yield encode_video(VideoRadial(0, 240, index, a * width, (a + 1) * width, 0, sc.cell_duration_s,
                                               counts[a], sc.bits, sc.compress, True, t_radial % 86400.0)), t_radial
                index += 1
            progress(k + 1, self.n_sweeps)

    def truth(self) -> dict:
        """What was put where (complete once every sweep has been made)."""
        return {
            "scenario": self.scenario.model_dump(mode="json"), "sweeps": self.n_sweeps, "theory": THEORY,
            "tracks": [{"id": tr["id"], "target": tr["target"], "positions": self.positions[tr["id"]]}
                       for tr in self.tracks],
            "pd_targets": self.grid, "fixed_regions": self.regions,
        }


def generate(sc: Scenario, out: Path, truth_out: Path, *, log: Path | None = None,
             progress: Callable[[int, int], None] = lambda i, n: None) -> dict:
    """Write the scenario's CAT240 pcap and its truth file; returns the truth."""
    sim = Simulation(sc, log)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=65535)
        for block, t in sim.blocks(progress):
            writer.writepkt(_udp_frame(block), t)
    truth = sim.truth()
    truth_out.write_text(json.dumps(truth))
    return truth


# --- pictures for a radar-picture model --------------------------------------------------------------


def target_picture(sc: Scenario, renderer, rng: np.random.Generator, *, targets: int, snr_db: tuple[float, float],
                   swerling: int) -> tuple[np.ndarray, np.ndarray]:
    """One sweep of the scenario's radar with `targets` point targets at random places (150 m to
    100 m short of the edge, any azimuth; SNR uniform in `snr_db`), rendered as the PPI a picture
    model sees (edge.radar.ppi, north up); returns the picture and the targets' pixels (N, 2)."""
    power, mean = _interference(sc, rng)
    edge = sc.range_cells * sc.cell_m
    points = [_Point(float(rng.uniform(150.0, edge - 100.0)), float(rng.uniform(0.0, 360.0)),
                     10 ** (float(rng.uniform(*snr_db)) / 10), swerling) for _ in range(targets)]
    _add_targets(power, mean, points, sc, rng)
    counts = np.minimum(np.rint(power * sc.noise_counts), (1 << sc.bits) - 1).astype(np.uint32)
    from edge.radar.sweep import Sweep

    sweep = Sweep(0, counts, np.zeros(sc.azimuths), np.ones(sc.azimuths, bool), sc.cell_m)
    az = np.radians([p.az_deg for p in points])
    rng_m = np.array([p.range_m for p in points])
    return renderer.render(sweep), renderer.to_px(sweep, rng_m * np.sin(az), rng_m * np.cos(az))


def picture_dataset(root: Path, *, pictures: int = 12, tiles: int = 16, tile_px: int = 128, size_px: int = 512,
                    targets: int = 60, snr_db: tuple[float, float] = (12.0, 26.0), box_px: float = 24.0,
                    seed: int = 1, scenario: Scenario | None = None) -> Path:
    """A YOLO-format data set (images/ and labels/ for train and val, data.yaml, class `blip`) of
    rendered radar pictures with every target labelled, for training a radar-picture model
    (`video.detector: onnx`) with Ultralytics; returns data.yaml. Assumptions, beyond the
    scenario's radar (default: Rayleigh noise, no fixed returns): targets are steady (Swerling 0),
    so every label is a blip the picture shows (a Swerling 1 target faded into the noise would be a
    label no picture shows); each picture (`size_px`, the scale the model then runs at) gives
    `tiles` random square tiles of `tile_px` (small tiles train fast; the model is convolutional,
    so it runs on the whole picture after); a box of `box_px` is centred on each target (a blip's
    size says nothing: its centre becomes the plot). The val split is two more pictures."""
    import cv2

    from edge.radar.ppi import PpiRenderer

    sc = scenario or Scenario(fixed_returns=False)
    rng = np.random.default_rng(seed)
    renderer = PpiRenderer(size_px)
    for split, n in (("train", pictures), ("val", 2)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, uv = target_picture(sc, renderer, rng, targets=targets, snr_db=snr_db, swerling=0)
            for j in range(tiles):
                x0, y0 = rng.integers(0, size_px - tile_px, 2)
                inside = ((uv[:, 0] > x0 + 2) & (uv[:, 0] < x0 + tile_px - 2) &
                          (uv[:, 1] > y0 + 2) & (uv[:, 1] < y0 + tile_px - 2))
                name = f"{i:03d}_{j:02d}"
                cv2.imwrite(str(root / "images" / split / f"{name}.png"), img[y0:y0 + tile_px, x0:x0 + tile_px])
                (root / "labels" / split / f"{name}.txt").write_text("".join(
                    f"0 {(u - x0) / tile_px:.5f} {(v - y0) / tile_px:.5f} {box_px / tile_px:.5f} {box_px / tile_px:.5f}\n"
                    for u, v in uv[inside]))
    data = root / "data.yaml"
    data.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames: {{0: blip}}\n")
    return data


# --- the evaluation ---------------------------------------------------------------------------------


@dataclasses.dataclass
class RadarEvalResult:
    sweeps: int
    cells_per_sweep: int
    pd: list[dict]  # per (swerling, snr_db): trials, detected, measured, theory, difference
    pfa_configured: float
    pfa_measured: float
    pfa_cells: int
    false_alarms: int
    truth_tracks: int
    confirmed: int  # truth tracks a confirmed track followed
    position_rms_m: float | None
    cell_m: float
    false_tracks: int
    hours: float
    false_tracks_per_hour: float
    tracks_confirmed: int
    per_track: list[dict]
    targets: list[str] = dataclasses.field(default_factory=list)  # the log's targets in the scenario (01..04)
    targets_confirmed: list[str] = dataclasses.field(default_factory=list)  # those a confirmed track followed
    false_track_list: list[dict] = dataclasses.field(default_factory=list)  # when, where, how long each was
    theory: str = THEORY

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def feed_config(truth: dict, pcap: Path, *, method: str | None = None, pfa: float | None = None,
                guard: int | None = None, ref: int | None = None, clutter_map: bool | None = None,
                overrides: dict | None = None):
    """The radar feed a node would configure for the scenario's radar."""
    from edge.radar.config import RadarFeedConfig

    sc = truth["scenario"]
    cfar = {k: v for k, v in (("method", method), ("pfa", pfa), ("guard", guard), ("ref", ref)) if v is not None}
    video = {"azimuths": sc["azimuths"], "max_range_cells": sc["range_cells"], "cfar": cfar,
             "clutter_map": {"enabled": sc["kind"] == "tracks" if clutter_map is None else clutter_map}}
    for key, value in (overrides or {}).items():  # e.g. {"tracker": {"confirm_m": 4, "confirm_n": 5}}
        video[key] = {**video.get(key, {}), **value} if isinstance(value, dict) else value
    return RadarFeedConfig(id="eval", format="cat240", transport="file", path=pcap, pace="fast", port=PORT,
                           position=tuple(sc["radar"]), range_sigma_m=sc["cell_m"] / math.sqrt(12),
                           bearing_sigma_deg=sc["beamwidth_deg"] / 6, video=video)


def evaluate(pcap: Path, truth: dict, *, method: str | None = None, pfa: float | None = None, guard: int | None = None,
             ref: int | None = None, match_m: float | None = None, overrides: dict | None = None,
             progress: Callable[[int, int], None] = lambda i, n: None) -> RadarEvalResult:
    from edge.radar.feeds import open_feed
    from edge.radar.video import RadarVideoDecoder

    cfg = feed_config(truth, pcap, method=method, pfa=pfa, guard=guard, ref=ref, overrides=overrides)
    sc = truth["scenario"]
    decoder = RadarVideoDecoder(cfg)
    cfar = getattr(decoder.extractor, "cfar", None) or cfg.video.cfar  # a picture model has no CFAR: no Pd, no Pfa
    n_az, n_rg = sc["azimuths"], sc["range_cells"]
    width = 360.0 / n_az
    margin_r = cfar.guard + cfar.ref + 1
    margin_a = int(math.ceil(1.5 * sc["beamwidth_deg"] / width)) + 1  # the rows a target's echo reaches
    pd_hits: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    grid = truth["pd_targets"]
    if grid:
        ga = np.array([g["azimuth_bin"] for g in grid])
        gk = np.array([g["range_cell"] for g in grid])
        gkey = [(g["swerling"], g["snr_db"]) for g in grid]
    static_clear = np.ones((n_az, n_rg), bool)
    for g in grid:
        a, k = g["azimuth_bin"], g["range_cell"]
        rows = np.arange(a - margin_a, a + margin_a + 1) % n_az
        static_clear[rows, max(0, k - margin_r):k + margin_r + 1] = False
    for a0, a1, k0, k1 in truth["fixed_regions"]:
        rows = np.arange(a0 - margin_a, a1 + margin_a + 1) % n_az
        static_clear[rows, max(0, k0 - margin_r):k1 + margin_r + 1] = False
    tracks = [{"id": t["id"], "target": t["target"], "p": np.array(t["positions"])}
              for t in truth["tracks"] if t["positions"]]
    pfa_counts = [0, 0]
    state = {"sweeps": 0}

    def on_sweep(sweep, plots) -> None:
        det = getattr(decoder.extractor, "detections", None)
        state["sweeps"] += 1
        progress(state["sweeps"], truth["sweeps"])
        if det is None or det.shape != (n_az, n_rg):
            return
        clear = static_clear.copy()
        t = sweep.time
        for tr in tracks:  # cells near a truth target this scan are not noise-only
            p = tr["p"]
            near = np.flatnonzero(np.abs(p[:, 0] - t) < sweep_s)
            for i in near:
                e, n = p[i, 1], p[i, 2]
                a = int(math.degrees(math.atan2(e, n)) % 360 / width)
                k = int(round(math.hypot(e, n) / sc["cell_m"]))
                rows = np.arange(a - margin_a, a + margin_a + 1) % n_az
                clear[rows, max(0, k - margin_r):k + margin_r + 1] = False
        clear &= sweep.filled[:, None]
        pfa_counts[0] += int(det[clear].sum())
        pfa_counts[1] += int(clear.sum())
        if grid:
            hit = det[ga, gk]
            for key, h in zip(gkey, hit.tolist()):
                pd_hits[key][0] += 1
                pd_hits[key][1] += int(h)

    sweep_s = sc["rotation_s"] / 2
    decoder.on_sweep = on_sweep
    reports = []
    for message, received in open_feed(cfg, threading.Event()):
        reports += decoder.feed(message, received)
    reports += decoder.flush()
    sweeps = decoder.sweeps
    if sweeps == 0:
        raise DatasetError(f"{pcap}: no complete CAT240 sweep in it")
    # -- detection probability against theory
    n_ref = 2 * cfar.ref
    pd_rows = []
    for (sw, snr_db), (trials, det) in sorted(pd_hits.items()):
        snr = 10 ** (snr_db / 10)
        th = float(pd_swerling1(snr, cfar.pfa, n_ref) if sw == 1 else pd_swerling0(snr, cfar.pfa, n_ref))
        pd_rows.append({"swerling": sw, "snr_db": snr_db, "trials": trials, "detected": det,
                        "measured": det / trials, "theory": th, "difference": det / trials - th,
                        "sigma": math.sqrt(th * (1 - th) / trials)})  # the binomial standard error at theory
    # -- tracks against truth
    frame = decoder.frame
    match = match_m or 4.0 * sc["cell_m"]
    by_track: dict[str, list] = defaultdict(list)
    for r in reports:
        e, n = frame.to_local(r.lat, r.lon)
        by_track[r.target].append((r.time, float(e), float(n)))
    followed: dict[str, list] = defaultdict(list)  # truth id -> errors of the reports that followed it
    false_tracks = 0
    false_list: list[dict] = []
    for tid, rows in by_track.items():
        votes: dict[str, list] = defaultdict(list)
        matched = 0
        for t, e, n in rows:
            near = False
            for tr in tracks:  # every truth track it is near: the log has one vessel under two ARPA targets
                p = tr["p"]
                if not p[0, 0] - sweep_s <= t <= p[-1, 0] + sweep_s:
                    continue
                te, tn = np.interp(t, p[:, 0], p[:, 1]), np.interp(t, p[:, 0], p[:, 2])
                d = math.hypot(e - te, n - tn)
                if d <= match:
                    votes[tr["id"]].append(d)
                    near = True
            matched += near
        if matched < len(rows) / 2:
            false_tracks += 1
            r_m = [math.hypot(e, n) for _, e, n in rows]
            false_list.append({"track": tid, "start_s": round(rows[0][0] - sc["t0"], 1),
                               "duration_s": round(rows[-1][0] - rows[0][0], 1), "reports": len(rows),
                               "matched": matched, "range_m": round(float(np.median(r_m)), 1),
                               "bearing_deg": round(math.degrees(math.atan2(rows[-1][1], rows[-1][2])) % 360, 1)})
        for truth_id, errs in votes.items():
            followed[truth_id] += errs
    errors = np.array([e for v in followed.values() for e in v])
    per_track = [{"id": tr["id"], "target": tr["target"], "confirmed": tr["id"] in followed, "reports": len(followed.get(tr["id"], [])),
                  "coverage": len(followed.get(tr["id"], [])) / len(tr["p"]),
                  "rms_m": float(np.sqrt(np.mean(np.square(followed[tr["id"]])))) if tr["id"] in followed else None}
                 for tr in tracks]
    hours = sweeps * sc["rotation_s"] / 3600.0
    if sc["kind"] != "tracks":
        false_tracks, false_list = 0, []  # the detection grid's fixed targets are tracked too, and are no false tracks
    return RadarEvalResult(
        sweeps=sweeps, cells_per_sweep=n_az * n_rg, pd=pd_rows, pfa_configured=cfar.pfa,
        pfa_measured=pfa_counts[0] / pfa_counts[1] if pfa_counts[1] else math.nan, pfa_cells=pfa_counts[1],
        false_alarms=pfa_counts[0], truth_tracks=len(tracks), confirmed=sum(p["confirmed"] for p in per_track),
        position_rms_m=float(np.sqrt(np.mean(errors ** 2))) if errors.size else None, cell_m=sc["cell_m"],
        false_tracks=false_tracks, hours=hours, false_tracks_per_hour=false_tracks / hours if hours else math.nan,
        tracks_confirmed=len(by_track), per_track=per_track,
        targets=sorted({tr["target"] for tr in tracks}),
        targets_confirmed=sorted({p["target"] for p in per_track if p["confirmed"]}), false_track_list=false_list)


def load_truth(path: Path) -> dict:
    try:
        truth = json.loads(path.read_text())
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the truth file ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(truth, dict) or "scenario" not in truth:
        raise DatasetError(f"{path}: not a truth file of `eval radar-video-scenario` (no scenario in it)")
    return truth
