"""`zastava-central bench console`: is the console responsive with a full store and a busy feed?

The store is filled with N alerts (default 100,000) from 8 posts; central's app (API, console,
live feed, correlator) runs in this process under uvicorn; a console is connected to the live
feed. Rounds alternate, side by side: "idle" (nothing arriving) and "busy" (R alerts/s
arriving, stored in ingest-sized batches every 0.1 s, as ingest stores them). In every round the
first pages a console asks for are fetched over HTTP and timed by the server itself (the
Server-Timing header: the handler's time, without the client's): the feed's first page, the
same filtered by severity, by state (open) and by node. The live feed's events are counted:
alerts per event, events per second, and the delay from an alert's storage to its arrival in
the console.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

UTC = dt.timezone.utc
TOKEN = "console-bench-token-0123456789"
QUERIES = {
    "first page": {"limit": 100},
    "severity high+": {"limit": 100, "severity": "high,critical"},
    "open only": {"limit": 100, "state": "open"},
    "one node": {"limit": 100, "node": "node-3"},
}
_DUR = re.compile(r"dur=([0-9.]+)")


@dataclass
class ConsoleResult:
    stored: int
    rate: float
    rounds: int
    db: str
    server_ms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # query -> idle/busy -> p50/p99
    arrived: int = 0
    events: int = 0
    alerts_per_event: float = 0.0
    events_per_s: float = 0.0
    feed_delay_p50_ms: float = 0.0
    feed_delay_p99_ms: float = 0.0
    missed: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.stored} alerts stored ({self.db}); {self.rounds} idle and {self.rounds} busy rounds "
               f"interleaved, {self.rate:.0f} alerts/s arriving in the busy ones",
               "server time per request (p50 / p99, ms):"]
        for q, r in self.server_ms.items():
            out.append(f"  {q:<15} idle {r['idle']['p50']:6.1f} / {r['idle']['p99']:6.1f}   busy {r['busy']['p50']:6.1f} / "
                       f"{r['busy']['p99']:6.1f}   busy/idle p50 {r['busy']['p50'] / max(r['idle']['p50'], 1e-6):.2f}")
        out.append(f"live feed: {self.arrived} alerts arrived, {self.events} events ({self.events_per_s:.1f}/s), "
                   f"{self.alerts_per_event:.1f} alerts per event; stored -> in the console p50 {self.feed_delay_p50_ms:.0f} ms, "
                   f"p99 {self.feed_delay_p99_ms:.0f} ms; {self.missed} missed")
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _fill(store, n: int, progress: Callable[[str], None]) -> None:
    from edge.delivery_bench import sample_alert

    start = dt.datetime.now(UTC) - dt.timedelta(days=7)
    step = dt.timedelta(days=7) / max(n, 1)
    batch = []
    received = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    for i in range(n):
        a = sample_alert(i, site=f"post-{i % 4}", node=f"node-{i % 8}", when=start + i * step)
        batch.append((a.model_copy(update={"sequence": i // 8 + 1, "camera": f"cam{i % 3}"}), received))
        if len(batch) == 2000:
            store.add_alerts(batch)
            batch = []
            if (i + 1) % 20_000 == 0:
                progress(f"filled {i + 1} of {n}")
    store.add_alerts(batch)
    with store.engine.begin() as conn:  # a share of them handled, as in a real store
        from sqlalchemy import update

        from central.store import alerts

        conn.execute(update(alerts).where(alerts.c.track_id % 3 != 0).values(acknowledged_at=received,
                                                                             acknowledged_by="bench"))
    # Planner statistics, as a store that has lived a while has them (PostgreSQL's autovacuum
    # analyzes after so many changes; without them a bulk load looks like an empty table).
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE alerts" if store.dialect == "postgresql" else "ANALYZE")


class _FeedClient(threading.Thread):
    """A console's live feed: every event and when it came."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.events: list[tuple[float, list[str]]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=None, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            with c.stream("GET", self.url) as r:
                kind = None
                for line in r.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                        if kind == "hello":
                            self.ready.set()
                    elif line.startswith("data: ") and kind == "alerts":
                        ids = [a["id"] for a in json.loads(line[6:])["alerts"]]
                        self.events.append((time.time(), ids))


