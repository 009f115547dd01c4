"""`zastava-edge radar decode|bench`: what a radar or AIS recording holds, and how fast it decodes."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from edge.cli.common import lat_lon, positive_int
from edge.errors import SourceError

FORMATS = ["nmea", "ais", "asterix"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("radar", help="radar and AIS recordings: decode them, measure decoding speed")
    rsub = p.add_subparsers(dest="radar_command", metavar="ACTION", parser_class=type(p))
    rsub.required = True
    d = rsub.add_parser("decode", help="one line (or JSON object) per target report; a summary on stderr")
    d.add_argument("file", type=Path, help="NMEA/AIS text log, pcap/pcapng capture, or raw ASTERIX blocks")
    d.add_argument("--format", required=True, choices=FORMATS)
    d.add_argument("--position", type=lat_lon, help="LAT,LON of a radar at a fixed post (default: own ship's, from the feed)")
    d.add_argument("--port", type=int, help="pcap: only datagrams to this UDP port")
    d.add_argument("--cat010-edition", choices=["1.1", "sensis-0.24"], default="1.1", help="ASTERIX CAT010 layout")
    d.add_argument("--json", action="store_true", help="one JSON object per report")
    d.set_defaults(run=run_decode)
    b = rsub.add_parser("bench", help="decoded messages per second on a recording (median of several runs)")
    b.add_argument("file", type=Path)
    b.add_argument("--format", required=True, choices=FORMATS)
    b.add_argument("--runs", type=positive_int, default=7, help="timed passes over the file (median reported)")
    b.add_argument("--position", type=lat_lon, help="LAT,LON of a radar at a fixed post, which is also the post's "
                   "own place for the track store (default: own ship's, from the feed)")
    b.add_argument("--json", action="store_true", help="last line: the figures as one JSON object")
    b.set_defaults(run=run_bench)
    from edge.cli.radar_video_cmd import register_bench

    register_bench(rsub)


def _config(args: argparse.Namespace, pace: str = "fast"):
    from pydantic import ValidationError

    from edge.radar.config import RadarFeedConfig

    try:
        return RadarFeedConfig(id="cli", format=args.format, transport="file", path=args.file, pace=pace,
                               position=getattr(args, "position", None), port=getattr(args, "port", None),
                               cat010_edition=getattr(args, "cat010_edition", "1.1"))
    except ValidationError as e:
        raise SourceError(f"{args.file}: {e.errors()[0]['msg']}") from None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")


def run_decode(args: argparse.Namespace) -> int:
    from edge.radar.feeds import make_decoder, open_feed

    _check_file(args.file)
    cfg = _config(args)
    decoder = make_decoder(cfg)
    feed = open_feed(cfg, threading.Event())
    targets: set[str] = set()
    out = sys.stdout
    for message, received in feed:
        for r in decoder.feed(message, received):
            targets.add(r.target)
            out.write((json.dumps(dataclasses.asdict(r), default=str) if args.json else _human(r)) + "\n")
    s = decoder.stats
    errors = ", ".join(f"{reason}: {n}" for reason, n in sorted(s.errors.items(), key=lambda kv: -kv[1])) or "none"
    dropped = "".join(f", dropped {reason}: {n}" for reason, n in feed.stats.dropped.items())
    ignored = decoder.ignored.most_common()
    unused = ""
    if ignored:  # valid messages the decoder has no use for: other sentences, AIS types, service messages
        kinds = ", ".join(f"{kind} {n}" for kind, n in ignored[:4]) + (", ..." if len(ignored) > 4 else "")
        unused = f"; not used: {sum(n for _, n in ignored)} ({kinds})"
    print(f"{args.file}: {s.messages} messages, {s.reports} reports, {len(targets)} targets; errors: {errors}{dropped}{unused}",
          file=sys.stderr)
    if s.messages == 0:
        print(f"zastava-edge: error: {args.file}: no {args.format} messages in it", file=sys.stderr)
        return 2
    if s.rejected == s.messages:
        print(f"zastava-edge: error: {args.file}: not one valid {args.format} message", file=sys.stderr)
        return 2
    return 0


def _human(r) -> str:
    when = dt.datetime.fromtimestamp(r.time, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    pos = f"{r.lat:.6f},{r.lon:.6f}" if r.lat is not None else "-"
    rng = f"{r.range_m:.0f} m @ {r.bearing_deg:.1f}°" if r.range_m is not None and r.bearing_deg is not None else "-"
    vel = f"{r.speed_mps:.1f} m/s {r.course_deg:.0f}°" if r.speed_mps is not None and r.course_deg is not None else "-"
    return f"{when} {r.kind} {r.target} {r.status or '-'} {pos} {rng} {vel} {r.name or ''}".rstrip()


def _store_rate(cfg, messages: list) -> tuple[float, int]:
    """Messages per second decoded into a node's track store (edge.radar.picture.RadarPicture.ingest,
    with the store's fast path for a radar at the post), the targets' fields brought up to date
    at the end (the fast path defers them to their first read) within the time; and how many
    messages took that fast path."""
    from edge.config import NodeConfig
    from edge.radar.picture import RadarPicture

    lat, lon = cfg.position or (0.0, 0.0)
    picture = RadarPicture(NodeConfig(node={"site": "bench", "id": "radar", "lat": lat, "lon": lon},
                                      cameras=[{"id": "none", "source": "none", "detector": {"model": "none"}}],
                                      radars=[cfg]))
    ingest = picture.ingest
    t0 = time.perf_counter()
    for message, received in messages:
        ingest(cfg.id, message, received)
    picture.store.sync()
    return len(messages) / (time.perf_counter() - t0), picture.scanned


def run_bench(args: argparse.Namespace) -> int:
    from edge.radar.feeds import make_decoder, open_feed

    _check_file(args.file)
    cfg = _config(args)
    # read once (file reading and pacing are not what is measured), then time the decoder alone
    messages = list(open_feed(cfg, threading.Event()))
    if not messages:
        raise SourceError(f"{args.file}: no {args.format} messages in it")
    rates, ingest_rates, store_rates, reports, errors = [], [], [], 0, Counter()
    for _ in range(args.runs):  # interleaved: the machine's speed drifts between runs
        decoder = make_decoder(cfg)
        feed = decoder.feed
        t0 = time.perf_counter()
        for message, received in messages:
            feed(message, received)
        elapsed = time.perf_counter() - t0
        rates.append(decoder.stats.messages / elapsed)
        reports, errors = decoder.stats.reports, Counter(decoder.stats.errors)
        # ingest: the file feed (reading, framing, the recording's clock) and the decoder together
        decoder = make_decoder(cfg)
        t0 = time.perf_counter()
        n = 0
        for message, received in open_feed(cfg, threading.Event()):
            decoder.feed(message, received)
            n += 1
        ingest_rates.append(n / (time.perf_counter() - t0))
        rate, scanned = _store_rate(cfg, messages)
        store_rates.append(rate)
    figures = {"file": str(args.file), "format": args.format, "messages": len(messages), "reports": reports,
               "errors": sum(errors.values()), "runs": args.runs, "median_per_s": statistics.median(rates),
               "min_per_s": min(rates), "max_per_s": max(rates), "ingest_median_per_s": statistics.median(ingest_rates),
               "store_median_per_s": statistics.median(store_rates), "store_fast_path": scanned}
    unit = "datagrams" if args.format == "asterix" else "sentences"
    print(f"{args.file}: {len(messages):,} {unit}, {reports:,} reports; median of {args.runs} runs: "
          f"{figures['median_per_s']:,.0f} {unit}/s decoded (min {min(rates):,.0f}, max {max(rates):,.0f}); "
          f"read from the file and decoded: {figures['ingest_median_per_s']:,.0f} {unit}/s; "
          f"decoded into the track store: {figures['store_median_per_s']:,.0f} {unit}/s "
          f"({scanned:,} by its fast path)")
    if args.json:
        print(json.dumps(figures))
    return 0
