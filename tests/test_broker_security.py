"""The production broker configuration, proven on a real Mosquitto.

Every broker here is started from deploy/mosquitto/mosquitto.conf and deploy/mosquitto/acl as
they are in the repository (the ACL file is used in place, not copied). Only what cannot be the
same in a test is changed, each change asserted to have happened exactly as expected so that an
edit of the production file cannot silently slip past these tests (see `production_config`):

- `listener 8883` -> `listener <free port> 127.0.0.1`: a free port, loopback only;
- /etc/mosquitto/zastava/{ca.crt,server.crt,server.key,passwd} -> files made in tmp_path
  (a test CA and server certificate from the openssl CLI, a password file from
  `mosquitto_passwd -b`); `acl_file` -> the repository's deploy/mosquitto/acl;
- `user mosquitto`, `persistence_location` and `log_dest stderr` are dropped: tests/brokers.py's
  Mosquitto sets its own (the user running the tests, because started as root Mosquitto
  would switch to `mosquitto`, who cannot use pytest's tmp_path; persistence in its folder;
  the log in a file there), and Mosquitto refuses a duplicate `user` or
  `persistence_location`; a log on stderr would fill a pipe nobody reads.

The production file is appended after the helper's own lines, so its limits (max_queued_*,
max_inflight_messages, autosave_interval) override the helper's test defaults.

What Mosquitto 2.0.11 was seen to answer, and what the tests pin down:
- a publish outside the client's ACL: MQTT 5 PUBACK reason 135 "Not authorized", not forwarded;
  MQTT 3.1.1 has no reason code in PUBACK, so the refused publish looks acknowledged;
- SUBSCRIBE is not checked by Mosquitto 2.0's acl_file at all: any filter gets "Granted QoS 1",
  and every delivery (live or retained) is checked against `read` on the message's topic;
- CONNECT without credentials, with a wrong password or an unknown user: CONNACK 135 "Not
  authorized" in MQTT 5 (not 134 "Bad user name or password"), return code 5 in MQTT 3.1.1;
- plain MQTT on the TLS port: the TLS handshake fails and the socket is closed, no CONNACK;
- a payload over message_size_limit: dropped, answered with PUBACK 149 "Packet too large" (a
  code MQTT 5 does not allow in PUBACK; paho 2.x treats it as a protocol error and drops the
  connection), never forwarded.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from brokers import Mosquitto
from conftest import REPO, free_port

DEPLOY = REPO / "deploy" / "mosquitto"
PROD_DIR = "/etc/mosquitto/zastava/"
TIMEOUT = 10.0  # every wait is for an event; this is only how long before a test gives up

# Test-only credentials, for brokers that live as long as one test on the loopback interface.
PASSWORDS = {"central": "central-test-password", "node-a": "node-a-test-password", "node-b": "node-b-test-password"}

NOT_AUTHORIZED = 135
SNAPSHOT_MAX = 2 * 1024 * 1024  # edge/contract.py MAX_BYTES[Kind.SNAPSHOT]
ALERT_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def t(node: str, kind: str, site: str = "post-1") -> str:
    return f"zastava/v1/{site}/{node}/{kind}"


# -- the broker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    """A test CA and a server certificate for localhost/127.0.0.1, as deploy/mosquitto/README.md
    makes them (EC P-256 keys here; the README's commands are the same apart from lifetimes)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=Zastava test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=d)
    return Pki(ca=d / "ca.crt", cert=d / "server.crt", key=d / "server.key")


def passwd(path: Path, user: str, password: str) -> None:
    """`mosquitto_passwd -b` as the README's scripts use it (creating the file on first use)."""
    args = [MOSQUITTO_PASSWD, "-b", str(path), user, password]
    if not path.exists():
        args.insert(1, "-c")
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def _replace(text: str, pattern: str, repl: str, count: int, what: str) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.M)
    assert n == count, f"deploy/mosquitto/mosquitto.conf: expected {count} {what}, found {n}; update the test"
    return new


