"""The fusion evaluation scenario: a radar feed generated from PETS09-S3-MF1's real trajectories.

No public recording has radar and video of one scene, so this writes what a radar beside the
camera would have reported while the seven people of PETS09-S3-MF1 walked by. Assumptions, all
stated and all parameters of `generate`:

- Trajectories: each ground-truth person's box bottom-centre, placed on the ground plane with
  the sequence's own calibration (View_001.xml). The ground-plane columns of gt/gt.txt are not
  used: they do not describe the boxes (projected, they miss them by a median of ~200 px, and
  123 rows are 0,0), so the boxes are the real trajectories this recording has.
- Geography: the calibration's world origin is the post, at POST_LAT, POST_LON; world x points
  east and y north (the calibration's frame is right-handed with z up).
- The radar stands on the camera's mast: at the ground point below the camera centre. Every
  `scan_s` (1 s) it reports each person as an ARPA target ($RATTM, distance and speed in km and
  km/h, true bearing and course), with Gaussian noise of `range_sigma_m` and `bearing_sigma_deg`,
  a report missed with probability `dropout`, and clutter: false tracks born at
  `clutter_rate` per second anywhere over the scene, living 2-6 s, drifting up to 1 m/s.
- Target numbers: 10 + the ground-truth id for people, 90 and up for clutter.
- Time: scan k at T0 + k s; video frame i is at T0 + i / fps. A $GPRMC each scan gives the
  radar's position and the date.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.geo import LocalFrame, bearing_of

POST_LAT, POST_LON = 45.8150, 15.9819
T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
PERSON_BASE, CLUTTER_BASE = 10, 90


def checksum(body: str) -> str:
    x = 0
    for ch in body.encode():
        x ^= ch
    return f"{x:02X}"


def sentence(body: str) -> str:
    return f"${body}*{checksum(body)}"


def _dm(value: float, lat: bool) -> tuple[str, str]:
    hemi = ("N" if value >= 0 else "S") if lat else ("E" if value >= 0 else "W")
    v = abs(value)
    deg = int(v)
    minutes = (v - deg) * 60
    return (f"{deg:02d}{minutes:07.4f}" if lat else f"{deg:03d}{minutes:07.4f}"), hemi


def rmc(when: dt.datetime, lat: float, lon: float) -> str:
    la, ns = _dm(lat, True)
    lo, ew = _dm(lon, False)
    return sentence(f"GPRMC,{when:%H%M%S.%f}"[:-4] + f",A,{la},{ns},{lo},{ew},0.0,0.0,{when:%d%m%y},,,A")


def ttm(number: int, range_m: float, bearing: float, speed_mps: float, course: float, when: dt.datetime, name: str) -> str:
    return sentence(
        f"RATTM,{number:02d},{range_m / 1000:.4f},{bearing % 360:.1f},T,{speed_mps * 3.6:.2f},{course % 360:.1f},T,"
        f",,K,{name},T,,{when:%H%M%S.%f}"[:-4] + ",A"
    )


@dataclass(frozen=True)
class Scenario:
    lines: list[str]
    radar_position: tuple[float, float]  # east, north of the radar
    people: dict[int, int]  # radar target number -> ground-truth id
    reports: int
    clutter_tracks: int


def trajectories(gt: dict[int, list[tuple[int, tuple[float, float, float, float]]]], ground_of) -> dict[int, np.ndarray]:
    """gt {frame: [(id, (x, y, w, h))]} -> {id: array of (frame, east, north)} via `ground_of`,
    a function from (N, 2) pixels to (N, 2) ground metres (the camera model)."""
    rows = [(f, oid, x + w / 2, y + h) for f, items in gt.items() for oid, (x, y, w, h) in items]
    arr = np.array(rows, dtype=np.float64)
    ground = np.asarray(ground_of(arr[:, 2:4]), dtype=np.float64)
    out: dict[int, np.ndarray] = {}
    for oid in np.unique(arr[:, 1]).astype(int):
        sel = arr[:, 1] == oid
        order = np.argsort(arr[sel, 0])
        out[oid] = np.column_stack([arr[sel, 0][order], ground[sel][order]])
    return out


def generate(tracks: dict[int, np.ndarray], radar_en: tuple[float, float], fps: float, *, scan_s: float = 1.0,
             range_sigma_m: float = 1.0, bearing_sigma_deg: float = 0.5, dropout: float = 0.1,
             clutter_rate: float = 0.2, area: tuple[float, float, float, float] | None = None, seed: int = 7,
             frame: LocalFrame | None = None) -> Scenario:
    """NMEA lines of the virtual radar for trajectories {id: (frame number, east, north)}."""
    rng = np.random.default_rng(seed)
    frame = frame or LocalFrame(POST_LAT, POST_LON)
    rlat, rlon = frame.to_geo(*radar_en)
    first = min(int(t[0, 0]) for t in tracks.values())
    last = max(int(t[-1, 0]) for t in tracks.values())
    duration = (last - first) / fps
    if area is None:
        allp = np.concatenate([t[:, 1:3] for t in tracks.values()])
        area = (allp[:, 0].min() - 5, allp[:, 0].max() + 5, allp[:, 1].min() - 5, allp[:, 1].max() + 5)
    lines: list[str] = []
    reports = 0
    clutter: list[dict] = []
    next_clutter = CLUTTER_BASE
    scans = int(math.floor(duration / scan_s)) + 1
    for k in range(scans):
        ts = k * scan_s
        when = T0 + dt.timedelta(seconds=ts)
        lines.append(rmc(when, rlat, rlon))
        frame_no = first + ts * fps
        for oid, tr in sorted(tracks.items()):
            if not tr[0, 0] <= frame_no <= tr[-1, 0] or rng.random() < dropout:
                continue
            e = np.interp(frame_no, tr[:, 0], tr[:, 1])
            n = np.interp(frame_no, tr[:, 0], tr[:, 2])
            e2 = np.interp(frame_no + fps, tr[:, 0], tr[:, 1])  # a second later: the velocity
            n2 = np.interp(frame_no + fps, tr[:, 0], tr[:, 2])
            lines.append(_report(PERSON_BASE + oid, e, n, e2 - e, n2 - n, radar_en, range_sigma_m, bearing_sigma_deg,
                                 when, f"person {oid}", rng))
            reports += 1
        if rng.random() < clutter_rate * scan_s:
            clutter.append({"n": next_clutter, "until": ts + rng.uniform(2, 6),
                            "e": rng.uniform(area[0], area[1]), "nn": rng.uniform(area[2], area[3]),
                            "ve": rng.uniform(-1, 1), "vn": rng.uniform(-1, 1)})
            next_clutter += 1
        for c in [c for c in clutter if c["until"] >= ts]:
            c["e"] += c["ve"] * scan_s
            c["nn"] += c["vn"] * scan_s
            lines.append(_report(c["n"], c["e"], c["nn"], c["ve"], c["vn"], radar_en, range_sigma_m, bearing_sigma_deg,
                                 when, "clutter", rng))
            reports += 1
        clutter = [c for c in clutter if c["until"] >= ts]
    people = {PERSON_BASE + oid: oid for oid in tracks}
    return Scenario(lines, radar_en, people, reports, next_clutter - CLUTTER_BASE)


def _report(number: int, e: float, n: float, ve: float, vn: float, radar_en, range_sigma_m, bearing_sigma_deg, when, name,
            rng) -> str:
    de, dn = e - radar_en[0], n - radar_en[1]
    rng_m = max(0.0, math.hypot(de, dn) + rng.normal(0, range_sigma_m))
    bearing = float(bearing_of(de, dn)) + rng.normal(0, bearing_sigma_deg)
    speed = math.hypot(ve, vn)
    course = float(bearing_of(ve, vn)) if speed > 0 else 0.0
    return ttm(number, rng_m, bearing, speed, course, when, name)


def write(path: Path, scenario: Scenario) -> None:
    path.write_text("\r\n".join(scenario.lines) + "\r\n")
