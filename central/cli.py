"""`zastava-central`: the central aggregator's command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from central import __version__
from edge.errors import ZastavaError

PROG = "zastava-central"


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Zastava central aggregator: ingest, storage, API.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    run = sub.add_parser("run", help="ingest every node's messages and serve the API")
    run.add_argument("--config", type=Path, help="central settings (YAML)")
    run.add_argument("--broker", help="mqtt://host:port or mqtts://...; without one an embedded broker starts (demo)")
    run.add_argument("--embedded-port", type=int, default=1883, help="port of the embedded broker (default 1883)")
    run.add_argument("--db", help="sqlite:///file.db (default) or postgresql://...")
    run.add_argument("--http", type=_host_port, help="HOST:PORT of the API (default 127.0.0.1:8080)")
    run.add_argument("--shared-group", help="MQTT 5 shared subscription group, for several central replicas")
    run.add_argument("--client-id", help="MQTT client id (unique per replica)")
    run.add_argument("--print", action="store_true", help="print one line per alert as it is stored")
    run.set_defaults(run=cmd_run)

    users = sub.add_parser("users", help="console users: add, list, change (roles guard, operator, admin)")
    users.add_argument("--config", type=Path, help="central settings (YAML): the database")
    users.add_argument("--db", help="sqlite:///file.db or postgresql://... (overrides the settings)")
    usub = users.add_subparsers(dest="users_command", metavar="WHAT", parser_class=OneLineParser)
    usub.required = True
    uadd = usub.add_parser("add", help="add a user; the password is read from stdin (or asked for twice)")
    uadd.add_argument("username")
    uadd.add_argument("--role", required=True, choices=("guard", "operator", "admin"))
    uadd.set_defaults(run=cmd_users)
    ulist = usub.add_parser("list", help="every user with role and state")
    ulist.set_defaults(run=cmd_users)
    uset = usub.add_parser("set", help="change a user's role, password or state (ends their sessions)")
    uset.add_argument("username")
    uset.add_argument("--role", choices=("guard", "operator", "admin"))
    uset.add_argument("--password", action="store_true", help="read a new password from stdin (or ask)")
    state = uset.add_mutually_exclusive_group()
    state.add_argument("--disable", action="store_true")
    state.add_argument("--enable", action="store_true")
    uset.set_defaults(run=cmd_users)

    bench = sub.add_parser("bench", help="ingest throughput and alert latency through a real Mosquitto")
    bsub = bench.add_subparsers(dest="bench_command", metavar="WHAT", parser_class=OneLineParser)
    bsub.required = True
    ing = bsub.add_parser("ingest", help="N simulated nodes publish for D seconds; sustained rows/s, zero loss")
    ing.add_argument("--nodes", type=int, default=4)
    ing.add_argument("--replicas", type=int, default=2, help="central processes splitting a shared subscription")
    ing.add_argument("--duration", type=float, default=60.0, help="seconds of publishing (default 60)")
    ing.add_argument("--rate", type=float, help="total alerts/s the nodes aim at (default: as fast as they can)")
    ing.add_argument("--db", help="sqlite:///file.db (default: a temporary file) or postgresql://...")
    ing.add_argument("--broker", help="use this broker instead of starting a private Mosquitto")
    ing.add_argument("--json", action="store_true")
    ing.set_defaults(run=cmd_bench_ingest)
    lat = bsub.add_parser("latency", help="rule firing on the edge to the row readable in the API: p50, p99")
    lat.add_argument("--alerts", type=int, default=600)
    lat.add_argument("--rate", type=float, default=20.0, help="alerts per second the edge raises")
    lat.add_argument("--snapshot", type=Path, help="a JPEG to send with every alert (default: none)")
    lat.add_argument("--json", action="store_true")
    lat.set_defaults(run=cmd_bench_latency)
    con = bsub.add_parser("console", help="console with N stored alerts and R arriving per second: first-page "
                                          "server time, live-feed batching")
    con.add_argument("--alerts", type=int, default=100_000, help="alerts stored before the measurement")
    con.add_argument("--rate", type=float, default=50.0, help="alerts per second arriving meanwhile")
    con.add_argument("--duration", type=float, default=20.0, help="seconds per round, half idle, half busy")
    con.add_argument("--rounds", type=int, default=3, help="idle/busy rounds, interleaved")
    con.add_argument("--db", help="sqlite:///file.db (default: a temporary file) or postgresql://... (emptied!)")
    con.add_argument("--json", action="store_true")
    con.set_defaults(run=cmd_bench_console)
    return parser


def _read_password(prompt: str) -> str:
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"{prompt}: ")
    if getpass.getpass("again: ") != first:
        raise ZastavaError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    _need_central_extra()
    from central.audit import AuditLog
    from central.settings import load_settings
    from central.store import Store
    from central.users import UserError, Users

    settings = load_settings(args.config, **({"db_url": args.db} if args.db else {}))
    store = Store(settings.db_url)
    try:
        users, audit = Users(store.engine, scrypt_n=settings.password_scrypt_n), AuditLog(store.engine)
        try:
            if args.users_command == "list":
                for u in users.list():
                    print(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}\t{u.created_at:%Y-%m-%d %H:%M}")
                return 0
            if args.users_command == "add":
                user = users.create(args.username, _read_password(f"password for {args.username}"), args.role)
                audit.record("cli", "user_create", f"user:{user.username}", {"role": user.role})
                print(f"added {user.username} ({user.role})")
                return 0
            password = _read_password(f"new password for {args.username}") if args.password else None
            active = True if args.enable else False if args.disable else None
            user = users.update(args.username, role=args.role, password=password, active=active)
            audit.record("cli", "user_update", f"user:{user.username}",
                         {"role": args.role, "active": active, "password_changed": password is not None})
            print(f"{user.username}: {user.role}, {'active' if user.active else 'disabled'}")
            return 0
        except UserError as e:
            raise ZastavaError(str(e)) from None
    finally:
        store.close()


def cmd_bench_console(args: argparse.Namespace) -> int:
    import json

    from central.console_bench import run_console_bench

    r = run_console_bench(alerts=args.alerts, rate=args.rate, duration=args.duration, rounds=args.rounds, db_url=args.db,
                          progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    for line in r.lines():
        print(line)
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0


def cmd_bench_ingest(args: argparse.Namespace) -> int:
    import json

    from central.bench import run_ingest_bench

    r = run_ingest_bench(nodes=args.nodes, replicas=args.replicas, duration=args.duration, db_url=args.db, rate=args.rate, broker_url=args.broker,
                         progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"{r.nodes} nodes published {r.published} alerts in {r.duration_s:.0f} s ({r.published_rate:.0f}/s); "
          f"central ({r.replicas} replica(s)) stored {r.stored} into {r.db}: sustained {r.rate:.0f} alerts/s")
    print(f"lost {r.lost}, duplicates {r.duplicates}; backlog stored {r.drain_s:.1f} s after the nodes stopped")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0 if r.lost == 0 else 1


def cmd_bench_latency(args: argparse.Namespace) -> int:
    import json

    from central.bench import run_latency_bench

    snapshot = args.snapshot.read_bytes() if args.snapshot else None
    r = run_latency_bench(alerts=args.alerts, rate=args.rate, snapshot=snapshot,
                          progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"{r.alerts} alerts at {r.rate:.0f}/s: rule fired -> row readable in the API: p50 {r.p50_ms:.1f} ms, "
          f"p99 {r.p99_ms:.1f} ms, max {r.max_ms:.1f} ms (API polled every ~{r.poll_ms:.1f} ms; {r.missing} missing)")
    if args.json:
        print(json.dumps(r.as_dict()))
    return 0 if r.missing == 0 else 1


def _need_central_extra() -> None:
    try:
        import fastapi, sqlalchemy, uvicorn  # noqa: F401,E401
    except ImportError as e:
        raise ZastavaError(f"central needs its extra: pip install 'zastava[central]' ({e})") from None


def cmd_run(args: argparse.Namespace) -> int:
    _need_central_extra()
    import uvicorn

    from central.api import create_app
    from central.broker import EmbeddedBroker
    from central.ingest import Ingest
    from central.metrics import CentralMetrics
    from central.settings import load_settings
    from central.store import Store

    overrides = {k: v for k, v in {"broker_url": args.broker, "db_url": args.db, "shared_group": args.shared_group,
                                   "client_id": args.client_id}.items() if v}
    if args.http:
        overrides["http_host"], overrides["http_port"] = args.http
    settings = load_settings(args.config, **overrides)
    broker = None
    if not settings.broker_url:
        broker = EmbeddedBroker(port=args.embedded_port).start()
        settings = settings.model_copy(update={"broker_url": broker.url})
    if not settings.api_tokens:
        logging.getLogger(PROG).warning("no API token configured (ZASTAVA_CENTRAL_TOKENS): the API will refuse every request")
    store = Store(settings.db_url, dead_letter_max_bytes=settings.dead_letter_max_bytes)
    metrics = CentralMetrics()

    def show(alert) -> None:
        print(f"{alert.time.isoformat(timespec='milliseconds')} {alert.site}/{alert.node}/{alert.camera} "
              f"#{alert.sequence} {alert.severity:<8} {alert.rule} {alert.class_name} track {alert.track_id} {alert.id}",
              flush=True)

    from central.console import Console

    console = None
    ingest = Ingest(settings, store, metrics, on_alert=show if args.print else None,
                    on_connected=lambda: console.configs.push_all())
    console = Console(store, settings, publish=ingest.publish_retained)
    ingest.start()
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings, metrics, console=console),
                                           host=settings.http_host, port=settings.http_port, log_level="warning",
                                           access_log=False))
    stop = threading.Event()

    def shutdown(*_) -> None:
        stop.set()
        server.should_exit = True

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if not console.users.list():
        logging.getLogger(PROG).warning("no console user yet: add one with `%s users add NAME --role admin`", PROG)
    print(f"{PROG}: console and API on http://{settings.http_host}:{settings.http_port} (docs at /docs), "
          f"broker {settings.broker_url}, "
          f"database {settings.db_url.split('@')[-1]}", file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        ingest.stop()
        store.close()
        if broker:
            broker.stop()
    print(f"{PROG}: stored {ingest.stored} alert(s), {ingest.duplicates} duplicate(s), {ingest.dead} dead letter(s)",
          file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.run(args) or 0)
    except ZastavaError as e:
        if args.debug or os.environ.get("ZASTAVA_DEBUG"):
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
