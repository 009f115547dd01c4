"""Central's Prometheus metrics: what ingest counts as it goes, and what the store knows at scrape.

    metrics = CentralMetrics()
    metrics.received("alert"); metrics.stored(new=498, duplicates=2); metrics.observe_lag(0.12)
    body = metrics.render(store)   # text exposition for GET /metrics

Counters live in a registry of their own (not prometheus_client's global one), so several
instances (tests, two apps in one process) never collide. Per-node figures are read from the
store at scrape time: with several central replicas each sees only its share of the messages,
but all share the database.
"""

from __future__ import annotations

import datetime as dt
import logging

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from central.store import REASON_KEYS, Store
from edge.contract import Kind

log = logging.getLogger(__name__)

PREFIX = "zastava_central"
INGESTED_KINDS = tuple(k.value for k in Kind if k is not Kind.CONFIG)  # central publishes config, never receives it
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class CentralMetrics:
    """The ingest calls these as messages pass; `render(store)` answers a scrape."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._received = Counter(f"{PREFIX}_messages_received", "MQTT messages received, by topic kind.", ["kind"],
                                 registry=r)
        self._stored = Counter(f"{PREFIX}_alerts_stored", "Alerts stored for the first time.", registry=r)
        self._duplicates = Counter(f"{PREFIX}_alerts_duplicate",
                                   "Alerts received again (redelivered) and not stored twice.", registry=r)
        self._dead = Counter(f"{PREFIX}_dead_letters", "Messages refused and kept aside, by reason.", ["reason"],
                             registry=r)
        self._snapshots = Counter(f"{PREFIX}_snapshots_stored", "Snapshots stored for the first time.", registry=r)
        self._batch = Histogram(f"{PREFIX}_ingest_batch_size", "Alerts written per store transaction.",
                                buckets=BATCH_BUCKETS, registry=r)
        self._lag = Histogram(f"{PREFIX}_ingest_lag_seconds",
                              "From an alert's event time to its receipt by central (includes outbox waits).",
                              buckets=LAG_BUCKETS, registry=r)
        # Every label value shows from the start, at 0: rate() needs the series before the first event.
        for kind in INGESTED_KINDS:
            self._received.labels(kind)
        for key in REASON_KEYS:
            self._dead.labels(key)

    def received(self, kind: Kind | str) -> None:
        self._received.labels(kind.value if isinstance(kind, Kind) else kind).inc()

    def stored(self, new: int, duplicates: int = 0) -> None:
        self._stored.inc(new)
        self._duplicates.inc(duplicates)

    def dead_letter(self, reason_key: str) -> None:
        self._dead.labels(reason_key).inc()

    def snapshot_stored(self) -> None:
        self._snapshots.inc()

    def observe_batch(self, size: int) -> None:
        self._batch.observe(size)

    def observe_lag(self, seconds: float) -> None:
        # A node clock ahead of central's gives a negative lag; it counts as none rather than
        # corrupting the histogram's sum.
        self._lag.observe(max(0.0, seconds))

    def render(self, store: Store, now: dt.datetime | None = None) -> bytes:
        """The text exposition: these counters, then the store's figures read now."""
        return generate_latest(self.registry) + generate_latest(_StoreFigures(store, now))


class _StoreFigures:
    """A one-scrape collector: reads the store once and yields gauges (never cached, so a scrape
    always sees the database as it is)."""

    def __init__(self, store: Store, now: dt.datetime | None):
        self.store = store
        self.now = now

    def collect(self):
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 when the store answered this scrape.")
        try:
            stats = self.store.stats()
        except SQLAlchemyError as e:
            log.warning("metrics: the store did not answer: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self.now or dt.datetime.now(dt.timezone.utc)

        total = GaugeMetricFamily(f"{PREFIX}_alerts_in_store", "Alerts in the store (every replica's).")
        total.add_metric([], stats["alerts"])
        yield total
        dead = GaugeMetricFamily(f"{PREFIX}_dead_letters_in_store", "Dead letters in the store, by reason.",
                                 labels=["reason"])
        for key in sorted(set(REASON_KEYS) | set(stats["dead_letters_by_reason"])):
            dead.add_metric([key], stats["dead_letters_by_reason"].get(key, 0))
        yield dead

        labels = ["site", "node"]
        since = GaugeMetricFamily(f"{PREFIX}_node_seconds_since_seen",
                                  "Seconds since any message from the node reached central.", labels=labels)
        online = GaugeMetricFamily(f"{PREFIX}_node_online",
                                   "1 online, 0 offline (its Last Will), -1 no status received yet.", labels=labels)
        seq = GaugeMetricFamily(f"{PREFIX}_node_last_sequence", "The node's newest alert sequence number stored.",
                                labels=labels)
        count = GaugeMetricFamily(f"{PREFIX}_node_alerts_in_store", "Alerts of the node in the store.", labels=labels)
        event = GaugeMetricFamily(f"{PREFIX}_node_last_event_timestamp_seconds",
                                  "Event time of the node's newest stored alert (Unix time).", labels=labels)
        for n in stats["nodes"]:
            key = [n["site"], n["node"]]
            since.add_metric(key, max(0.0, (now - n["last_seen"]).total_seconds()))
            online.add_metric(key, {"online": 1, "offline": 0}.get(n["state"], -1))
            count.add_metric(key, n["alerts"])
            if n["last_sequence"] is not None:
                seq.add_metric(key, n["last_sequence"])
            if n["last_event_time"] is not None:
                event.add_metric(key, n["last_event_time"].timestamp())
        yield from (since, online, seq, count, event)