def run_console_bench(*, alerts: int = 100_000, rate: float = 50.0, duration: float = 20.0, rounds: int = 3,
                      db_url: str | None = None, progress: Callable[[str], None] = lambda m: None) -> ConsoleResult:
    import uvicorn
    from sqlalchemy import delete

    from central.api import create_app
    from central.console_tables import incidents
    from central.metrics import CentralMetrics
    from central.settings import CentralSettings
    from central.store import Store, alerts as alerts_table, nodes, snapshots
    from edge.delivery_bench import sample_alert
    from edge.local_broker import free_port

    tmp = None
    if db_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="zastava-console-bench-", ignore_cleanup_errors=True)
        db_url = f"sqlite:///{Path(tmp.name) / 'central.db'}"
    store = Store(db_url)
    with store.engine.begin() as conn:  # a given database is emptied: the figures need exactly N alerts
        for table in (alerts_table, snapshots, nodes, incidents):
            conn.execute(delete(table))
    progress(f"filling the store with {alerts} alerts")
    _fill(store, alerts, progress)
    settings = CentralSettings(api_tokens=[TOKEN], db_url=db_url)
    app = create_app(store, settings, CentralMetrics())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    feed = _FeedClient(base + "/api/v1/stream")
    feed.start()
    feed.ready.wait(10)
    result = ConsoleResult(stored=alerts, rate=rate, rounds=rounds, db=store.url.get_backend_name())
    times: dict[str, dict[str, list[float]]] = {q: {"idle": [], "busy": []} for q in QUERIES}
    stored_at: dict[str, float] = {}
    counter = [alerts]

    def arrive(stop: threading.Event) -> None:
        # Ingest stores what arrived every ~0.1 s in one transaction; so does this.
        per_tick, carry, tick = rate * 0.1, 0.0, time.monotonic()
        while not stop.is_set():
            carry += per_tick
            n, carry = int(carry), carry - int(carry)
            now = dt.datetime.now(UTC)
            batch = []
            for _ in range(n):
                i = counter[0]
                counter[0] += 1
                a = sample_alert(i, site=f"post-{i % 4}", node=f"node-{i % 8}", when=now)
                batch.append((a.model_copy(update={"sequence": i // 8 + 1}), now))
            if batch:
                store.add_alerts(batch)
                t = time.time()
                for a, _ in batch:
                    stored_at[a.id] = t
            tick += 0.1
            stop.wait(max(0.0, tick - time.monotonic()))

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        for q in QUERIES.values():  # warm the caches once, as a console in use has them
            client.get("/api/v1/alerts", params=q)
        for r in range(rounds):
            for phase in ("idle", "busy"):
                progress(f"round {r + 1} of {rounds}: {phase}")
                stop = threading.Event()
                writer = threading.Thread(target=arrive, args=(stop,), daemon=True) if phase == "busy" else None
                if writer:
                    writer.start()
                end = time.monotonic() + duration / 2
                while time.monotonic() < end:
                    for name, q in QUERIES.items():
                        resp = client.get("/api/v1/alerts", params=q)
                        resp.raise_for_status()
                        times[name][phase].append(float(_DUR.search(resp.headers["server-timing"]).group(1)))
                    time.sleep(0.1)
                if writer:
                    stop.set()
                    writer.join()
        time.sleep(2 * settings.feed_interval_s + 1)  # the last batch reaches the console
    feed.stop.set()
    server.should_exit = True
    serving.join(30)  # the app's shutdown stops the live feed before the store goes
    for name, by_phase in times.items():
        result.server_ms[name] = {p: {"p50": round(statistics.median(v), 2), "p99": round(_pct(v, 0.99), 2)}
                                  for p, v in by_phase.items()}
    got = {}
    for at, ids in feed.events:
        for i in ids:
            got.setdefault(i, at)
    delays = [1000 * (got[i] - t) for i, t in stored_at.items() if i in got]
    result.arrived = len(stored_at)
    result.missed = sum(1 for i in stored_at if i not in got)
    result.events = len(feed.events)
    busy_s = rounds * duration / 2
    result.events_per_s = round(result.events / busy_s, 2) if busy_s else 0.0
    result.alerts_per_event = round(sum(len(ids) for _, ids in feed.events) / max(1, len(feed.events)), 1)
    result.feed_delay_p50_ms = round(statistics.median(delays), 1) if delays else 0.0
    result.feed_delay_p99_ms = round(_pct(delays, 0.99), 1)
    store.close()
    if tmp is not None:
        tmp.cleanup()
    return result
