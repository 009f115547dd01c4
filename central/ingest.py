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
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.contract import Alert, ContractError, Kind, decode, parse_topic, subscriptions
from edge.mqtt_fallback import Mqtt5Fallback

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
    def __init__(self, settings, store, metrics, *, on_alert: Callable[[Alert], None] | None = None):
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.on_alert = on_alert
        self.protocol = mqtt.MQTTv5
        self._fallback = Mqtt5Fallback(True)
        self.connected = threading.Event()
        self.stored = 0
        self.duplicates = 0
        self.dead = 0
        self._queue: queue.Queue[_Received] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self.client = self._make_client()

    # -- connection ----------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=self.protocol,
                             clean_session=None if self.protocol == mqtt.MQTTv5 else False, manual_ack=True)
        url = urlparse(s.broker_url)
        if url.scheme == "mqtts":
            ctx = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if s.cert_file:
                ctx.load_cert_chain(str(s.cert_file), str(s.key_file) if s.key_file else None)
            client.tls_set_context(ctx)
        if s.username:
            client.username_pw_set(s.username, s.password)
        client.reconnect_delay_set(0.5, 30)
        client.max_inflight_messages_set(0)
        client.on_pre_connect = lambda c, u: self._fallback.attempt()
        client.on_connect_fail = lambda c, u: self._fallback.connect_failed()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _address(self) -> tuple[str, int]:
        url = urlparse(self.settings.broker_url)
        return url.hostname or "localhost", url.port or (8883 if url.scheme == "mqtts" else 1883)

    def start(self) -> None:
        self._writer.start()
        self._connect()

    def _connect(self) -> None:
        host, port = self._address()
        props = None
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = 65535  # acks wait for the database; let the broker keep sending
        self.client.connect_async(host, port, keepalive=30, clean_start=False if self.protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                                  properties=props)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        refuses_v5 = self._fallback.connack(reason_code)
        if reason_code.is_failure:
            if refuses_v5 and self.protocol == mqtt.MQTTv5:
                log.warning("broker refuses MQTT 5 (%s): falling back to 3.1.1", reason_code)
                threading.Thread(target=self._fall_back, daemon=True).start()
            else:
                log.error("broker refused central's connection: %s", reason_code)
            return
        client.subscribe([(f, 1) for f in subscriptions(self.settings.shared_group)])
        log.info("central subscribed at %s (session present: %s)", self.settings.broker_url, flags.session_present)
        self.connected.set()

    def _fall_back(self) -> None:
        if self.protocol == mqtt.MQTTv311:
            return
        self.client.disconnect()
        self.client.loop_stop()
        self.protocol = mqtt.MQTTv311
        self.client = self._make_client()
        self._connect()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.protocol == mqtt.MQTTv5 and self._fallback.hung_up():
            log.warning("broker hangs up on MQTT 5 without an answer: falling back to 3.1.1")
            threading.Thread(target=self._fall_back, daemon=True).start()
        if self.connected.is_set() and not self._stop.is_set():
            log.warning("central lost the broker (%s); reconnecting", reason_code)
        self.connected.clear()

    def _on_message(self, client, userdata, msg) -> None:
        self._queue.put(_Received(msg.topic, msg.payload, msg.mid, msg.qos, time.time()))

    # -- storing ---------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            if self.protocol == mqtt.MQTTv5 and self._fallback.overdue():
                log.warning("broker gives no answer to MQTT 5: falling back to 3.1.1")
                self._fall_back()
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
        self.client.disconnect()
        self.client.loop_stop()