def production_config(port: int, pki: Pki, password_file: Path) -> str:
    """deploy/mosquitto/mosquitto.conf with the substitutions listed in the module docstring."""
    text = (DEPLOY / "mosquitto.conf").read_text()
    text = _replace(text, r"^listener 8883$", f"listener {port} 127.0.0.1", 1, "TLS listener on 8883")
    for name, path in (("cafile", pki.ca), ("certfile", pki.cert), ("keyfile", pki.key),
                       ("password_file", password_file), ("acl_file", DEPLOY / "acl")):
        text = _replace(text, rf"^{name} {re.escape(PROD_DIR)}\S+$", f"{name} {path}", 1, f"{name} under {PROD_DIR}")
    text = _replace(text, r"^user mosquitto$", "", 1, "`user mosquitto` line")
    text = _replace(text, r"^persistence_location .*$", "", 1, "persistence_location line")
    text = _replace(text, r"^log_dest stderr$", "", 1, "`log_dest stderr` line")
    assert PROD_DIR not in re.sub(r"^#.*$", "", text, flags=re.M), "a production path is left unreplaced"
    return text


class Broker:
    """A Mosquitto configured from the repository's files, plus the files it was given."""

    def __init__(self, workdir: Path, pki: Pki):
        self.pki = pki
        self.passwd = workdir / "passwd"
        for user, password in PASSWORDS.items():
            passwd(self.passwd, user, password)
        self.port = free_port()
        self.mosquitto = Mosquitto(
            workdir / "broker", port=self.port,
            # The helper writes a plain anonymous listener unless given one; every listener
            # comes from the production file appended below instead.
            listener="# listeners: deploy/mosquitto/mosquitto.conf, below\n",
            extra=production_config(self.port, pki, self.passwd),
        )

    def start(self) -> Broker:
        self.mosquitto.start()
        return self

    def stop(self) -> None:
        self.mosquitto.stop()

    def wait_log(self, line: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        """Wait until the broker's log holds `line` `count` times (the helper logs notices)."""
        end = time.monotonic() + timeout
        while self.mosquitto.log().count(line) < count:
            if time.monotonic() > end:
                raise AssertionError(f"no {line!r} x{count} in the broker log:\n{self.mosquitto.log()[-3000:]}")
            time.sleep(0.02)

    def reload(self) -> None:
        """`systemctl reload mosquitto`: SIGHUP re-reads the password and ACL files."""
        self.mosquitto.proc.send_signal(signal.SIGHUP)


@pytest.fixture
def broker(tmp_path, pki):
    b = Broker(tmp_path, pki).start()
    yield b
    b.stop()


# -- clients ---------------------------------------------------------------------------------


class Client:
    """A paho-mqtt 2.x client over TLS whose every acknowledgement can be waited for."""

    def __init__(self, broker: Broker, client_id: str, user: str | None = None, password: str | None = None, *,
                 protocol: int = mqtt.MQTTv5, tls: bool = True, context: ssl.SSLContext | None = None):
        self.broker = broker
        self.protocol = protocol
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                             clean_session=None if protocol == mqtt.MQTTv5 else True)
        if tls:
            if context is None:
                # What a node does: trust only the deployment's CA, check the host name.
                context = ssl.create_default_context(cafile=str(broker.pki.ca))
                context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.c.tls_set_context(context)
        if user is not None:
            self.c.username_pw_set(user, password)
        # paho reconnects by itself after a drop; these tests want to see the drop, not a
        # reconnection that re-sends what was refused.
        self.c.reconnect_delay_set(60, 120)
        self._cond = threading.Condition()
        self.connack: ReasonCode | None = None
        self.session_present: bool | None = None
        self.disconnected: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self.log: list[str] = []
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.on_log = lambda _c, _u, _level, line: self.log.append(line)
        self._started = False

    # paho callbacks (its network thread) ------------------------------------------------------

    def _on_connect(self, _c, _u, flags, reason_code, _props):
        with self._cond:
            self.connack = reason_code
            self.session_present = flags.session_present
            self._cond.notify_all()

    def _on_disconnect(self, _c, _u, _flags, reason_code, _props):
        with self._cond:
            self.disconnected = reason_code
            self._cond.notify_all()

    def _on_publish(self, _c, _u, mid, reason_code, _props):
        with self._cond:
            self.pubacks[mid] = reason_code
            self._cond.notify_all()

    def _on_subscribe(self, _c, _u, mid, reason_codes, _props):
        with self._cond:
            self.subacks[mid] = list(reason_codes)
            self._cond.notify_all()

    def _on_message(self, _c, _u, message):
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    # test side --------------------------------------------------------------------------------

    def wait(self, predicate, what: str, timeout: float = TIMEOUT):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"{self.c._client_id.decode()}: no {what} within {timeout} s; "
                                     f"{self._reading()}; client log:\n" + "\n".join(self.log[-20:]) +
                                     f"\nbroker log:\n{self.broker.mosquitto.log()[-3000:]}")
            return predicate()

    def _reading(self) -> str:
        """How far paho got with the packet it is reading: tells a slow transfer from one that
        never started, when a wait gives up (paho's private state, read for this message only)."""
        packet = getattr(self.c, "_in_packet", None)
        if not isinstance(packet, dict):
            return "paho's read state unknown"
        return (f"paho reading packet type {packet.get('command', 0) >> 4}: {len(packet.get('packet', b''))} of "
                f"{packet.get('remaining_length', 0)} bytes in")

    def connect(self, *, clean_start: bool = True, session_expiry: int | None = None) -> ReasonCode:
        """CONNECT and wait for the CONNACK; returns its reason code (success or refusal)."""
        props = None
        if self.protocol == mqtt.MQTTv5 and session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        kwargs = {"clean_start": clean_start, "properties": props} if self.protocol == mqtt.MQTTv5 else {}
        self.c.connect("127.0.0.1", self.broker.port, keepalive=30, **kwargs)
        self.c.loop_start()
        self._started = True
        return self.wait(lambda: self.connack, "CONNACK")

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> ReasonCode:
        """Publish QoS 1 and wait for the PUBACK; returns its reason code."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"paho refused to send: {info.rc}"
        return self.wait(lambda: self.pubacks.get(info.mid), f"PUBACK for {topic}")

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        rc, mid = self.c.subscribe(topic, qos=qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self.wait(lambda: self.subacks.get(mid), f"SUBACK for {topic}")

    def received(self, topic: str, payload: bytes | None = None) -> mqtt.MQTTMessage:
        """Wait until a message on `topic` (with `payload`, if given) has arrived; return it."""

        def found():
            return next((m for m in self.messages if m.topic == topic and payload in (None, m.payload)), None)

        return self.wait(found, f"message on {topic}")

    def received_times(self, topic: str, count: int) -> None:
        """Wait until `count` messages on `topic` have arrived."""
        self.wait(lambda: sum(m.topic == topic for m in self.messages) >= count, f"{count} messages on {topic}")

    def topics(self) -> list[str]:
        with self._cond:
            return [m.topic for m in self.messages]

    def close(self) -> None:
        if self._started:
            self.c.disconnect()
            self.c.loop_stop()
            self._started = False


@pytest.fixture
def clients(broker):
    """clients(client_id, user, password, **kw) makes a Client; all are closed after the test."""
    made: list[Client] = []

    def make(client_id: str, user: str | None = None, password: str | None = "", **kw) -> Client:
        if user is not None and password == "":
            password = PASSWORDS[user]
        c = Client(broker, client_id, user, password, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def connected(make, client_id: str, user: str, **kw) -> Client:
    c = make(client_id, user, **kw)
    rc = c.connect()
    assert not rc.is_failure, f"{user} could not connect: {rc}"
    return c


def accepted(rc: ReasonCode) -> bool:
    """A PUBACK that takes the message: 0 "Success", or 16 "No matching subscribers" (MQTT 5;
    Mosquitto sends it when nobody is subscribed, e.g. a retained config no node reads yet)."""
    return rc.value in (0, 16)


def is_not_authorized(rc: ReasonCode) -> bool:
    return rc.value == NOT_AUTHORIZED and rc.getName() == "Not authorized"


# -- the configuration itself -----------------------------------------------------------------


def active_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_production_config_is_tls_only_authenticated_and_persistent():
    lines = active_lines(DEPLOY / "mosquitto.conf")
    options: dict[str, list[str]] = {}
    for words in lines:
        options.setdefault(words[0], []).append(" ".join(words[1:]))
    # One listener, the TLS one: no plain-TCP way in (a localhost one may only be commented out).
    assert options["listener"] == ["8883"]
    for name in ("cafile", "certfile", "keyfile", "password_file", "acl_file"):
        assert len(options[name]) == 1 and options[name][0].startswith(PROD_DIR), name
    assert options["tls_version"] == ["tlsv1.2"]
    assert options["allow_anonymous"] == ["false"]
    assert options["per_listener_settings"] == ["false"]
    assert options["persistence"] == ["true"]
    # Room for a 2 MiB snapshot plus headroom; queues deep enough to ride out hours.
    assert int(options["message_size_limit"][0]) >= SNAPSHOT_MAX + 64 * 1024
    assert int(options["max_queued_messages"][0]) >= 10_000
    # Mosquitto 2.0 parses max_queued_bytes as a 32-bit int: 2^31 and above wrap around
    # (2 GiB would become 0, no limit at all).
    assert 0 < int(options["max_queued_bytes"][0]) < 2**31
    assert int(options["max_inflight_messages"][0]) >= 1
    # Every ACL rule is one of the three forms, and nothing is granted to anonymous clients
    # (rules before the first `user` line apply to them).
    acl = active_lines(DEPLOY / "acl")
    assert acl and acl[0][0] in ("user", "pattern"), "a `topic` rule before any `user` line would apply to anonymous clients"
    assert all(w[0] in ("user", "topic", "pattern") for w in acl)


# -- 1. a node's alert reaches central --------------------------------------------------------


def test_node_alert_reaches_central_directly_and_through_shared_subscription(clients):
    central = connected(clients, "zastava-central-1", "central")
    assert [rc.value for rc in central.subscribe("zastava/v1/#")] == [1]
    # A second replica in a shared-subscription group: the ACL grants `read zastava/v1/#`,
    # which Mosquitto checks on the message's own topic, so $share needs no rule of its own.
    replica = connected(clients, "zastava-central-2", "central")
    assert [rc.value for rc in replica.subscribe("$share/central/zastava/v1/+/+/alert")] == [1]
    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")

    alert = b'{"id": "' + ALERT_ID.encode() + b'"}'
    assert accepted(node.publish(t("node-a", "alert"), alert))
    for c in (central, replica):
        m = c.received(t("node-a", "alert"), alert)
        assert m.qos == 1 and not m.retain

    # A snapshot as large as the contract allows (2 MiB) fits under message_size_limit.
    snapshot = b"\xff\xd8\xff" + bytes(SNAPSHOT_MAX - 3)
    assert accepted(node.publish(t("node-a", f"alert/{ALERT_ID}/snapshot"), snapshot))
    assert len(central.received(t("node-a", f"alert/{ALERT_ID}/snapshot")).payload) == SNAPSHOT_MAX


def test_node_alert_reaches_central_over_mqtt311(clients):
    central = connected(clients, "zastava-central", "central", protocol=mqtt.MQTTv311)
    central.subscribe("zastava/v1/+/+/alert")
    node = connected(clients, "zastava-edge-post-1-node-a", "node-a", protocol=mqtt.MQTTv311)
    assert accepted(node.publish(t("node-a", "alert"), b"over 3.1.1"))
    central.received(t("node-a", "alert"), b"over 3.1.1")


# -- 2. a node cannot write as another node ---------------------------------------------------


FOREIGN = [t("node-b", "alert"), t("node-b", f"alert/{ALERT_ID}/snapshot"), t("node-b", "status"),
           t("node-b", "heartbeat"), t("node-b", "config/state"), t("node-b", "alert", site="post-2"),
           "zastava/v1/post-1/node-a", "zastava/v2/post-1/node-a/alert", "elsewhere/node-a/alert"]


def test_node_cannot_publish_on_another_nodes_topics(clients):
    central = connected(clients, "zastava-central", "central")
    central.subscribe("zastava/v1/#")  # (outside zastava/v1 central may read nothing; PUBACK 135 is the proof there)
    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")

    for topic in FOREIGN:
        rc = node.publish(topic, b"forged")
        assert is_not_authorized(rc), f"{topic}: {rc}"

    # Nothing was forwarded. Mosquitto handles one client's packets in order and delivers them
    # to a subscriber in that order, so once the node's next (allowed) message has reached
    # central, any of the refused ones would have arrived before it.
    assert accepted(node.publish(t("node-a", "alert"), b"marker"))
    central.received(t("node-a", "alert"), b"marker")
    assert central.topics() == [t("node-a", "alert")]


def test_refused_publish_over_mqtt311_is_acknowledged_but_not_forwarded(clients):
    central = connected(clients, "zastava-central", "central")
    central.subscribe("zastava/v1/#")
    node = connected(clients, "zastava-edge-post-1-node-a", "node-a", protocol=mqtt.MQTTv311)
    # MQTT 3.1.1's PUBACK carries no reason code: the refused publish is acknowledged like any
    # other (paho reports success), so a 3.1.1 node cannot tell it was refused...
    assert accepted(node.publish(t("node-b", "alert"), b"forged"))
    # ...but it goes nowhere.
    assert accepted(node.publish(t("node-a", "alert"), b"marker"))
    central.received(t("node-a", "alert"), b"marker")
    assert central.topics() == [t("node-a", "alert")]


# -- 3. a node reads only its own config -------------------------------------------------------


def test_node_receives_only_its_own_config(clients):
    central = connected(clients, "zastava-central", "central")
    assert accepted(central.publish(t("node-b", "config"), b"config of node-b v1", retain=True))
    assert accepted(central.publish(t("node-a", "config"), b"config of node-a v1", retain=True))

    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    # Mosquitto 2.0's acl_file does not check SUBSCRIBE: the subscription is granted...
    assert [rc.getName() for rc in node.subscribe(t("node-b", "config"))] == ["Granted QoS 1"]
    assert [rc.getName() for rc in node.subscribe("zastava/v1/#")] == ["Granted QoS 1"]
    # ...and node-b's retained config is never delivered, through either filter. The broker
    # sends a subscription's retained messages before it handles the next SUBSCRIBE, and
    # sends them once per matching subscription: once node-a's own config has arrived twice
    # (for zastava/v1/# and for its own filter), node-b's would have come before.
    node.subscribe(t("node-a", "config"))
    node.received_times(t("node-a", "config"), 2)
    assert all(m.retain and m.payload == b"config of node-a v1" for m in node.messages)
    assert set(node.topics()) == {t("node-a", "config")}

    # Live updates: node-b's new config is not delivered either; node-a's arrives after it.
    central.publish(t("node-b", "config"), b"config of node-b v2", retain=True)
    central.publish(t("node-a", "config"), b"config of node-a v2", retain=True)
    node.received(t("node-a", "config"), b"config of node-a v2")
    assert set(node.topics()) == {t("node-a", "config")}
    assert all(b"node-b" not in m.payload for m in node.messages)


# -- 4. who cannot connect at all --------------------------------------------------------------


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("user,password", [(None, None), ("node-a", "wrong-password"), ("ghost", "any-password")],
                         ids=["anonymous", "wrong-password", "unknown-user"])
def test_unauthenticated_clients_are_refused(clients, protocol, user, password):
    c = clients("intruder", user, password, protocol=protocol)
    rc = c.connect()
    # Mosquitto 2.0.11 answers all three with "Not authorized": MQTT 5 reason 135 (a wrong
    # password does not get 134 "Bad user name or password"), MQTT 3.1.1 return code 5, which
    # paho reports as the equivalent reason code 135.
    assert is_not_authorized(rc), rc
    if protocol == mqtt.MQTTv311:
        assert any(re.search(r"Received CONNACK \(0, 5\)", line) for line in c.log), c.log


def test_plain_tcp_to_the_tls_port_gets_no_connack(broker, clients):
    # A raw MQTT 3.1.1 CONNECT (client id "plain", no credentials), unencrypted.
    connect = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 5]) + b"plain"
    reply = b""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT) as s:
        s.sendall(connect)
        try:
            while chunk := s.recv(1024):  # until the broker closes (a timeout here fails the test)
                reply += chunk
        except ConnectionResetError:
            pass
    # The broker reads those bytes as a broken TLS ClientHello and closes the socket without a
    # word (Mosquitto 2.0.11 with OpenSSL 3.0); at most a TLS alert record, never a CONNACK.
    assert reply == b"" or reply[0] == 0x15, f"expected the connection closed, got {reply!r}"

    # paho without TLS, with valid credentials: the connection dies, no CONNACK ever arrives.
    c = clients("plain-paho", "node-a", tls=False)
    c.c.connect("127.0.0.1", broker.port, keepalive=30)
    c.c.loop_start()
    c._started = True
    c.wait(lambda: c.disconnected is not None, "disconnect")
    assert c.connack is None


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_below_1_2_is_refused_and_1_2_accepted(broker, clients):
    # Lower the client's own floor and OpenSSL security level so that any refusal comes from
    # the broker: its `tls_version tlsv1.2` answers a TLS 1.1 ClientHello with a
    # protocol_version alert. (Without that line this OpenSSL 3 broker still refuses 1.1, but
    # with an internal_error alert: no signature algorithm left for TLS 1.1.)
    old = ssl.create_default_context(cafile=str(broker.pki.ca))
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    c = clients("tls11", "node-a", context=old)
    with pytest.raises(ssl.SSLError, match="(?i)protocol.version"):
        c.connect()

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=str(broker.pki.ca))
        ctx.minimum_version = ctx.maximum_version = version
        c = connected(clients, f"tls-{version.name}", "node-a", context=ctx)
        assert c.c.socket().version() == version.name.replace("_", ".")  # e.g. "TLSv1.2"


# -- 5. only central writes config -------------------------------------------------------------


def test_only_central_writes_config(clients):
    central = connected(clients, "zastava-central", "central")
    central.subscribe("zastava/v1/#")
    assert accepted(central.publish(t("node-a", "config"), b"desired by central", retain=True))

    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    # Not even its own config topic: a node that could overwrite its retained desired config
    # could undo an operator's change. Nor another node's, on any site.
    for topic in (t("node-a", "config"), t("node-b", "config"), t("node-a", "config", site="post-2")):
        assert is_not_authorized(node.publish(topic, b"forged config", retain=True)), topic
    # Its report on the config is its to write.
    assert accepted(node.publish(t("node-a", "config/state"), b"applied", retain=True))
    central.received(t("node-a", "config/state"), b"applied")

    # The retained config is still central's.
    reader = connected(clients, "zastava-edge-post-1-node-a-2", "node-a")
    reader.subscribe(t("node-a", "config"))
    assert reader.received(t("node-a", "config")).payload == b"desired by central"

    # Central writes config only: not a node's alert, status or config/state, and not as a
    # node whose id would be "central" (the pattern rules apply to every user; the ACL's deny
    # line takes those rights back).
    for topic in (t("node-a", "alert"), t("node-a", "status"), t("node-a", "config/state"), t("central", "alert"),
                  t("central", "status")):
        assert is_not_authorized(central.publish(topic, b"forged by central")), topic
    assert accepted(central.publish(t("node-b", "config"), b"marker", retain=True))
    central.received(t("node-b", "config"), b"marker")
    assert b"forged by central" not in [m.payload for m in central.messages]


# -- the node's Last Will, reloads, restarts, size limits --------------------------------------


def test_last_will_cannot_forge_another_nodes_status(broker, clients):
    central = connected(clients, "zastava-central", "central")
    central.subscribe("zastava/v1/+/+/status")
    forger = clients("zastava-edge-post-1-node-a", "node-a")
    forger.c.will_set(t("node-b", "status"), b"forged offline", qos=1, retain=True)
    # Mosquitto 2.0.11 accepts the will at CONNECT and checks it only when it publishes it.
    assert forger.connect().value == 0
    # DISCONNECT with reason 4 asks the broker to publish the will, as a dead connection would.
    forger.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    forger.wait(lambda: forger.disconnected is not None, "DISCONNECT sent")
    forger.c.loop_stop()
    forger._started = False
    # The broker handles the will (publishes or refuses it) as it handles the disconnect, in
    # the same step as it logs it; everything after that line comes after the will.
    broker.wait_log("Client zastava-edge-post-1-node-a disconnected.")
    honest = clients("zastava-edge-post-1-node-a", "node-a")
    honest.c.will_set(t("node-a", "status"), b"offline", qos=1, retain=True)
    assert honest.connect().value == 0
    honest.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    honest.wait(lambda: honest.disconnected is not None, "DISCONNECT sent")
    honest.c.loop_stop()
    honest._started = False
    central.received(t("node-a", "status"), b"offline")
    assert central.topics() == [t("node-a", "status")]


def test_password_rotation_and_revocation_take_effect_on_reload(broker, clients):
    """deploy/mosquitto/README.md: rotate with mosquitto_passwd, then reload (SIGHUP)."""
    node_a = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    node_b = connected(clients, "zastava-edge-post-1-node-b", "node-b")

    passwd(broker.passwd, "node-a", "node-a-rotated-password")
    broker.reload()
    # The reload re-checks every connected client: node-a's session, opened with the old
    # password, is closed at once; node-b is untouched.
    node_a.wait(lambda: node_a.disconnected is not None, "disconnect after the rotation")
    assert is_not_authorized(clients("old", "node-a", "node-a-test-password").connect())
    assert clients("new", "node-a", "node-a-rotated-password").connect().value == 0
    assert node_b.disconnected is None
    assert accepted(node_b.publish(t("node-b", "heartbeat"), b"still here"))

    # Revoking a node: delete it from the password file and reload.
    subprocess.run([MOSQUITTO_PASSWD, "-D", str(broker.passwd), "node-b"], check=True, capture_output=True, timeout=30)
    broker.reload()
    node_b.wait(lambda: node_b.disconnected is not None, "disconnect after the revocation")
    assert is_not_authorized(clients("revoked", "node-b", "node-b-test-password").connect())


def test_central_session_and_queued_alerts_survive_a_broker_restart(broker, clients):
    central = clients("zastava-central", "central")
    assert central.connect(clean_start=False, session_expiry=3600).value == 0
    central.subscribe("zastava/v1/+/+/alert")
    central.close()

    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    # Acknowledged by the broker while central is away: now only the broker holds them.
    for i in range(3):
        assert accepted(node.publish(t("node-a", "alert"), f"alert {i}".encode()))
    node.close()
    setter = connected(clients, "zastava-central-config", "central")
    setter.publish(t("node-a", "config"), b"desired", retain=True)
    setter.close()

    # A clean restart (SIGTERM writes the database; then the same configuration again).
    broker.stop()
    broker.start()

    central = clients("zastava-central", "central")
    assert central.connect(clean_start=False, session_expiry=3600).value == 0
    assert central.session_present is True
    for i in range(3):
        central.received(t("node-a", "alert"), f"alert {i}".encode())
    reader = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    reader.subscribe(t("node-a", "config"))
    assert reader.received(t("node-a", "config")).payload == b"desired"


def test_payload_over_message_size_limit_is_not_forwarded(clients):
    limit = int(next(w[1] for w in active_lines(DEPLOY / "mosquitto.conf") if w[0] == "message_size_limit"))
    central = connected(clients, "zastava-central", "central")
    central.subscribe("zastava/v1/#")
    node = connected(clients, "zastava-edge-post-1-node-a", "node-a")
    topic = t("node-a", f"alert/{ALERT_ID}/snapshot")
    info = node.c.publish(topic, b"\xff\xd8\xff" + bytes(limit), qos=1)
    # Mosquitto 2.0.11 drops it and answers PUBACK 149 "Packet too large", a code MQTT 5 does
    # not allow in a PUBACK: paho 2.x calls that a protocol error and drops the connection.
    # Either way the publisher is not told "success".
    node.wait(lambda: node.disconnected is not None or info.mid in node.pubacks, "refusal")
    assert info.mid not in node.pubacks or node.pubacks[info.mid].is_failure
    node.close()
    # The broker handled (and dropped) it before it answered; a later message from the node
    # reaches central alone.
    again = connected(clients, "zastava-edge-post-1-node-a-2", "node-a")
    assert accepted(again.publish(t("node-a", "alert"), b"marker"))
    central.received(t("node-a", "alert"), b"marker")
    assert central.topics() == [t("node-a", "alert")]
