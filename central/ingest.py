"""Central's MQTT ingest: every node's messages, validated, stored, and only then acknowledged.

paho-mqtt 2.x, MQTT 5 with a persistent session (3.1.1 when the broker refuses 5), optionally a
shared subscription so several central replicas split the load. Messages are acknowledged
manually, after the transaction that stores them has committed: a central that dies between
receiving and storing leaves the messages unacknowledged, and the broker delivers them again.
Alerts are stored idempotently by id, so a redelivery is not a second row.

A message that breaks the contract (unknown topic, over its size limit, invalid JSON or schema,
a node writing under another node's topic) goes to the dead letters with the reason; ingest
goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from edge.contract import Alert, ContractError, Kind, decode, parse_topic, subscriptions
from edge.mqtt_link import LinkSettings, MqttLink

log = logging.getLogger(__name__)

BATCH_MAX = 1000  # messages stored in one transaction
BATCH_WAIT_S = 0.01  # how long a batch waits to fill before it is stored anyway
SESSION_EXPIRY_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class _Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    at: float


def now_utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


class Ingest:
    def __init__(self, settings, store, metrics, *, on_alert: Callable[[Alert], None] | None = None,
                 on_connected: Callable[[], None] | None = None):
        self.settings = settings
        self.on_connected = on_connected  # called on a thread of its own after every (re)connect
        self.store = store
        self.metrics = metrics
        self.on_alert = on_alert
        self.stored = 0
        self.duplicates = 0
        self.dead = 0
        self._queue: queue.Queue[_Received] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self.link = MqttLink(
            LinkSettings(
                broker_url=settings.broker_url, client_id=settings.client_id, username=settings.username,
                password=settings.password, ca_file=settings.ca_file, cert_file=settings.cert_file,
                key_file=settings.key_file, session_expiry_s=SESSION_EXPIRY_S, reconnect_max_s=5.0, manual_ack=True,
            ),
            name="central", configure=self._configure, on_connected=self._subscribe,
        )
        self.connected = self.link.connected

    @property
    def client(self) -> mqtt.Client:
        return self.link.client

    def _configure(self, client: mqtt.Client) -> None:
        client.on_message = self._on_message

    def _subscribe(self, client: mqtt.Client, flags) -> None:
        client.subscribe([(f, 1) for f in subscriptions(self.settings.shared_group)])
        if self.on_connected is not None:  # not on paho's thread: the hook may wait for PUBACKs
            threading.Thread(target=self._connected_hook, name="ingest-connected", daemon=True).start()

    def _connected_hook(self) -> None:
        try:
            self.on_connected()
        except Exception:  # e.g. the database away: the next connect tries again
            log.exception("after connecting")

    def publish_retained(self, topic: str, payload: bytes, timeout_s: float = 5.0) -> bool:
        """Publish a retained QoS 1 message (a node's config); True once the broker acknowledged it."""
        if not self.connected.is_set():
            return False
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def start(self) -> None:
        self._writer.start()
        self.link.start()

    def _on_message(self, client, userdata, msg) -> None:
        self._queue.put(_Received(msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    # -- storing ---------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            self.link.poll()
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT_S
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            while True:
                try:
                    self.process(batch)
                    break
                except Exception:  # the database is away: keep the batch, unacknowledged, and retry
                    log.exception("storing %d message(s) failed; retrying in 1 s", len(batch))
                    time.sleep(1.0)
            for item in batch:  # in the order received, as MQTT asks
                if item.qos:
                    self.client.ack(item.mid, item.qos)

    def process(self, batch: list[_Received]) -> None:
        """Validate and store one batch of received messages (alerts in one transaction)."""
        self.metrics.observe_batch(len(batch))
        alerts: list[tuple[Alert, dt.datetime, bytes]] = []
        for item in batch:
            received = now_utc(item.at)
            try:
                parsed = parse_topic(item.topic)
                message = decode(parsed, item.payload)
            except ContractError as e:
                self._dead(item, str(e), e.key, received)
                continue
            self.metrics.received(parsed.kind.value)
            if parsed.kind is Kind.ALERT:
                alerts.append((message, received, item.payload))
            elif parsed.kind is Kind.SNAPSHOT:
                if self.store.add_snapshot(parsed.alert_id, message, received):
                    self.metrics.snapshot_stored()
                self.store.touch_node(parsed.site, parsed.node, received)
            elif parsed.kind is Kind.STATUS:
                self.store.update_status(message, received)
            elif parsed.kind is Kind.HEARTBEAT:
                self.store.update_heartbeat(message, received)
            elif parsed.kind is Kind.CONFIG_STATE:
                self.store.update_config_state(message, received)
            else:  # central's own config messages echo back through a `#` subscription
                continue
        if alerts:
            new = self.store.add_alerts(alerts)
            self.stored += new
            self.duplicates += len(alerts) - new
            self.metrics.stored(new, len(alerts) - new)
            for alert, received, _ in alerts:
                self.metrics.observe_lag((received - alert.time).total_seconds())
            if self.on_alert:
                for alert, _, _ in alerts:
                    self.on_alert(alert)

    def _dead(self, item: _Received, reason: str, key: str, received: dt.datetime) -> None:
        self.dead += 1
        self.metrics.dead_letter(key)
        self.store.add_dead_letter(item.topic, reason, item.payload, received, key=key)
        log.warning("dead letter on %s: %s", item.topic[:200], reason)

    def stop(self, timeout: float = 10.0) -> None:
        """Store (and acknowledge) what has arrived, then disconnect."""
        self._stop.set()
        self._writer.join(timeout=timeout)
        self.link.stop()
