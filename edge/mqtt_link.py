"""A paho-mqtt 2.x connection that both the edge publisher and central's ingest use.

It connects in the background (the caller goes on while the broker is away), keeps a
persistent session, uses TLS and credentials when given, reconnects with capped exponential
backoff, and moves to MQTT 3.1.1 when the broker refuses or ignores MQTT 5 (see
edge.mqtt_fallback). The caller attaches its own handlers in `configure`, which runs for every
client the link creates (a fallback creates a new one).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.mqtt_fallback import Mqtt5Fallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    broker_url: str
    client_id: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    protocol: str = "auto"  # "auto", "5" or "3.1.1"
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 86_400
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_inflight: int = 0  # messages out and not yet acknowledged; 0: no limit
    manual_ack: bool = False  # acknowledge received messages ourselves (after storing them)

    @property
    def address(self) -> tuple[str, int]:
        url = urlparse(self.broker_url)
        return url.hostname or "localhost", url.port or (8883 if url.scheme == "mqtts" else 1883)


class MqttLink:
    def __init__(self, settings: LinkSettings, *, name: str,
                 configure: Callable[[mqtt.Client], None] = lambda client: None,
                 on_connected: Callable[[mqtt.Client, object], None] = lambda client, flags: None,
                 on_lost: Callable[[object], None] = lambda reason: None):
        self.settings = settings
        self.name = name
        self._configure = configure
        self._on_connected = on_connected
        self._on_lost = on_lost
        self.protocol = mqtt.MQTTv311 if settings.protocol == "3.1.1" else mqtt.MQTTv5
        self.connected = threading.Event()
        self.reconnects = 0
        self._ever_connected = False
        self._stopping = False
        self._fallback = Mqtt5Fallback(settings.protocol == "auto")
        self.client = self._make_client()

    @property
    def protocol_name(self) -> str:
        return "5" if self.protocol == mqtt.MQTTv5 else "3.1.1"

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        v5 = self.protocol == mqtt.MQTTv5
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=self.protocol,
                             clean_session=None if v5 else False, manual_ack=s.manual_ack)
        if urlparse(s.broker_url).scheme == "mqtts":
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(s.ca_file) if s.ca_file else None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if s.cert_file:
                ctx.load_cert_chain(str(s.cert_file), str(s.key_file) if s.key_file else None)
            client.tls_set_context(ctx)
        if s.username:
            client.username_pw_set(s.username, s.password)
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)
        client.on_pre_connect = lambda c, u: self._fallback.attempt()
        client.on_connect_fail = lambda c, u: self._fallback.connect_failed()
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        self._configure(client)
        return client

    def start(self) -> None:
        props = None
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.settings.session_expiry_s
            if self.settings.manual_ack:
                props.ReceiveMaximum = 65535  # acks wait for our database: let the broker keep sending
        host, port = self.settings.address
        self.client.connect_async(host, port, keepalive=self.settings.keepalive_s,
                                  clean_start=False if self.protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                                  properties=props)
        self.client.loop_start()

    def poll(self) -> None:
        """Call now and then from a worker loop: falls back when a CONNACK is overdue."""
        if self.protocol == mqtt.MQTTv5 and self._fallback.overdue():
            log.warning("%s: broker gives no answer to MQTT 5: falling back to 3.1.1", self.name)
            self._fall_back()

    def _fall_back(self) -> None:
        if self.protocol == mqtt.MQTTv311:
            return
        self.client.disconnect()
        self.client.loop_stop()
        self.protocol = mqtt.MQTTv311
        self.client = self._make_client()
        self.start()

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        refuses_v5 = self._fallback.connack(reason_code)
        if reason_code.is_failure:
            if refuses_v5 and self.protocol == mqtt.MQTTv5:
                log.warning("%s: broker refuses MQTT 5 (%s): falling back to 3.1.1", self.name, reason_code)
                threading.Thread(target=self._fall_back, daemon=True).start()
            else:
                log.error("%s: broker refused the connection: %s", self.name, reason_code)
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        log.info("%s: connected to %s as %s (MQTT %s, session present: %s)", self.name, self.settings.broker_url,
                 self.settings.client_id, self.protocol_name, flags.session_present)
        self._on_connected(client, flags)
        self.connected.set()

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        if self.protocol == mqtt.MQTTv5 and self._fallback.hung_up():
            log.warning("%s: broker hangs up on MQTT 5 without an answer: falling back to 3.1.1", self.name)
            threading.Thread(target=self._fall_back, daemon=True).start()
        if self.connected.is_set() and not self._stopping:
            log.warning("%s: lost the broker (%s); reconnecting with backoff up to %.0f s", self.name, reason_code,
                        self.settings.reconnect_max_s)
            self._on_lost(reason_code)
        self.connected.clear()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
