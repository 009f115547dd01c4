"""`zastava-edge calibrate POINTS`: a camera's ground homography from surveyed points.

POINTS is YAML or CSV: at least 4 pixels of the camera's picture, each with the place on the
ground it shows, in lat/lon or in east/north metres from the post.

    post: {lat: 58.2123, lon: 11.5475}     # optional; east/north points are metres from it
    image_size: [1920, 1080]               # optional (taken from --image)
    points:
      - {pixel: [812, 940], lat: 58.21291, lon: 11.54803}
      - {pixel: [1530, 702], east: 41.2, north: 88.0}

    u,v,lat,lon                            # CSV: a header naming u, v and lat, lon or east, north
    812,940,58.21291,11.54803              # "# post: 58.2123, 11.5475" may precede it

It prints each point's reprojection error (pixels, and metres on the ground), the RMS, each
point's error when the homography is solved without it (held out: the honest check, since
a fit always passes near its own points), and the `geometry:` block for the node config.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pydantic import ValidationError

from edge.cli.common import lat_lon
from edge.errors import ZastavaError

MAX_SURVEY_BYTES = 1_000_000


class SurveyError(ZastavaError):
    """A survey file that cannot give a homography."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="solve a camera's ground homography from >= 4 surveyed pixel/place pairs",
        description="Solve the homography from image pixels to the ground (the post's east/north metres) from "
        "surveyed points; print each point's error and the `geometry:` block for the node config.",
    )
    p.add_argument("points", type=Path, help="YAML or CSV of surveyed points (pixel u, v and lat/lon or east/north)")
    p.add_argument("--image", type=Path, help="a frame of the camera, to draw the points, reprojections and a ground grid on")
    p.add_argument("--out", type=Path, help="the drawn picture (.png or .jpg); goes with --image")
    p.add_argument("--ransac", type=float, metavar="PX",
                   help="leave out points more than PX pixels off the fit (RANSAC, with more than 4 points)")
    p.add_argument("--grid", type=float, metavar="M", help="ground grid spacing in metres (default: automatic)")
    p.add_argument("--post", type=lat_lon, metavar="LAT,LON", help="the post's position (instead of the file's `post`)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(run=run)


# -- reading a survey ------------------------------------------------------------------------


@dataclass
class Survey:
    points: list  # list[SurveyPoint]
    post: tuple[float, float] | None
    image_size: tuple[int, int] | None


def read_survey(path: Path) -> Survey:
    """A survey file (YAML, or CSV by its .csv suffix), validated point by point."""
    from edge.camera_model import SurveyPoint
    from edge.settings_files import FileProblem, parse_yaml, read_text

    try:
        text = read_text(path, MAX_SURVEY_BYTES, "survey")
        raw = _read_csv(text, path) if path.suffix.lower() == ".csv" else parse_yaml(text, str(path))
    except FileProblem as e:
        raise SurveyError(str(e)) from None
    if isinstance(raw, list):
        raw = {"points": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("points"), list):
        raise SurveyError(f"{path}: a survey is a list of points, or a mapping with `points` (and optionally `post`, `image_size`)")
    unknown = set(raw) - {"points", "post", "image_size"}
    if unknown:
        raise SurveyError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (expected points, post, image_size)")
    problems, points = [], []
    for i, item in enumerate(raw["points"]):
        try:
            points.append(SurveyPoint.model_validate(item))
        except ValidationError as e:
            problems += [f"points[{i}]{_where(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in e.errors()]
    post = _post(raw.get("post"), path)
    size = raw.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        problems.append(f"image_size: {size!r} is not [width, height] in pixels")
    if problems:
        raise SurveyError(f"{path}: " + "; ".join(problems))
    return Survey(points, post, tuple(size) if size else None)


def _where(loc: tuple) -> str:
    return "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc)


def _post(value, path: Path) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lat, lon = float(value["lat"]), float(value["lon"])
    except (TypeError, KeyError, ValueError):
        raise SurveyError(f"{path}: post: give it as {{lat: .., lon: ..}}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise SurveyError(f"{path}: post: ({lat}, {lon}) is not a latitude, longitude in degrees")
    return lat, lon


def _read_csv(text: str, path: Path) -> dict:
    post = None
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            key, _, value = stripped[1:].partition(":")
            if key.strip().lower() == "post":
                try:
                    lat, lon = (float(x) for x in value.split(","))
                except ValueError:
                    raise SurveyError(f"{path}: '# post:' needs LAT, LON") from None
                post = {"lat": lat, "lon": lon}
        elif stripped:
            lines.append(stripped)
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows:
        raise SurveyError(f"{path}: no points")
    header = [h.strip().lower() for h in rows[0]]
    place = ("lat", "lon") if {"lat", "lon"} <= set(header) else ("east", "north")
    need = ["u", "v", *place]
    if not set(need) <= set(header):
        raise SurveyError(f"{path}: the CSV header needs u, v and lat, lon or east, north (got {', '.join(header)})")
    col = {name: header.index(name) for name in need}
    points = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            values = {name: float(row[i]) for name, i in col.items()}
        except (ValueError, IndexError):
            raise SurveyError(f"{path}: CSV row {n}: needs numbers for {', '.join(need)}") from None
        points.append({"pixel": [values["u"], values["v"]], place[0]: values[place[0]], place[1]: values[place[1]]})
    return {"points": points, **({"post": post} if post else {})}


# -- solving ---------------------------------------------------------------------------------


@dataclass
class Calibration:
    pixels: np.ndarray  # (N, 2)
    ground: np.ndarray  # (N, 2) east/north metres
    homography: np.ndarray  # pixels -> ground
    inliers: np.ndarray  # (N,) bool
    reprojection_px: np.ndarray  # (N,)
    ground_m: np.ndarray  # (N,)
    held_out_px: np.ndarray | None  # (N,) inliers solved without themselves; None with 4 points
    held_out_m: np.ndarray | None

    @staticmethod
    def rms(values: np.ndarray) -> float:
        return float(np.sqrt(np.mean(values**2))) if len(values) else float("nan")


def calibrate(pixels: np.ndarray, ground: np.ndarray, ransac_px: float | None = None) -> Calibration:
    """Solve and score the homography; raises SurveyError when the points cannot give one."""
    from edge.camera_model import GroundHomography, solve_ground_homography, survey_problems

    problems = survey_problems(pixels, ground)
    if problems:
        raise SurveyError("; ".join(problems))
    try:
        h, inliers = solve_ground_homography(pixels, ground, ransac_px)
    except ValueError as e:
        raise SurveyError(str(e)) from None

    def errors(hm: np.ndarray, idx) -> tuple[np.ndarray, np.ndarray]:
        model = GroundHomography(hm)
        px, _ = model.world_to_pixel(ground[idx])
        return np.linalg.norm(px - pixels[idx], axis=1), np.linalg.norm(model.pixel_to_ground(pixels[idx]) - ground[idx], axis=1)

    rep_px, rep_m = errors(h, slice(None))
    held_px = held_m = None
    keep = np.flatnonzero(inliers)
    if len(keep) > 4:  # with 4 the fit is exact and holding one out leaves too few
        held_px, held_m = np.full(len(pixels), np.nan), np.full(len(pixels), np.nan)
        for i in keep:
            others = keep[keep != i]
            if survey_problems(pixels[others], ground[others]):
                continue
            hi, _ = solve_ground_homography(pixels[others], ground[others])
            held_px[i], held_m[i] = (e[0] for e in errors(hi, [i]))
    return Calibration(pixels, ground, h, inliers, rep_px, rep_m, held_px, held_m)


# -- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from edge.camera_model import CameraGeometry
    from edge.geo import LocalFrame

    if (args.image is None) != (args.out is None):
        raise ZastavaError("--image and --out go together: the frame to draw on, and where to write the drawing")
    if args.ransac is not None and args.ransac <= 0:
        raise ZastavaError("--ransac needs a positive pixel threshold")
    if args.grid is not None and args.grid <= 0:
        raise ZastavaError("--grid needs a positive spacing in metres")
    survey = read_survey(args.points)
    post = args.post or survey.post
    image = size = None
    if args.image is not None:
        from edge.sources import read_image

        image = read_image(args.image)
        size = (image.shape[1], image.shape[0])
        if survey.image_size and tuple(survey.image_size) != size:
            raise SurveyError(f"{args.image} is {size[0]}x{size[1]} but {args.points} says image_size {survey.image_size[0]}x{survey.image_size[1]}")
    size = size or survey.image_size
    geo = [p.is_geo for p in survey.points]
    frame = None
    if post is not None:
        frame = LocalFrame(*post)
    elif any(geo):  # metres need a frame: without the post, one at the survey's middle
        lats = [p.lat for p in survey.points if p.is_geo]
        lons = [p.lon for p in survey.points if p.is_geo]
        frame = LocalFrame(float(np.mean(lats)), float(np.mean(lons)))
    pixels = np.array([p.pixel for p in survey.points], dtype=np.float64)
    ground = np.array([frame.to_local(p.lat, p.lon) if p.is_geo else (p.east, p.north) for p in survey.points],
                      dtype=np.float64).reshape(-1, 2)
    try:
        cal = calibrate(pixels, ground, args.ransac)
    except SurveyError as e:
        raise SurveyError(f"{args.points}: {e}") from None

    block = {"points": [{k: (list(v) if k == "pixel" else v) for k, v in p.model_dump(exclude_none=True).items()}
                        for p, ok in zip(survey.points, cal.inliers) if ok]}
    if size:
        block["image_size"] = list(size)
    try:
        CameraGeometry.model_validate(block)  # what we print must load
    except ValidationError as e:
        from edge.config import format_errors

        raise SurveyError(f"{args.points}: " + "; ".join(format_errors(e))) from None

    if image is not None:
        from edge.recording import write_image

        write_image(args.out, draw_calibration(image, cal, grid_m=args.grid))

    if args.json:
        print(json.dumps(_json(cal, block, post, survey, args.out), indent=2))
    else:
        sys.stdout.write(_report(cal, block, post, survey, any(geo), args.out))
    return 0


def _json(cal: Calibration, block: dict, post, survey: Survey, out: Path | None) -> dict:
    def num(x) -> float | None:
        return None if x is None or not math.isfinite(x) else round(float(x), 4)

    points = []
    for i, p in enumerate(survey.points):
        points.append({
            "index": i, "pixel": list(p.pixel), "east": round(float(cal.ground[i, 0]), 4), "north": round(float(cal.ground[i, 1]), 4),
            **({"lat": p.lat, "lon": p.lon} if p.is_geo else {}), "inlier": bool(cal.inliers[i]),
            "reprojection_px": num(cal.reprojection_px[i]), "ground_m": num(cal.ground_m[i]),
            "held_out_px": num(cal.held_out_px[i]) if cal.held_out_px is not None else None,
            "held_out_m": num(cal.held_out_m[i]) if cal.held_out_m is not None else None,
        })
    ok = cal.inliers
    held = cal.held_out_px is not None
    return {
        "points": points, "inliers": int(ok.sum()),
        "rms_px": num(cal.rms(cal.reprojection_px[ok])), "rms_m": num(cal.rms(cal.ground_m[ok])),
        "held_out_rms_px": num(cal.rms(cal.held_out_px[ok & np.isfinite(cal.held_out_px)])) if held else None,
        "held_out_rms_m": num(cal.rms(cal.held_out_m[ok & np.isfinite(cal.held_out_m)])) if held else None,
        "homography": [[float(f"{v:.9g}") for v in row] for row in cal.homography],
        "post": list(post) if post else None, "geometry": block, "overlay": str(out) if out else None,
    }


def _report(cal: Calibration, block: dict, post, survey: Survey, geo: bool, out: Path | None) -> str:
    ok = cal.inliers
    held = cal.held_out_px is not None
    lines = [f"{len(cal.pixels)} surveyed points, {int(ok.sum())} used; errors of the fit (pixels, and metres on the ground):"]
    head = f"{'#':>3} {'u':>8} {'v':>8} {'east m':>10} {'north m':>10} {'px':>7} {'m':>8}"
    lines.append(head + (f" {'held-out px':>11} {'held-out m':>10}" if held else ""))
    for i in range(len(cal.pixels)):
        row = (f"{i:>3} {cal.pixels[i, 0]:>8.1f} {cal.pixels[i, 1]:>8.1f} {cal.ground[i, 0]:>10.3f} {cal.ground[i, 1]:>10.3f}"
               f" {cal.reprojection_px[i]:>7.2f} {cal.ground_m[i]:>8.3f}")
        if held:
            row += f" {cal.held_out_px[i]:>11.2f} {cal.held_out_m[i]:>10.3f}" if ok[i] else f" {'':>11} {'':>10}"
        lines.append(row + ("" if ok[i] else "  left out (RANSAC)"))
    lines.append(f"RMS {cal.rms(cal.reprojection_px[ok]):.2f} px, {cal.rms(cal.ground_m[ok]):.3f} m on the ground")
    if held:
        hp, hm = cal.held_out_px[ok & np.isfinite(cal.held_out_px)], cal.held_out_m[ok & np.isfinite(cal.held_out_m)]
        lines.append(f"held out RMS {cal.rms(hp):.2f} px, {cal.rms(hm):.3f} m: what to expect between the points")
    else:
        lines.append("4 points fit exactly: their errors are 0 by construction; survey more points to check the fit")
    h = cal.homography
    lines.append("homography (pixels -> east/north m): [" + ", ".join("[" + ", ".join(f"{v:.9g}" for v in r) + "]" for r in h) + "]")
    if out:
        lines.append(f"drawing: {out}")
    lines.append("")
    if geo and post is None:
        lines.append("# lat/lon points: solved in the node's frame at load (node lat/lon needed)")
    elif not geo:
        where = f"the post at {post[0]:.6f}, {post[1]:.6f}" if post else "the post"
        lines.append(f"# east/north are metres from {where}: the node's lat/lon must be that post")
    lines.append("# paste under the camera in the node config:")
    lines += geometry_yaml(block)
    return "\n".join(lines) + "\n"


def geometry_yaml(block: dict) -> list[str]:
    """The `geometry:` block, one point per line (flow style reads like the README's configs)."""
    def flow(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=1000, sort_keys=False).strip()

    lines = ["geometry:", "  points:"]
    lines += [f"    - {flow(p)}" for p in block["points"]]
    lines += [f"  {k}: {flow(v)}" for k, v in block.items() if k != "points"]
    return lines


# -- the drawing -----------------------------------------------------------------------------


def _nice_step(span: float) -> float:
    """A 1-2-5 step giving about 8 grid lines across `span` metres."""
    raw = max(span, 1e-6) / 8
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def draw_calibration(image: np.ndarray, cal: Calibration, grid_m: float | None = None) -> np.ndarray:
    """The frame with a ground grid (east/north lines), the horizon, the surveyed pixels
    (green, numbered), where the fit puts their places (red crosses) and the gap between them."""
    import cv2

    from edge.camera_model import GroundHomography

    out = image.copy()
    hgt, wid = out.shape[:2]
    model = GroundHomography(cal.homography, image_size=(wid, hgt))
    lo, hi = cal.ground.min(axis=0), cal.ground.max(axis=0)
    span = float(max(hi - lo))
    step = grid_m or _nice_step(span)
    lo, hi = lo - span, hi + span  # the grid runs past the survey to show how it extends
    lo, hi = np.floor(lo / step) * step, np.ceil(hi / step) * step
    grid_colour, font = (255, 200, 0), cv2.FONT_HERSHEY_SIMPLEX
    t = np.linspace(0, 1, 200)
    lines = [(f"E{e:g}", np.c_[np.full_like(t, e), lo[1] + t * (hi[1] - lo[1])]) for e in np.arange(lo[0], hi[0] + step / 2, step)]
    lines += [(f"N{n:g}", np.c_[lo[0] + t * (hi[0] - lo[0]), np.full_like(t, n)]) for n in np.arange(lo[1], hi[1] + step / 2, step)]
    for label, pts in lines[:400]:
        px, _ = model.world_to_pixel(pts)
        # Keep what is in front and not absurdly far off the picture (near the horizon the
        # projection races off to infinity).
        good = np.isfinite(px).all(axis=1) & (np.abs(px - [wid / 2, hgt / 2]) < 4 * max(wid, hgt)).all(axis=1)
        for a, b in zip(np.flatnonzero(good[:-1] & good[1:]), np.flatnonzero(good[:-1] & good[1:]) + 1):
            cv2.line(out, tuple(np.round(px[a]).astype(int)), tuple(np.round(px[b]).astype(int)), grid_colour, 1, cv2.LINE_AA)
        inside = good & (px[:, 0] >= 0) & (px[:, 0] < wid) & (px[:, 1] >= 0) & (px[:, 1] < hgt)
        if inside.any():
            k = np.flatnonzero(inside)[np.argmax(px[inside, 1])]  # label at the line's lowest point on the picture
            cv2.putText(out, label, tuple(np.round(px[k]).astype(int) + [3, -3]), font, 0.35, grid_colour, 1, cv2.LINE_AA)
    # The horizon: where pixels stop meeting the ground (w = 0).
    a, b, c = cal.homography[2]
    if abs(b) > 1e-12:
        y0, y1 = -c / b, -(a * (wid - 1) + c) / b
        if min(y0, y1) < hgt and max(y0, y1) >= 0:
            cv2.line(out, (0, int(round(y0))), (wid - 1, int(round(y1))), (255, 0, 255), 1, cv2.LINE_AA)
    reproj, _ = model.world_to_pixel(cal.ground)
    for i, (p, q) in enumerate(zip(cal.pixels, reproj)):
        pi = tuple(np.round(p).astype(int))
        colour = (0, 220, 0) if cal.inliers[i] else (0, 140, 255)
        if np.isfinite(q).all():
            qi = tuple(np.round(q).astype(int))
            cv2.line(out, pi, qi, (0, 255, 255), 1, cv2.LINE_AA)
            cv2.drawMarker(out, qi, (0, 0, 255), cv2.MARKER_CROSS, 10, 2)
        cv2.circle(out, pi, 5, colour, 2, cv2.LINE_AA)
        cv2.putText(out, str(i), (pi[0] + 6, pi[1] - 6), font, 0.45, colour, 1, cv2.LINE_AA)
    ok = cal.inliers
    legend = (f"surveyed (green, orange: left out)  fit (red x)  grid {step:g} m  horizon (magenta)  "
              f"RMS {cal.rms(cal.reprojection_px[ok]):.2f} px")
    cv2.rectangle(out, (0, 0), (wid, 20), (0, 0, 0), -1)
    cv2.putText(out, legend, (5, 14), font, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out
