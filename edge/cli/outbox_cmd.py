"""`zastava-edge outbox status|bench`: the alerts waiting on a node, and how fast they drain."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.cli.common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("outbox", help="the node's outbox: what waits for delivery; drain benchmark")
    osub = p.add_subparsers(dest="outbox_command", metavar="ACTION", parser_class=type(p))
    osub.required = True
    st = osub.add_parser("status", help="alerts waiting, their age, evictions")
    st.add_argument("-c", "--config", required=True, type=Path, help="node config (for the outbox settings)")
    st.add_argument("--state-dir", type=Path, help="the node's state folder (default: $ZASTAVA_STATE_DIR or ./zastava-state)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(run=run_status)
    b = osub.add_parser("bench", help="fill an outbox with N alerts, then time its drain to a real Mosquitto")
    b.add_argument("--alerts", type=positive_int, default=100_000)
    b.add_argument("--inflight", type=positive_int, default=64, help="alerts published and not yet acknowledged")
    b.add_argument("--broker", help="use this broker (mqtt://127.0.0.1:PORT) instead of starting a Mosquitto")
    b.add_argument("--json", action="store_true", help="last line: the figures as one JSON object")
    b.set_defaults(run=run_bench)


def run_status(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.node import state_dir
    from edge.outbox import Outbox

    config = load_config(args.config)
    path = config.outbox.path if config.outbox.path.is_absolute() else state_dir(args.state_dir) / config.outbox.path
    if not path.exists():
        print(f"{path}: no outbox yet (the node has not run here)", file=sys.stderr)
        return 2
    outbox = Outbox(path, config.outbox)
    try:
        depth, size, oldest = outbox.depth()
        figures = {"path": str(path), "waiting": depth, "bytes": size, "oldest_s": oldest,
                   "last_sequence": outbox.last_sequence(), "evicted": outbox.counter("evicted"),
                   "published": outbox.counter("published")}
    finally:
        outbox.close()
    if args.json:
        print(json.dumps(figures))
    else:
        age = f", oldest {figures['oldest_s']:.0f} s old" if oldest is not None else ""
        print(f"{path}: {depth} alert(s) waiting ({size} bytes{age}); last sequence {figures['last_sequence']}; "
              f"{figures['published']} delivered and {figures['evicted']} evicted ever")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from edge.delivery_bench import run_drain_bench

    r = run_drain_bench(args.alerts, inflight=args.inflight, broker_url=args.broker,
                        progress=lambda msg: print(msg, file=sys.stderr))
    print(f"outbox of {r.alerts} alerts filled in {r.fill_s:.1f} s; drained to Mosquitto in {r.drain_s:.1f} s: "
          f"{r.rate:.0f} alerts/s ({r.inflight} in flight)")
    print(f"subscriber received {r.received}, {r.out_of_order} out of order")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0 if r.received == r.alerts and r.out_of_order == 0 else 1
