"""Delivering the outbox to the broker: MQTT QoS 1, in sequence order, deleted on PUBACK.

paho-mqtt 2.x, MQTT 5 with a persistent session (falls back to 3.1.1 when the broker refuses
5), TLS with a CA and an optional client certificate, username and password, reconnection with
capped exponential backoff, a retained `status` with "offline" as the Last Will.

Delivery: up to `max_inflight` alerts are handed to paho at a time, oldest sequence first; each
is its snapshot (when it has one) then its JSON. A row leaves the outbox only when the broker has
acknowledged both. paho re-sends unacknowledged messages itself after a reconnect; after a
restart of the node everything still in the outbox is sent again. Central stores by alert id,
so a message delivered twice is stored once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from edge import __version__
from edge.config import MqttSettings, NodeIdentity
from edge.contract import QOS, RETAIN, Kind, Status, topic
from edge.mqtt_link import LinkSettings, MqttLink
from edge.outbox import Outbox

log = logging.getLogger(__name__)

RETRY_REJECTED_S = 30.0  # an alert the broker refused (e.g. not authorised) is tried again after this


@dataclass
class _InFlight:
    seq: int
    mids: set[int] = field(default_factory=set)
    failed: bool = False


class Publisher:
    def __init__(self, settings: MqttSettings, node: NodeIdentity, outbox: Outbox, *,
                 config_version: Callable[[], str | None] = lambda: None,
                 on_config: Callable[[bytes], None] | None = None):
        self.settings = settings
        self.on_config = on_config  # the node's desired config from central (retained), when it listens
        self.node = node
        self.outbox = outbox
        self.config_version = config_version
        self.published = 0
        self.rejected = 0
        self._lock = threading.Condition()
        self._inflight: dict[int, _InFlight] = {}  # seq -> what is out
        self._by_mid: dict[int, _InFlight] = {}
        self._retained: dict[Kind, bytes] = {}
        self._early: dict[int, bool] = {}  # mid -> failed, for PUBACKs that came before we knew the mid
        self._sent_upto = 0  # highest sequence handed to paho
        self._acked: list[int] = []
        self._retry: dict[int, float] = {}  # seq -> monotonic time it may be tried again
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        outbox.listeners.append(self.wake)
        self.link = MqttLink(
            LinkSettings(
                broker_url=settings.broker, client_id=settings.client_id or f"zastava-edge-{node.site}-{node.id}",
                username=settings.username or node.id, password=settings.password, ca_file=settings.ca_file,
                cert_file=settings.cert_file, key_file=settings.key_file, protocol=settings.protocol,
                keepalive_s=settings.keepalive_s, session_expiry_s=settings.session_expiry_s,
                reconnect_min_s=settings.reconnect_min_s, reconnect_max_s=settings.reconnect_max_s,
                max_inflight=settings.max_inflight * 2,  # each alert is up to two messages
            ),
            name="edge", configure=self._configure, on_connected=self._on_connected,
        )
        self.connected = self.link.connected

    @property
    def client(self) -> mqtt.Client:
        return self.link.client

    @property
    def reconnects(self) -> int:
        return self.link.reconnects

    # -- connection --------------------------------------------------------------------------------

    def _status(self, state: str, reason: str | None) -> bytes:
        return Status(site=self.node.site, node=self.node.id, state=state, time=dt.datetime.now(dt.timezone.utc),
                      software=f"zastava-edge {__version__}", config_version=self.config_version(),
                      reason=reason).model_dump_json().encode()

    def _configure(self, client: mqtt.Client) -> None:
        client.will_set(topic(self.node.site, self.node.id, Kind.STATUS), self._status("offline", "connection lost"),
                        qos=1, retain=True)
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def start(self) -> None:
        # In the background: the node starts (and fills its outbox) even while the broker is away.
        self.link.start()
        self._pump.start()

    def _on_connected(self, client: mqtt.Client, flags) -> None:
        if self.on_config is not None:  # the broker hands over the retained desired config at once
            client.subscribe(topic(self.node.site, self.node.id, Kind.CONFIG), qos=QOS[Kind.CONFIG])
        client.publish(topic(self.node.site, self.node.id, Kind.STATUS), self._status("online", None), qos=1, retain=True)
        for kind, payload in list(self._retained.items()):
            client.publish(topic(self.node.site, self.node.id, kind), payload, qos=QOS[kind], retain=True)
        self.wake()

    def _on_message(self, client, userdata, msg) -> None:
        if self.on_config is not None and msg.topic == topic(self.node.site, self.node.id, Kind.CONFIG):
            self.on_config(msg.payload)

    # -- delivery ----------------------------------------------------------------------------------

    def wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            item = self._by_mid.pop(mid, None)
            if item is None:
                # Not registered yet (the PUBACK beat `_send` to it) or a status/heartbeat.
                self._early[mid] = reason_code.is_failure
                while len(self._early) > 1000:
                    del self._early[next(iter(self._early))]
                return
            self._settle(item, mid, reason_code.is_failure, str(reason_code))

    def _settle(self, item: _InFlight, mid: int, failed: bool, why: str) -> None:
        """One of an alert's messages is acknowledged (call with the lock held)."""
        if failed:
            item.failed = True
            log.error("broker refused alert #%d: %s (kept in the outbox, retried in %.0f s)", item.seq, why, RETRY_REJECTED_S)
        item.mids.discard(mid)
        if not item.mids:
            del self._inflight[item.seq]
            if item.failed:
                self.rejected += 1
                self._retry[item.seq] = time.monotonic() + RETRY_REJECTED_S
            else:
                self._acked.append(item.seq)
        self._lock.notify_all()

    def _send(self, rows) -> None:
        # Never call into paho holding our lock: paho runs on_publish holding its own message
        # lock, which publish() also takes.
        site, node = self.node.site, self.node.id
        alert_topic = topic(site, node, Kind.ALERT)
        for row in rows:
            item = _InFlight(row.seq)
            with self._lock:
                self._inflight[row.seq] = item
                self._sent_upto = max(self._sent_upto, row.seq)
                item.mids.add(-1)  # a placeholder: the item is not settled before all mids are known
            mids = []
            if row.snapshot:
                mids.append(self.client.publish(topic(site, node, Kind.SNAPSHOT, row.id), row.snapshot, qos=1).mid)
            mids.append(self.client.publish(alert_topic, row.alert, qos=1).mid)
            with self._lock:
                early = []
                for mid in mids:
                    if mid in self._early:
                        early.append((mid, self._early.pop(mid)))
                    else:
                        item.mids.add(mid)
                        self._by_mid[mid] = item
                for mid, failed in early:
                    item.mids.add(mid)
                    self._settle(item, mid, failed, "refused")
                self._settle(item, -1, False, "")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.link.poll()
            with self._lock:
                acked, self._acked = self._acked, []
            if acked:
                self.outbox.delete(acked)
                self.published += len(acked)
            sent = False
            if self.connected.is_set():
                room = self.settings.max_inflight - len(self._inflight)
                due = [s for s, at in self._retry.items() if at <= time.monotonic()]
                if due and room > 0:
                    for s in due:
                        del self._retry[s]
                    self._sent_upto = min(self._sent_upto, min(due) - 1)
                if room > 0:
                    rows = [r for r in self.outbox.pending(self._sent_upto, room) if r.seq not in self._inflight]
                    if rows:
                        self._send(rows)
                        sent = True
            if not sent:
                with self._lock:
                    if not self._acked:
                        self._lock.wait(0.2)

    # -- side messages ------------------------------------------------------------------------------

    def publish_message(self, kind: Kind, payload: bytes) -> None:
        """Heartbeat, config state...: with the kind's QoS and retain flag. A retained kind is
        kept and published again on every connect, so the broker always holds the latest."""
        if RETAIN[kind]:
            self._retained[kind] = payload
        if self.connected.is_set():
            self.client.publish(topic(self.node.site, self.node.id, kind), payload, qos=QOS[kind], retain=RETAIN[kind])

    def drained(self) -> bool:
        with self._lock:
            return not self._inflight and not self._acked and self.outbox.depth()[0] == 0

    def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Deliver what can be delivered within the timeout, say goodbye, disconnect. What is
        left stays in the outbox for the next start."""
        end = time.monotonic() + flush_timeout_s
        self.outbox.flush(timeout=max(0.1, end - time.monotonic()))
        while time.monotonic() < end and not self.drained():  # the broker may come back meanwhile
            time.sleep(0.05)
        self._stop.set()
        self.wake()
        self._pump.join(timeout=5)
        with self._lock:
            acked, self._acked = self._acked, []
        self.outbox.delete(acked)
        self.published += len(acked)
        if self.connected.is_set():
            info = self.client.publish(topic(self.node.site, self.node.id, Kind.STATUS), self._status("offline", "shutdown"),
                                       qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except RuntimeError:
                pass
        self.link.stop()
