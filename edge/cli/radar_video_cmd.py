"""`zastava-edge eval radar-video-scenario|radar` and `zastava-edge radar bench-video`: radar
picture streams (CAT240) generated from stated scenarios, measured against theory and truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.common import positive_int
from edge.errors import DatasetError, SourceError


def _bar(desc: str):
    """A progress callback (i, n) drawing a bar on a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return lambda i, n: None
    from tqdm import tqdm

    state: dict = {}

    def step(i: int, n: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=n, desc=desc, unit="sweep", file=sys.stderr, leave=False)
        bar.update(i - bar.n)
        if i >= n:
            bar.close()

    return step


def register_eval(esub: argparse._SubParsersAction) -> None:
    g = esub.add_parser(
        "radar-video-scenario",
        help="write a CAT240 radar video pcap and its truth from a stated scenario",
        description="No public CAT240 recording exists: this simulates a surveillance radar's video (every "
        "assumption is in edge/evaluation/radar_video.py) with targets on the four real ARPA trajectories of "
        "RadarLogs.txt (--kind tracks) or a grid of Swerling 0/1 targets at stated SNRs (--kind pd).",
    )
    g.add_argument("--kind", choices=["tracks", "pd"], default="tracks")
    g.add_argument("--out", type=Path, required=True, help="the pcap to write")
    g.add_argument("--truth", type=Path, required=True, help="the truth file (JSON) to write")
    g.add_argument("--arpa-log", type=Path, help="RadarLogs.txt (default: $ZASTAVA_DATA/radar/nmea/arpa/RadarLogs.txt)")
    g.add_argument("--clutter", choices=["none", "k"], default="none", help="k: K-distributed sea clutter")
    g.add_argument("--k-shape", type=float, default=2.0, help="K-distribution shape (smaller: spikier)")
    g.add_argument("--cnr-db", type=float, default=10.0, help="clutter over noise, dB")
    g.add_argument("--snr-db", type=float, default=20.0, help="tracks: target SNR over noise + clutter, dB")
    g.add_argument("--swerling", type=int, choices=[0, 1], default=1, help="tracks: target fluctuation")
    g.add_argument("--start", type=float, default=0.0, help="tracks: seconds into the log to start at")
    g.add_argument("--preroll", type=float, default=60.0, help="tracks: seconds the radar runs before that, "
                                                              "with no target (its clutter map learns the coast)")
    g.add_argument("--duration", type=float, help="tracks: seconds to simulate (default: to the log's end)")
    g.add_argument("--sweeps", type=positive_int, default=60, help="pd: scans to simulate")
    g.add_argument("--range-cells", type=positive_int, help="range cells (default 256 tracks, 512 pd)")
    g.add_argument("--azimuths", type=positive_int, default=1024)
    g.add_argument("--no-fixed-returns", action="store_true", help="tracks: leave out the coast and buildings")
    g.add_argument("--seed", type=int, default=7)
    g.set_defaults(run=run_scenario)

    e = esub.add_parser(
        "radar",
        help="detection probability, false alarms and track figures of radar video against its truth",
        description="Runs the node's radar video path (CAT240 decoding, sweeps, CFAR, clutter map, plots, tracker) "
        "on PCAP and compares with the truth file of `eval radar-video-scenario`: Pd per SNR against CA-CFAR "
        "theory, the false-alarm rate per cell, the share of truth tracks confirmed, position RMS error and "
        "false tracks per hour.",
    )
    e.add_argument("pcap", type=Path)
    e.add_argument("--truth", type=Path, required=True)
    e.add_argument("--cfar", choices=["ca", "os"], help="override the CFAR method (default ca)")
    e.add_argument("--pfa", type=float, help="override the configured false-alarm probability (default 1e-6)")
    e.add_argument("--guard", type=int, help="guard cells each side (default 2)")
    e.add_argument("--ref", type=int, help="reference cells each side (default 16)")
    e.add_argument("--json", action="store_true", help="last line: every figure as one JSON object")
    e.set_defaults(run=run_eval)


