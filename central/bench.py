"""Central's benchmarks: ingest throughput and alert latency, through a real Mosquitto.

ingest: N simulated nodes, each its own process with its own MQTT connection, publish alerts
(QoS 1, unique ids, growing sequence numbers) through Mosquitto for D seconds; central's ingest
(this process: MQTT client, validation, batched idempotent inserts, acks after commit) stores
them. Reported: the sustained rate of rows committed over the measurement window, and, after
the publishers stop, whether every published alert was stored (zero loss).

latency: the edge's own outbox and publisher raise alerts at a steady rate; central runs as its
own process; a reader polls central's API and notes when each alert first appears. Latency is
from the moment the rule fired (the alert entered the outbox) to the row being readable.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import shutil
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.delivery_bench import sample_alert
from edge.errors import ZastavaError
from edge.local_broker import LocalMosquitto, free_port, wait_port


class SimulatedNode:
    """One node's MQTT connection: a `mosquitto_pub -l -q 1` process (C, so the load generator
    costs little CPU next to central) fed prepared alert lines at a set rate.

    The alerts are real contract JSON with unique ids and growing sequence numbers, prepared
    before the clock starts, so the measurement is central's, not the generator's.
    """

    def __init__(self, port: int, site: str, node: str, count: int):
        from ulid import ULID

        self.node = node
        sample = sample_alert(0, site=site, node=node).model_copy(update={"sequence": 1})
        text = sample.to_json()
        head, rest = text.split(sample.id, 1)
        before_seq, after_seq = rest.split('"sequence":1', 1)
        base = dt.datetime.now(dt.timezone.utc)
        self.lines = [
            "".join((head, str(ULID.from_datetime(base + dt.timedelta(microseconds=i))), before_seq,
                     '"sequence":', str(i + 1), after_seq, "\n")).encode()
            for i in range(count)
        ]
        self.sent = 0
        self.proc = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l", "-i", f"bench-{node}",
             "-t", f"zastava/v1/{site}/{node}/alert"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)

    def feed(self, rate: float | None, start_at: float, duration: float) -> None:
        """Write lines at `rate` per second (all at once without a rate) until `duration` ends."""
        while time.time() < start_at:
            time.sleep(0.005)
        end = start_at + duration
        step = 0.01
        while self.sent < len(self.lines) and time.time() < end:
            due = len(self.lines) if rate is None else min(len(self.lines), int((time.time() - start_at) * rate))
            if due > self.sent:
                self.proc.stdin.write(b"".join(self.lines[self.sent:due]))
                self.proc.stdin.flush()
                self.sent = due
            time.sleep(step)
        self.proc.stdin.close()

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise ZastavaError(f"simulated node {self.node}: mosquitto_pub did not finish its queue in {timeout:.0f} s") from None
        if self.proc.returncode:
            raise ZastavaError(f"simulated node {self.node}: mosquitto_pub failed: "
                               f"{self.proc.stderr.read().decode(errors='replace').strip()[:300]}")


def _replica(db_url: str, broker_url: str, group: str | None, client_id: str, stored, duplicates, ready, stop) -> None:
    """One central replica (own process): ingest until told to stop, reporting its counts."""
    from central.ingest import Ingest
    from central.metrics import CentralMetrics
    from central.settings import CentralSettings
    from central.store import Store

    store = Store(db_url)
    settings = CentralSettings(db_url=db_url, broker_url=broker_url, api_tokens=[secrets.token_hex(16)],
                               shared_group=group, client_id=client_id)
    ingest = Ingest(settings, store, CentralMetrics())
    ingest.start()
    ingest.connected.wait(30)
    time.sleep(0.5)  # subscribed
    ready.set()
    while not stop.is_set():
        stored.value, duplicates.value = ingest.stored, ingest.duplicates
        time.sleep(0.1)
    ingest.stop()
    stored.value, duplicates.value = ingest.stored, ingest.duplicates
    store.close()


@dataclass(frozen=True)
class IngestResult:
    db: str
    nodes: int
    duration_s: float
    published: int
    stored: int
    rate: float  # rows committed per second over the window (sustained)
    published_rate: float
    lost: int
    duplicates: int
    drain_s: float  # after the publishers stopped, until the last row was stored
    replicas: int

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def run_ingest_bench(*, nodes: int = 4, replicas: int = 2, duration: float = 60.0, db_url: str | None = None,
                     rate: float | None = None, broker_url: str | None = None,
                     progress: Callable[[str], None] = lambda msg: None) -> IngestResult:
    from sqlalchemy import text

    from central.store import Store

    work = Path(tempfile.mkdtemp(prefix="zastava-ingest-"))
    db_url = db_url or f"sqlite:///{work / 'central.db'}"
    Store(db_url).close()  # tables exist before the replicas race to create them
    broker = None if broker_url else LocalMosquitto(work / "broker").start()
    port = int((broker_url or broker.url).rsplit(":", 1)[1])
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    group = f"bench{secrets.token_hex(3)}" if replicas > 1 else None  # replicas split a shared subscription
    counts = [(ctx.Value("q", 0), ctx.Value("q", 0), ctx.Event()) for _ in range(replicas)]
    reps = [ctx.Process(target=_replica, args=(db_url, f"mqtt://127.0.0.1:{port}", group, f"bench-central-{k}",
                                               stored, dups, ready, stop), daemon=True)
            for k, (stored, dups, ready) in enumerate(counts)]
    for p in reps:
        p.start()
    for _, _, ready in counts:
        ready.wait(60)

    def stored() -> int:
        return sum(c[0].value for c in counts)

    def duplicates() -> int:
        return sum(c[1].value for c in counts)

    if shutil.which("mosquitto_pub") is None:
        raise ZastavaError("the ingest benchmark needs mosquitto_pub (apt-get install mosquitto-clients)")
    per_node = rate / nodes if rate else None
    expected = int((per_node or 20_000) * duration * 1.05) + 1000  # enough lines for the run
    progress(f"preparing {nodes} x {expected} alerts")
    site = f"bench-{secrets.token_hex(4)}"  # this run's rows, also in a database that holds others
    sims = [SimulatedNode(port, site, f"node-{k}", expected) for k in range(nodes)]
    start_at = time.time() + 1.0
    feeders = [threading.Thread(target=n.feed, args=(per_node, start_at, duration), daemon=True) for n in sims]
    for f in feeders:
        f.start()
    while time.time() < start_at:
        time.sleep(0.05)
    # The window leaves out the first 10% (connections warming up) and ends with the publishers.
    time.sleep(duration * 0.1)
    t0, s0 = time.time(), stored()
    while time.time() < start_at + duration:
        time.sleep(1.0)
        progress(f"{time.time() - start_at:5.0f} s: {sum(n.sent for n in sims)} published, {stored()} stored")
    t1, s1 = time.time(), stored()
    for f in feeders:
        f.join(10)
    for n in sims:
        n.finish(120)
    published = sum(n.sent for n in sims)
    drain_end = time.time() + 300
    while stored() + duplicates() < published and time.time() < drain_end:
        time.sleep(0.1)
    drain_s = time.time() - t1
    time.sleep(1.0)
    stop.set()
    for p in reps:
        p.join(30)
    store = Store(db_url)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM alerts WHERE site = :site"), {"site": site}).scalar_one()
    store.close()
    if broker:
        broker.stop()
    return IngestResult(db=db_url.split("://")[0], nodes=nodes, duration_s=duration, published=published, stored=rows,
                        rate=(s1 - s0) / (t1 - t0), published_rate=published / duration, lost=published - rows,
                        duplicates=duplicates(), drain_s=drain_s, replicas=replicas)


@dataclass(frozen=True)
class LatencyResult:
    alerts: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    poll_ms: float
    missing: int

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def run_latency_bench(*, alerts: int = 600, rate: float = 20.0, snapshot: bytes | None = None,
                      progress: Callable[[str], None] = lambda msg: None) -> LatencyResult:
    import httpx

    from edge.alerts import AlertRecord
    from edge.config import MqttSettings, NodeIdentity, OutboxSettings
    from edge.outbox import Outbox
    from edge.publisher import Publisher

    work = Path(tempfile.mkdtemp(prefix="zastava-latency-"))
    broker = LocalMosquitto(work / "broker").start()
    token = secrets.token_hex(16)
    http_port = free_port()
    central = subprocess.Popen(
        [sys.executable, "-m", "central.cli", "run", "--broker", broker.url, "--db", f"sqlite:///{work / 'central.db'}",
         "--http", f"127.0.0.1:{http_port}"], env={**os.environ, "ZASTAVA_CENTRAL_TOKENS": token},
        stdout=subprocess.DEVNULL, stderr=(work / "central.log").open("w"))
    wait_port(http_port, 30)
    outbox = Outbox(work / "outbox.db", OutboxSettings())
    publisher = Publisher(MqttSettings(broker=broker.url), NodeIdentity(site="bench", id="latency"), outbox)
    publisher.start()
    publisher.connected.wait(10)
    fired: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()
    poll_times: list[float] = []

    def poll() -> None:
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", headers={"Authorization": f"Bearer {token}"}) as c:
            while not done.is_set():
                t = time.perf_counter()
                rows = c.get("/api/v1/alerts", params={"node": "latency", "since": since.isoformat(), "limit": 100}).json()["alerts"]
                now = time.time()
                poll_times.append(time.perf_counter() - t)
                for row in rows:
                    seen.setdefault(row["id"], now)
                time.sleep(0.002)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    time.sleep(0.5)
    next_at = time.time()
    for i in range(alerts):
        alert = sample_alert(i, site="bench", node="latency")
        fired[alert.id] = time.time()
        outbox.put(AlertRecord(alert, snapshot))
        if i % 100 == 0:
            progress(f"{i}/{alerts} alerts raised")
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.time()))
    end = time.time() + 30
    while len(seen.keys() & fired.keys()) < alerts and time.time() < end:
        time.sleep(0.05)
    done.set()
    reader.join(5)
    publisher.stop(5)
    outbox.close()
    central.terminate()
    central.wait(20)
    broker.stop()
    lat = sorted((seen[k] - fired[k]) * 1000 for k in fired if k in seen)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return LatencyResult(alerts, rate, statistics.median(lat), q[98], max(lat), 1000 * statistics.median(poll_times),
                         alerts - len(lat))
