"""`zastava-edge run -c CONFIG`: the edge node, every camera, alerts delivered, config reloaded."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the edge node: every camera of CONFIG, alerts to the broker (or printed)",
        description="Run every camera of CONFIG through detection, tracking and rules. With an `mqtt` section "
        "(or --broker) alerts go through the durable outbox to the broker; otherwise they are printed as JSON "
        "lines. The config is reloaded when its file changes or on SIGHUP; an invalid one is rejected and the "
        "running one kept. SIGTERM or Ctrl-C stops after delivering what it can.",
    )
    p.add_argument("-c", "--config", required=True, type=Path, help="node config (YAML)")
    p.add_argument("--broker", help="mqtt://host:port or mqtts://...: publish here (overrides the config's broker)")
    p.add_argument("--state-dir", type=Path, help="folder for the outbox (default: $ZASTAVA_STATE_DIR or ./zastava-state)")
    p.add_argument("--print-alerts", action="store_true", help="also print alerts as JSON lines when publishing")
    p.add_argument("--snapshots", type=Path, help="also write each alert's evidence JPEG here, named by alert id")
    p.add_argument("--flush-timeout", type=float, default=20.0, help="seconds to keep delivering after a stop")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.node import EdgeNode

    if args.snapshots:
        args.snapshots.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def printer(rec) -> None:
        with lock:
            if args.snapshots and rec.snapshot:
                (args.snapshots / f"{rec.alert.id}.jpg").write_bytes(rec.snapshot)
            sys.stdout.write(rec.alert.to_json() + "\n")
            sys.stdout.flush()

    node = EdgeNode(args.config, state=args.state_dir, broker=args.broker)
    if node.publisher is None or args.print_alerts or args.snapshots:
        node.printer = printer
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        node.run(stop, flush_timeout_s=args.flush_timeout)
    except KeyboardInterrupt:
        stop.set()
    frames = sum(w.frames for w in node.workers.values())
    alerts = sum(w.alerts for w in node.workers.values())
    line = (f"node {node.config.node.site}/{node.config.node.id}: {frames} frame(s), {alerts} alert(s), "
            f"{node.reloader.applied} config reload(s), {node.reloader.rejected} rejected")
    if node.publisher is not None:
        line += f"; {node.publisher.published} delivered, {node.evicted} evicted ever"
    print(line, file=sys.stderr)
    errors = [f"camera {w.camera_id}: {w.error}" for w in node.workers.values() if w.error]
    for e in errors:
        print(e, file=sys.stderr)
    return 2 if errors and len(errors) == len(node.workers) else 0