def run_scenario(args: argparse.Namespace) -> int:
    import os

    from pydantic import ValidationError

    from edge.evaluation.radar_video import Scenario, generate

    log = args.arpa_log
    if args.kind == "tracks" and log is None:
        data = os.environ.get("ZASTAVA_DATA")
        if not data:
            raise DatasetError("--kind tracks needs the ARPA log: give --arpa-log or set $ZASTAVA_DATA")
        log = Path(data) / "radar" / "nmea" / "arpa" / "RadarLogs.txt"
    if log is not None and not log.is_file():
        raise DatasetError(f"{log}: no such ARPA log")
    try:
        sc = Scenario(kind=args.kind, seed=args.seed, clutter=args.clutter, k_shape=args.k_shape, cnr_db=args.cnr_db,
                      snr_db=args.snr_db, swerling=args.swerling, start_s=args.start, preroll_s=args.preroll,
                      duration_s=args.duration,
                      sweeps=args.sweeps, azimuths=args.azimuths,
                      range_cells=args.range_cells or (512 if args.kind == "pd" else 256),
                      fixed_returns=not args.no_fixed_returns)
    except ValidationError as e:
        err = e.errors()[0]
        raise DatasetError(f"--{'-'.join(str(x) for x in err['loc'])}: {err['msg']}") from None
    truth = generate(sc, args.out, args.truth, log=log, progress=_bar("generate"))
    size = args.out.stat().st_size
    print(f"{args.out}: {truth['sweeps']} sweeps of {sc.azimuths} x {sc.range_cells} cells ({size / 1e6:.1f} MB), "
          f"{len(truth['tracks'])} truth tracks, {len(truth['pd_targets'])} grid targets; truth in {args.truth}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from edge.evaluation.radar_video import evaluate, load_truth

    if not args.pcap.is_file():
        raise SourceError(f"{args.pcap}: no such capture")
    truth = load_truth(args.truth)
    r = evaluate(args.pcap, truth, method=args.cfar, pfa=args.pfa, guard=args.guard, ref=args.ref,
                 progress=_bar("eval"))
    sc = truth["scenario"]
    print(f"{args.pcap.name}: {r.sweeps} sweeps of {r.cells_per_sweep:,} cells, clutter {sc['clutter']}, "
          f"rotation {sc['rotation_s']:g} s, beamwidth {sc['beamwidth_deg']:g} deg, cell {r.cell_m:g} m")
    print(f"theory: {r.theory}")
    if r.pd:
        print(f"{'swerling':>8} {'SNR dB':>6} {'trials':>6} {'Pd measured':>11} {'Pd theory':>9} {'diff':>7} "
              f"{'1 sigma':>7}")
        for row in r.pd:
            print(f"{row['swerling']:>8} {row['snr_db']:>6.1f} {row['trials']:>6} {row['measured']:>11.3f} "
                  f"{row['theory']:>9.3f} {row['difference']:>+7.3f} {row['sigma']:>7.3f}")
        worst = max(r.pd, key=lambda row: abs(row["difference"]))
        print(f"largest |measured - theory|: {abs(worst['difference']):.3f} "
              f"({abs(worst['difference']) / max(worst['sigma'], 1e-12):.1f} sigma of its trials)")
    print(f"false alarms per cell: {r.pfa_measured:.2e} measured ({r.false_alarms} in {r.pfa_cells:,} noise-only "
          f"cells), {r.pfa_configured:.0e} configured")
    if r.truth_tracks:
        rms = f"{r.position_rms_m:.1f} m" if r.position_rms_m is not None else "-"
        print(f"targets tracked: {len(r.targets_confirmed)} of {len(r.targets)} ({', '.join(r.targets)}); "
              f"truth tracks confirmed: {r.confirmed} of {r.truth_tracks}; position RMS {rms} "
              f"({(r.position_rms_m or 0) / r.cell_m:.2f} range cells)")
        for t in r.per_track:
            print(f"  {t['id']}: {'confirmed' if t['confirmed'] else 'MISSED'}, {t['reports']} reports "
                  f"({100 * t['coverage']:.0f}% of its scans)" + (f", RMS {t['rms_m']:.1f} m" if t['rms_m'] else ""))
    if sc["kind"] == "tracks":
        print(f"false tracks: {r.false_tracks} in {r.hours:.2f} simulated hours ({r.false_tracks_per_hour:.2f} per hour); "
              f"{r.tracks_confirmed} confirmed tracks in all")
        for f in r.false_track_list:
            print(f"  false track {f['track']}: {f['start_s']:.0f} s in, {f['reports']} reports over "
                  f"{f['duration_s']:.0f} s at {f['range_m']:.0f} m, bearing {f['bearing_deg']:.0f} deg")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0


def register_bench(rsub: argparse._SubParsersAction) -> None:
    b = rsub.add_parser("bench-video", help="plot extraction on full-size radar video; the camera's throughput beside it")
    b.add_argument("--azimuths", type=positive_int, default=4096)
    b.add_argument("--cells", type=positive_int, default=4096)
    b.add_argument("--rotation", type=float, default=2.5, help="antenna rotation period, s")
    b.add_argument("--rounds", type=positive_int, default=5)
    b.add_argument("--camera", help="a video: also measure the camera's detection path alone and beside extraction")
    b.add_argument("--frames", type=positive_int, default=60, help="camera frames per round")
    b.add_argument("--extraction-only", action="store_true",
                   help="beside the camera, extract plots from decoded sweeps (default: ingest the CAT240 datagrams too)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=run_bench_video)


def run_bench_video(args: argparse.Namespace) -> int:
    from edge.radar_video_bench import run_video_bench

    def on_round(i: int, row: dict) -> None:
        cam = (f"; camera {row['camera_ms']:.1f} ms/frame alone, {row['camera_with_radar_ms']:.1f} with radar "
               f"({100 * row['drop']:+.1f}%)") if "camera_ms" in row else ""
        print(f"round {i + 1}/{args.rounds}: ingest {row['ingest_s'] * 1000:.0f} ms, extraction {row['extract_s'] * 1000:.0f} ms, "
              f"{row['plots']} plots{cam}",
              file=sys.stderr)

    r = run_video_bench(azimuths=args.azimuths, cells=args.cells, rotation_s=args.rotation, rounds=args.rounds,
                        camera_source=args.camera, frames_per_round=args.frames,
                        beside_ingest=not args.extraction_only, on_round=on_round)
    print(f"sweeps of {r.azimuths} azimuths x {r.cells} cells, one per {r.rotation_s:g} s; medians of {r.rounds} rounds")
    print(f"plot extraction (CA-CFAR, clutter map, plots): {r.extract_s * 1000:.0f} ms per sweep, "
          f"{r.cells_per_s / 1e6:.1f} M cells/s, {1 / r.extract_s:.2f} sweeps/s, real-time factor {r.realtime_factor:.1f}")
    print(f"ingest ({r.azimuths} CAT240 datagrams decoded, sweep assembled): {r.ingest_s * 1000:.0f} ms per sweep; "
          f"ingest and extraction together: real-time factor {r.rotation_s / (r.ingest_s + r.extract_s):.1f}")
    if r.camera_ms is not None:
        print(f"camera detection path: {r.camera_ms:.2f} ms/frame alone, {r.camera_with_radar_ms:.2f} ms/frame with "
              f"{'radar ingest and plot extraction' if r.beside_ingest else 'plot extraction'} beside it: "
              f"throughput {100 * r.camera_drop:.1f}% lower")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0
