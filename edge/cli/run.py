"""`zastava-edge run -c CONFIG`: the edge node, every camera, config reloaded on change or SIGHUP."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the edge node: every camera of CONFIG, alerts as JSON lines",
        description="Run every camera of CONFIG through detection, tracking and rules. Alerts go to stdout "
        "as JSON lines (and their evidence to --snapshots). The config is reloaded when its file changes "
        "or on SIGHUP; an invalid one is rejected and the running one kept. SIGTERM or Ctrl-C stops.",
    )
    p.add_argument("-c", "--config", required=True, type=Path, help="node config (YAML)")
    p.add_argument("--snapshots", type=Path, help="write each alert's evidence JPEG here, named by alert id")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.node import EdgeNode

    if args.snapshots:
        args.snapshots.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def sink(rec) -> None:
        with lock:
            if args.snapshots and rec.snapshot:
                (args.snapshots / f"{rec.alert.id}.jpg").write_bytes(rec.snapshot)
            sys.stdout.write(rec.alert.to_json() + "\n")
            sys.stdout.flush()

    node = EdgeNode(args.config, sink)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        node.run(stop)
    except KeyboardInterrupt:
        stop.set()
    frames = sum(w.frames for w in node.workers.values())
    alerts = sum(w.alerts for w in node.workers.values())
    print(f"node {node.config.node.site}/{node.config.node.id}: {frames} frame(s), {alerts} alert(s), "
          f"{node.reloader.applied} config reload(s), {node.reloader.rejected} rejected", file=sys.stderr)
    errors = [f"camera {w.camera_id}: {w.error}" for w in node.workers.values() if w.error]
    for e in errors:
        print(e, file=sys.stderr)
    return 2 if errors and len(errors) == len(node.workers) else 0
